"""The files of one run directory: resolved config, checkpoints, the metrics log and the loss plot.

`config.json` (readable back with `--config`; its "provenance" lists the commands that ran the run),
`last.ckpt` (resumable), `best.ckpt` (weights only, best validation metric), `epoch_XX.ckpt` (weights
only, `save_epochs`), `step_XXXXXXX.ckpt` (resumable, the last `keep_last`), `metrics.jsonl` (one JSON
record per logged step or validation), `loss.png` and `tensorboard/` (depthcli.engine.tensorboard_log).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from depthcli.atomic import atomic_path, atomic_write_text
from depthcli.config import PROVENANCE_KEY, save_config

LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOSS_PLOT = "loss.png"
STEP_CHECKPOINT = re.compile(r"step_(\d+)\.ckpt")


class RunDirectory:
    """Paths of a run's files, and the metrics log kept in them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.last_checkpoint = self.path / LAST_CHECKPOINT
        self.best_checkpoint = self.path / BEST_CHECKPOINT
        self.config_file = self.path / CONFIG_FILE
        self.metrics_file = self.path / METRICS_FILE
        self.loss_plot = self.path / LOSS_PLOT

    def epoch_checkpoint(self, epoch: int) -> Path:
        """The weights after epoch `epoch`, counted from 0 (monodepth2's `weights_XX`)."""
        return self.path / f"epoch_{epoch:02d}.ckpt"

    def step_checkpoint(self, step: int) -> Path:
        return self.path / f"step_{step:07d}.ckpt"

    def step_checkpoints(self) -> list[Path]:
        """The step checkpoints present, oldest first."""
        matches = [(STEP_CHECKPOINT.fullmatch(path.name), path) for path in self.path.glob("step_*.ckpt")]
        return [path for _, path in sorted((int(match[1]), path) for match, path in matches if match)]

    def write_config(self, config: Any, record: Mapping[str, Any], resumed: bool) -> None:
        """config.json: the resolved config, and under "provenance" the record of each command that ran the run
        (the one that started it, then one per resume)."""
        save_config(config, self.config_file, [*(self.provenance_records() if resumed else []), record])

    def provenance_records(self) -> list[dict]:
        """The provenance records config.json holds ([] when it holds none or cannot be read)."""
        try:
            records = json.loads(self.config_file.read_text(encoding="utf-8")).get(PROVENANCE_KEY, [])
        except (OSError, ValueError, AttributeError):
            return []
        return records if isinstance(records, list) else []

    def read_metrics(self) -> list[dict]:
        """The records of `metrics.jsonl`, up to the first line cut short by a kill."""
        if not self.metrics_file.is_file():
            return []
        records = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: everything after it is lost anyway
        return records

    def rewrite_metrics(self, records: list[dict]) -> None:
        """Replace the log with `records` (atomically): a resumed run drops what came after its checkpoint."""
        atomic_write_text(self.metrics_file, "".join(json.dumps(record) + "\n" for record in records))

    def append_metrics(self, record: dict) -> None:
        with open(self.metrics_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def plot_loss(self, history: list[dict], metric: str = "abs_rel") -> None:
        """Training loss and the validation `metric` against step, with a legend, written atomically as `loss.png`."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        losses = [record for record in history if "loss" in record]
        validations = [record for record in history if metric in record.get("val", {})]
        figure, axis = plt.subplots(figsize=(7, 4))
        steps, values = [r["step"] for r in losses], [r["loss"] for r in losses]
        lines = axis.plot(steps, values, color="tab:blue", label="train loss")
        axis.set_xlabel("step")
        axis.set_ylabel("training loss")
        if validations:
            twin = axis.twinx()
            steps = [r["step"] for r in validations]
            values = [r["val"][metric] for r in validations]
            lines += twin.plot(steps, values, "o-", color="tab:red", label=f"validation {metric}")
            twin.set_ylabel(f"validation {metric}")
        axis.legend(lines, [line.get_label() for line in lines], loc="upper right")
        axis.set_title("depthcli training")
        figure.tight_layout()
        with atomic_path(self.loss_plot) as tmp:
            figure.savefig(tmp, format="png", dpi=80)
        plt.close(figure)
