"""The checkpoints a run keeps beside last.ckpt: best.ckpt, epoch_XX.ckpt and the last N step checkpoints.

- `best.ckpt`, when a validation finds the best main metric so far: weights only
  (`depthcli.checkpoints.weights_only`: no optimizer, scheduler or RNG states), with that validation's
  metrics under "metrics".
- `epoch_XX.ckpt` with `save_epochs`, at every epoch end: weights only (researchers evaluate the last
  epochs one by one; XX counts from 0, as monodepth2's `weights_XX`).
- `step_XXXXXXX.ckpt` with `keep_last` N > 0, at every save: the full, resumable checkpoint; the N newest
  are kept (copy one over last.ckpt to resume from there).

Weights-only files keep the task's model (the depth net) and, with `keep_all_networks`, its other
networks (the pose net, which `--init` also starts from).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from depthcli.checkpoints import TRAIN_STATE, save_checkpoint, weights_only
from depthcli.engine.run_dir import RunDirectory
from depthcli.recipe_configs import TrainConfig


def save_retained(
    files: RunDirectory,
    payload: dict[str, Any],
    config: TrainConfig,
    *,
    best_metrics: Mapping[str, float] | None = None,
    finished_epoch: int | None = None,
) -> list[Path]:
    """Write what `config` keeps of this save's full `payload` (module docstring); returns the files written.

    `best_metrics`: the validation that made this the best checkpoint (None: it is not); `finished_epoch`:
    the epoch that just ended (None: the save is not at an epoch end).
    """
    written = []
    weights = weights_only(payload, keep_networks=config.keep_all_networks)
    if best_metrics is not None:
        written.append(save_checkpoint(files.best_checkpoint, {**weights, "metrics": dict(best_metrics)}))
    if config.save_epochs and finished_epoch is not None:
        written.append(save_checkpoint(files.epoch_checkpoint(finished_epoch), weights))
    if config.keep_last > 0:
        written.append(save_checkpoint(files.step_checkpoint(payload[TRAIN_STATE]["step"]), payload))
        prune_step_checkpoints(files, config.keep_last)
    return written


def prune_step_checkpoints(files: RunDirectory, keep: int) -> list[Path]:
    """Delete all but the `keep` newest step checkpoints; returns the deleted files."""
    stale = files.step_checkpoints()[:-keep] if keep > 0 else files.step_checkpoints()
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
