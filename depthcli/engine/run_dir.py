"""The files of one run directory: resolved config, checkpoints, the metrics log and the loss plot.

`config.json` (readable back with `--config`; its "provenance" lists the commands that ran the run),
`last.ckpt` (resumable), `best.ckpt` (weights only, best validation metric), `epoch_XX.ckpt` (weights
only, `save_epochs`), `step_XXXXXXX.ckpt` (resumable, the last `keep_last`), `metrics.jsonl` (one JSON
record per logged step or validation), `loss.png` and `tensorboard/` (depthcli.engine.tensorboard_log).

How a run starts in it (`depthcli.engine.runner` asks, before anything is written): a new run only in
a missing or empty directory unless told to overwrite (`check_new_run`, `remove_previous_run`); one
run at a time (`lock`); the temp files of a save that a kill cut short are removed
(`remove_leftover_temp_files`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from depthcli.atomic import atomic_path, atomic_write_text, leftover_temp_files
from depthcli.config import PROVENANCE_KEY, save_config
from depthcli.errors import DepthcliError
from depthcli.locks import exclusive_lock, lock_path_for
from depthcli.paths import refuse_output_overwriting_inputs

LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOSS_PLOT = "loss.png"
TENSORBOARD_DIR = "tensorboard"
STEP_CHECKPOINT = re.compile(r"step_(\d+)\.ckpt")
EPOCH_CHECKPOINT = re.compile(r"epoch_(\d+)\.ckpt")
RESULT_FILES = (LAST_CHECKPOINT, BEST_CHECKPOINT, "encoder.ckpt")  # what a run that has saved holds
# Everything a run writes besides its caches (and besides step_/epoch_ checkpoints and tensorboard/, see
# `is_run_file`): `--overwrite` removes these, and theirs are the temp files a save cut short can leave.
RUN_FILES = (*RESULT_FILES, CONFIG_FILE, METRICS_FILE, LOSS_PLOT, "boundary_net.ckpt")


def is_result_file(name: str) -> bool:
    """Whether `name` is a checkpoint a run saved (a run that has one is not started over by `--resume auto`)."""
    return name in RESULT_FILES or bool(STEP_CHECKPOINT.fullmatch(name) or EPOCH_CHECKPOINT.fullmatch(name))


def is_run_file(name: str) -> bool:
    """Whether `name` is a file a run writes in its directory (its caches aside)."""
    return name in RUN_FILES or is_result_file(name)


def resume_command(command: str, run_dir: str | Path) -> str:
    """The command line that continues the run in `run_dir` (its config is stored in last.ckpt)."""
    return f"depthcli {command} --resume --out {shlex.quote(str(run_dir))}"


def resolve_start(run_dir: str | Path, resume: bool | str, overwrite: bool, command: str) -> tuple[bool, bool]:
    """(resume, overwrite) for `--resume` (True, or "auto") and `--overwrite`, checked before any work.

    `--resume` needs OUT/last.ckpt; `--resume auto` resumes it when it is there and otherwise starts a new
    run, even where a run was killed before its first save (one command serves a requeued job); a new
    run needs an empty directory unless `--overwrite`.
    """
    files = RunDirectory(run_dir)
    if resume and overwrite:
        raise DepthcliError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if resume == "auto" and not files.last_checkpoint.is_file():
        files.check_new_run(overwrite=False, command=command, unsaved_ok=True)
        files.create()
        return False, True
    if resume:
        files.resumable_checkpoint()
    else:
        files.check_new_run(overwrite, command)
        files.create()
    return bool(resume), overwrite


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

    def resumable_checkpoint(self) -> Path:
        """last.ckpt, which `--resume` continues; its absence is one line."""
        if not self.last_checkpoint.is_file():
            raise DepthcliError(
                f"--resume: no checkpoint {self.last_checkpoint}; start without --resume or point --out at the run"
            )
        return self.last_checkpoint

    # -- starting a run --------------------------------------------------------------------------
    def create(self) -> None:
        """Make the directory; a file in its place or an unwritable parent is one line."""
        if self.path.exists() and not self.path.is_dir():
            raise DepthcliError(f"--out {self.path} is a file, not a run directory; choose a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DepthcliError(
                f"cannot create the run directory {self.path}: {exc.strerror}; choose a writable location"
            ) from None

    def contents(self) -> list[str]:
        """Names in the directory, without its lock and the temp files a killed save left behind."""
        if not self.path.is_dir():
            return []
        ignored = {lock_path_for(self.last_checkpoint).name} | {
            path.name for path in leftover_temp_files(self.path, is_run_file)
        }
        return sorted(path.name for path in self.path.iterdir() if path.name not in ignored)

    def check_new_run(self, overwrite: bool, command: str = "train", unsaved_ok: bool = False) -> None:
        """A new run may only start in a missing or empty directory, unless `overwrite` (`--overwrite`);
        `unsaved_ok`: or in one where no run saved results yet (`--resume auto` after a run killed early)."""
        if self.path.exists() and not self.path.is_dir():
            self.create()  # the one-line error for a file in the way
        held = self.contents()
        if unsaved_ok:
            held = [name for name in held if is_result_file(name)]
        if held and not overwrite:
            listed = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
            raise DepthcliError(
                f"run directory {self.path} is not empty ({listed}); continue that run with "
                f"`{resume_command(command, self.path)}`, or start over in it with --overwrite"
            )

    def check_inputs_kept(self, inputs: Iterable[tuple[str, str | Path]]) -> None:
        """None of the run's files here (which the run replaces, or `--overwrite` removes) may be one of its
        inputs (`--init OUT/last.ckpt --overwrite` would delete the weights it is about to start from)."""
        present = [("--out", self.path / name) for name in self.contents() if is_run_file(name)]
        refuse_output_overwriting_inputs(present, inputs)

    def remove_previous_run(self) -> list[str]:
        """`--overwrite`: remove the files a previous run wrote here, its TensorBoard events too (caches stay);
        returns their names."""
        removed = sorted(path.name for path in self.path.iterdir() if is_run_file(path.name) and path.is_file())
        for name in removed:
            (self.path / name).unlink()
        if (self.path / TENSORBOARD_DIR).is_dir():
            shutil.rmtree(self.path / TENSORBOARD_DIR)
            removed.append(TENSORBOARD_DIR)
        return removed

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """One run in this directory at a time (a killed run holds nothing: `depthcli.locks`)."""
        self.create()
        with exclusive_lock(self.last_checkpoint, command):
            yield

    def remove_leftover_temp_files(self) -> list[Path]:
        """Delete the temp files of saves that a kill cut short (call while holding `lock`)."""
        leftovers = leftover_temp_files(self.path, is_run_file)
        for path in leftovers:
            path.unlink(missing_ok=True)
        return leftovers

    # -- the metrics log -------------------------------------------------------------------------
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
