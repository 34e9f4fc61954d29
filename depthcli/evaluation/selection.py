"""Honest model selection: `best.ckpt` must be chosen on data that shares no drive with the evaluation split.

Public issue threads advise evaluating every epoch on the test split and keeping the best, which
reports a maximum over test scores. depthcli picks `best.ckpt` on `--val-data` only; these checks say
loudly when that validation set (or the training data) shares a KITTI drive with the split being
evaluated (at `eval`) or with a standard evaluation split (at `train`), and when a NYU run selects on
its test split. The standard validation lists (eigen_zhou, eigen_full val) share no drive with the
Eigen test drives; the `benchmark` lists do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from depthcli.data import kitti
from depthcli.data.cache_file import open_cache
from depthcli.data.standard_splits import evaluation_split_drives, parse_split_name, read_split_argument
from depthcli.errors import DepthcliError


def _cache_contents(path: Path) -> tuple[str | None, set[str]]:
    """(dataset, drive folders) of a depthcli cache; (None, empty) when it cannot be read."""
    try:
        with open_cache(path) as handle:  # checked: a damaged file is a DepthcliError, not an h5py traceback
            dataset = handle.attrs.get("dataset")
            folders = set(handle["samples/folder"].asstr()[()]) if "samples/folder" in handle else set()
            return (str(dataset) if dataset is not None else None), folders
    except DepthcliError:
        return None, set()


def data_drives(data: str | os.PathLike | None, split: str | os.PathLike | None = None) -> set[str] | None:
    """The KITTI drives a training or validation source holds: a cache, a split, or a whole raw root.

    None when it cannot be told (missing files, not KITTI).
    """
    if split is not None and (Path(split).is_file() or parse_split_name(str(split))):
        try:
            entries, _ = read_split_argument(split)
        except DepthcliError:
            return None
        return {entry.folder for entry in entries}
    if not data:
        return None
    path = Path(data)
    if path.is_file():
        dataset, folders = _cache_contents(path)
        return folders if dataset == "kitti" else None
    for ext in kitti.IMAGE_EXTS if path.is_dir() else ():
        try:
            return {entry.folder for entry in kitti.all_frames_split(path, ext)}
        except DepthcliError:
            continue
    return None


def _overlap_message(role: str, source, shared: set[str], target: str) -> str:
    listed = ", ".join(sorted(shared)[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
    return (
        f"the {role} data ({source}) shares {len(shared)} drive(s) with {target}: {listed}. "
        "Numbers on that split are not a held-out result"
    )


def nyu_selection_warning(config: dict) -> str | None:
    """A NYU run's `--val-data` is scored on its cache's test split: best.ckpt is then picked on test."""
    val = config.get("val_data")
    if val and Path(val).is_file() and _cache_contents(Path(val))[0] == "nyu":
        return (
            f"best.ckpt of this run was chosen on the test split of {val} (the NYU validation loop scores "
            "the cache's test split): its NYU test numbers are selected on test data"
        )
    return None


def eval_selection_warnings(config: dict, eval_drives: Iterable[str], protocol_dataset: str) -> list[str]:
    """At `eval`: the checkpoint's validation / training data against the drives being evaluated."""
    if protocol_dataset == "nyu":
        warning = nyu_selection_warning(config)
        return [warning] if warning else []
    eval_drives = set(eval_drives)
    warnings = []
    for role, data, split in (("validation", config.get("val_data"), None),
                              ("training", config.get("data"), config.get("split"))):  # fmt: skip
        drives = data_drives(data, split)
        if drives and drives & eval_drives:
            warnings.append(_overlap_message(role, split or data, drives & eval_drives, "the evaluated split"))
    return warnings


def train_selection_warnings(config: dict) -> list[str]:
    """At `train`: validation / training data against the standard evaluation splits (eigen, eigen_benchmark)."""
    warning = nyu_selection_warning(config)
    if warning:
        return [warning]
    warnings = []
    standard = evaluation_split_drives()
    test_drives = set().union(*standard.values())
    for role, data, split in (("validation", config.get("val_data"), None),
                              ("training", config.get("data"), config.get("split"))):  # fmt: skip
        drives = data_drives(data, split)
        if drives and drives & test_drives:
            names = " / ".join(name for name, test in standard.items() if drives & test)
            warnings.append(_overlap_message(role, split or data, drives & test_drives, f"the {names} test split"))
    return warnings


def announce_train_selection(config: dict) -> list[str]:
    """Print `train_selection_warnings` in bold red on stderr (the runner calls it on rank 0 only)."""
    warnings = train_selection_warnings(config)
    if warnings:
        from rich.console import Console
        from rich.markup import escape

        err = Console(stderr=True)
        for warning in warnings:
            err.print(f"[bold red]WARNING (selection):[/] {escape(warning)}", highlight=False)
    return warnings
