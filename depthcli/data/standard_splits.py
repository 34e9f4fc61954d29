"""The standard KITTI split lists shipped with depthcli (origin and licence: data/splits/README.md).

A split argument is either a file of `folder frame side` lines or a shipped name: `eigen` (its test
list), `eigen_zhou/val`, `eigen_zhou:train`, ... Names never shadow files: an existing path wins.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

from depthcli.data import kitti
from depthcli.errors import DepthcliError

SPLITS_DIR = Path(__file__).with_name("splits")

# name -> part -> expected number of lines (checked when read, so a damaged install is caught)
STANDARD_SPLITS: dict[str, dict[str, int]] = {
    "eigen": {"test": 697},
    "eigen_benchmark": {"test": 652},
    "eigen_zhou": {"train": 39810, "val": 4424},
    "eigen_full": {"train": 45200, "val": 1776},
    "benchmark": {"train": 72084, "val": 6060},
}
# The splits evaluation runs on: a validation or training set sharing a drive with these is not honest.
TEST_SPLITS = ("eigen", "eigen_benchmark")


def split_names() -> list[str]:
    """Every `name/part` that can be given as a split argument."""
    return [f"{name}/{part}" for name, parts in STANDARD_SPLITS.items() for part in parts]


def parse_split_name(text: str) -> tuple[str, str] | None:
    """`eigen` -> ("eigen", "test"), `eigen_zhou/val` or `eigen_zhou:val` -> ("eigen_zhou", "val"); else None.

    A name without a part means its test list, or its only list.
    """
    name, _, part = str(text).replace(":", "/").partition("/")
    parts = STANDARD_SPLITS.get(name)
    if parts is None:
        return None
    if not part:
        part = "test" if "test" in parts else (next(iter(parts)) if len(parts) == 1 else "")
        if not part:
            raise DepthcliError(f"split {name} has parts {', '.join(parts)}; name one, e.g. {name}/{next(iter(parts))}")
    if part not in parts:
        raise DepthcliError(f"split {name} has no {part} list; it has {', '.join(parts)}")
    return name, part


@lru_cache(maxsize=16)
def _read_standard(name: str, part: str) -> tuple[kitti.SplitEntry, ...]:
    path = SPLITS_DIR / name / f"{part}_files.txt.gz"
    try:
        with gzip.open(path, "rt") as handle:
            lines = handle.read().splitlines()
    except (OSError, EOFError) as exc:
        raise DepthcliError(f"shipped split {path} cannot be read ({exc}); reinstall depthcli") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        folder, frame, side = line.split()
        entries.append(kitti.SplitEntry(folder, int(frame), side, number))
    if len(entries) != STANDARD_SPLITS[name][part]:
        raise DepthcliError(f"shipped split {path} has {len(entries)} lines, expected {STANDARD_SPLITS[name][part]}")
    return tuple(entries)


def standard_split(name: str, part: str = "test") -> list[kitti.SplitEntry]:
    """The entries of a shipped split list."""
    return list(_read_standard(name, part))


def read_split_argument(split: str | os.PathLike) -> tuple[list[kitti.SplitEntry], str]:
    """Entries of a split file, or of a shipped split when no such file exists -> (entries, label)."""
    if Path(split).exists():
        return kitti.read_split(split), str(split)
    parsed = parse_split_name(str(split))
    if parsed is None:
        raise DepthcliError(f"split {split} is neither a file nor a shipped split; shipped: {', '.join(split_names())}")
    name, part = parsed
    return standard_split(name, part), f"{name}/{part} (shipped)"


def drives_of(entries: list[kitti.SplitEntry]) -> set[str]:
    """The drive folders (`DATE/DATE_drive_XXXX_sync`) a split touches."""
    return {entry.folder for entry in entries}


def evaluation_split_drives() -> dict[str, set[str]]:
    """The drives of each standard evaluation split."""
    return {name: drives_of(standard_split(name, "test")) for name in TEST_SPLITS}
