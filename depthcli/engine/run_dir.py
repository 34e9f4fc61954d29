"""The files of one run directory: resolved config, checkpoints, the metrics log and the loss plot.

`config.json` (readable back with `--config`), `last.ckpt` (resumable), `best.ckpt` (best validation
metric), `metrics.jsonl` (one JSON record per logged step or validation) and `loss.png`.
"""

from __future__ import annotations

import json
from pathlib import Path

from depthcli.atomic import atomic_path, atomic_write_text

LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOSS_PLOT = "loss.png"


class RunDirectory:
    """Paths of a run's files, and the metrics log kept in them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.last_checkpoint = self.path / LAST_CHECKPOINT
        self.best_checkpoint = self.path / BEST_CHECKPOINT
        self.config_file = self.path / CONFIG_FILE
        self.metrics_file = self.path / METRICS_FILE
        self.loss_plot = self.path / LOSS_PLOT

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

    def plot_loss(self, history: list[dict]) -> None:
        """Training loss (and validation abs_rel) against step, written atomically as `loss.png`."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        losses = [record for record in history if "loss" in record]
        validations = [record for record in history if "val" in record]
        figure, axis = plt.subplots(figsize=(7, 4))
        axis.plot([r["step"] for r in losses], [r["loss"] for r in losses], label="train loss", color="tab:blue")
        axis.set_xlabel("step")
        axis.set_ylabel("loss")
        if validations and "abs_rel" in validations[0]["val"]:
            twin = axis.twinx()
            steps = [r["step"] for r in validations]
            twin.plot(steps, [r["val"]["abs_rel"] for r in validations], "o-", color="tab:red", label="val abs_rel")
            twin.set_ylabel("validation abs_rel")
        axis.set_title("depthcli training")
        figure.tight_layout()
        with atomic_path(self.loss_plot) as tmp:
            figure.savefig(tmp, format="png", dpi=80)
        plt.close(figure)
