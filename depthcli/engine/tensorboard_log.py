"""TensorBoard event files of a run, in RUN_DIR/tensorboard: an optional extra (`pip install -e ".[tensorboard]"`).

Scalars: every metrics record (`train/<loss>`, `lr`, `images_per_s`) and validation (`val/<metric>`);
images: what the task shows of a batch (`TrainingTask.visuals`), its first VISUAL_SAMPLES samples as one
grid per picture (`images/<name>`). Without the `tensorboard` package (which `torch.utils.tensorboard`
needs) a run goes on without event files, after one note per process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

TENSORBOARD_DIR = "tensorboard"
VISUAL_SAMPLES = 4  # samples of a batch shown per picture (as monodepth2 does)
MISSING_NOTE = (
    'TensorBoard logging skipped: the tensorboard package is not installed (pip install -e ".[tensorboard]"); '
    "metrics.jsonl and loss.png are written as always"
)
_RECORD_KEYS = ("step", "epoch")  # the record's position, not values to plot
_noted_missing = False


def watch_hint(run_dir: Path) -> str | None:
    """The command that shows a run's events (None when TensorBoard is not installed)."""
    if importlib.util.find_spec("tensorboard") is None:
        return None
    return f"watch it: tensorboard --logdir {run_dir / TENSORBOARD_DIR}"


class TensorBoardLog:
    """A `SummaryWriter` for one run; `open` returns None when TensorBoard is not installed."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    @classmethod
    def open(cls, run_dir: Path, purge_step: int, say: Callable[[str], None]) -> TensorBoardLog | None:
        """The writer of `run_dir`; events from an earlier run at steps >= `purge_step` are hidden (a resumed
        run takes those steps again; a new run passes 0)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            global _noted_missing
            if not _noted_missing:
                say(MISSING_NOTE)
                _noted_missing = True
            return None
        return cls(SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge_step))

    def record(self, record: Mapping[str, Any]) -> None:
        """A metrics.jsonl record: losses under `train/`, validation metrics under `val/`, the rest by name."""
        step = record["step"]
        for name, value in record.items():
            if name == "val":
                for metric, number in value.items():
                    self.writer.add_scalar(f"val/{metric}", number, step)
            elif name not in _RECORD_KEYS:
                tag = name if name in ("lr", "images_per_s") else f"train/{name}"
                self.writer.add_scalar(tag, value, step)

    def images(self, step: int, visuals: Mapping[str, Tensor]) -> None:
        """(B,C,H,W) pictures in [0, 1] (C = 1 or 3): the first VISUAL_SAMPLES of each, as one grid."""
        for name, images in visuals.items():
            shown = images[:VISUAL_SAMPLES].detach().float().clamp(0, 1).cpu()
            self.writer.add_images(f"images/{name}", shown, step, dataformats="NCHW")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
