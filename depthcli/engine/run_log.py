"""What a run shows while it goes: metrics.jsonl, TensorBoard (optional), loss.png and the console lines.

Every log record goes to `metrics.jsonl` and TensorBoard, and every `log_images_every` steps the task's
pictures of the batch (`TrainingTask.visuals`) go to TensorBoard. `loss.png` is redrawn at every
checkpoint and at a record as soon as the time since its last drawing is PLOT_TIME_FACTOR times what
that drawing took (so drawing costs at most ~5 % of a run however fast its steps are). Validation
metrics are printed when computed. Only rank 0 logs; other ranks hold an inactive RunLog.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch
from tqdm.auto import tqdm

from depthcli.engine.run_dir import RunDirectory
from depthcli.engine.seeding import capture_rng_state, restore_rng_state
from depthcli.engine.task import TrainingTask
from depthcli.engine.tensorboard_log import TensorBoardLog
from depthcli.recipe_configs import TrainConfig

PLOT_TIME_FACTOR = 20.0


def say(text: str) -> None:
    """One console line that leaves the progress bar intact."""
    tqdm.write(text)


def validation_line(step: int, epoch: int, metrics: Mapping[str, float], is_best: bool) -> str:
    """`step 40 (epoch 2) validation: abs_rel 0.1234, a1 0.8765 (best so far)`."""
    values = ", ".join(f"{name} {value:.4g}" for name, value in metrics.items())
    return f"step {step} (epoch {epoch}) validation: {values}" + (" (best so far)" if is_best else "")


class RunLog:
    """The records of one run (`history`, as in metrics.jsonl) and the places they are shown."""

    def __init__(self, files: RunDirectory, config: TrainConfig, main_metric: str, active: bool) -> None:
        self.files, self.config, self.main_metric, self.active = files, config, main_metric, active
        self.history: list[dict] = []
        self.tensorboard: TensorBoardLog | None = None
        self._plot_due = 0.0  # time.monotonic() from which a record redraws loss.png

    def open(self, resumed_step: int | None) -> None:
        """Start the logs: a new run (`resumed_step` None) empties metrics.jsonl; a resumed one keeps its
        records up to the checkpoint's step (the steps after it are taken again)."""
        if not self.active:
            return
        if resumed_step is None:
            self.files.metrics_file.unlink(missing_ok=True)
        else:
            self.history = [r for r in self.files.read_metrics() if r["step"] <= resumed_step]
            self.files.rewrite_metrics(self.history)
        if self.config.tensorboard:
            purge_step = 0 if resumed_step is None else resumed_step + 1
            self.tensorboard = TensorBoardLog.open(self.files.path, purge_step, say)

    def images_due(self, step: int) -> bool:
        """Whether the task's pictures are logged after `step` (every `log_images_every` steps, to TensorBoard)."""
        every = self.config.log_images_every
        return self.tensorboard is not None and every > 0 and step % every == 0

    def record(self, record: dict) -> None:
        if not self.active:
            return
        self.history.append(record)
        self.files.append_metrics(record)
        if self.tensorboard is not None:
            self.tensorboard.record(record)
        if time.monotonic() >= self._plot_due:
            self.plot()

    def validation(self, step: int, epoch: int, metrics: Mapping[str, float], is_best: bool) -> None:
        """A validation's record, and its console line."""
        if not self.active:
            return
        self.record({"step": step, "epoch": epoch, "val": dict(metrics)})
        say(validation_line(step, epoch, metrics, is_best))

    def images(self, step: int, task: TrainingTask, batch: dict) -> None:
        """The task's pictures of `batch` (`TrainingTask.visuals`), taken in eval mode, without gradients and
        with every RNG put back afterwards: logging pictures never changes what is trained."""
        if self.tensorboard is None:
            return
        rng = capture_rng_state()
        task.eval()
        try:
            with torch.no_grad():
                visuals = task.visuals(batch)
        finally:
            task.train()
            restore_rng_state(rng)
        if visuals:
            self.tensorboard.images(step, visuals)

    def plot(self) -> None:
        """Redraw loss.png now (and flush TensorBoard, so that both show the same steps)."""
        if not self.active:
            return
        started = time.monotonic()
        self.files.plot_loss(self.history, self.main_metric)
        if self.tensorboard is not None:
            self.tensorboard.flush()
        finished = time.monotonic()
        self._plot_due = finished + PLOT_TIME_FACTOR * (finished - started)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
