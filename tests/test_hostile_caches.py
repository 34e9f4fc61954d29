"""Hostile inputs to `cache build`, `cache info` and eval on damaged caches: outputs that name an input, special
files, absurd sizes, damaged or edited cache files.

The harness and the good inputs are in tests/hostile_workspace.py.
"""

from __future__ import annotations

import pytest
from hostile_workspace import (
    HUGE,
    Args,
    check_case,
    damaged_signature,
    edited_eval,
    edited_table,
    foreign_h5,
    garbage_splits,
    hardlink,
    kitti_cache_args,
    no_datasets,
    old_version,
)

# name -> (argv builder, fragment the error line must contain)
CASES: dict[str, tuple[Args, str]] = {
    # ---------------------------------------------------------------- cache build: outputs and arguments
    "cache out is the split file": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.copy(ws.split, "s.txt"), "--out", ws.tmp / "s.txt"],
        "same file as",
    ),
    "cache out is the NYU .mat root": (
        lambda ws: [
            "cache",
            "build",
            "--dataset",
            "nyu",
            "--root",
            ws.copy(ws.nyu / "nyu_depth_v2_labeled.mat", "nyu.mat"),
            "--out",
            ws.tmp / "nyu.mat",
        ],
        "same file as",
    ),
    "cache out is a hard link to the split": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.split, "--out", hardlink(ws.split, ws.tmp / "hl.h5")],
        "same file as",
    ),
    "cache out is a FIFO": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.split, "--out", ws.fifo("fifo.h5"), "--size", "64x64"],
        "fifo.h5",
    ),
    "cache split is a FIFO": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.fifo("split_fifo"), "--out", ws.tmp / "c.h5"],
        "split_fifo",
    ),
    "cache root is /dev/null": (
        lambda ws: ["cache", "build", "--dataset", "kitti", "--root", "/dev/null", "--out", ws.tmp / "c.h5"],
        "/dev/null",
    ),
    "cache size huge": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.split, "--out", ws.tmp / "c.h5", "--size", HUGE],
        HUGE,
    ),
    "cache size 0x0": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.split, "--out", ws.tmp / "c.h5", "--size", "0x0"],
        "0x0",
    ),
    "cache size negative": (
        lambda ws: [*kitti_cache_args(ws), "--split", ws.split, "--out", ws.tmp / "c.h5", "--size", "-64x32"],
        "-64x32",
    ),
    "cache NYU garbage splits.mat": (
        lambda ws: ["cache", "build", "--dataset", "nyu", "--root", garbage_splits(ws), "--out", ws.tmp / "n.h5"],
        "splits.mat",
    ),
    # ---------------------------------------------------------------- cache info: damaged files
    "info missing": (lambda ws: ["cache", "info", ws.tmp / "none.h5"], "none.h5 does not exist"),
    "info /dev/null": (lambda ws: ["cache", "info", "/dev/null"], "not a regular file"),
    "info FIFO": (lambda ws: ["cache", "info", ws.fifo("info_fifo.h5")], "not a regular file"),
    "info folder": (lambda ws: ["cache", "info", ws.tmp], "folder"),
    "info empty file": (lambda ws: ["cache", "info", ws.file("empty.h5", b"")], "empty.h5"),
    "info text file": (lambda ws: ["cache", "info", ws.file("text.h5", "hello")], "text.h5"),
    "info truncated": (
        lambda ws: ["cache", "info", ws.file("cut.h5", ws.train_cache.read_bytes()[:4096])],
        "cut.h5",
    ),
    "info attributes but no datasets": (lambda ws: ["cache", "info", no_datasets(ws)], "attrs_only.h5"),
    "info HDF5 signature damaged": (lambda ws: ["cache", "info", damaged_signature(ws)], "signature.h5"),
    "info frames/hw edited": (lambda ws: ["cache", "info", edited_table(ws, "frames/hw", [9, 9])], "edited"),
    "info source name edited": (
        lambda ws: ["cache", "info", edited_table(ws, "frames/source", "elsewhere.png")],
        "edited",
    ),
    "info foreign HDF5": (lambda ws: ["cache", "info", foreign_h5(ws)], "foreign.h5"),
    "info old format version": (lambda ws: ["cache", "info", old_version(ws)], "format version 1"),
    # ---------------------------------------------------------------- eval on damaged caches
    "eval cache attributes but no datasets": (
        lambda ws: ["eval", "--data", no_datasets(ws), "--predictions", ws.preds],
        "attrs_only.h5",
    ),
    "eval cache source names edited": (
        lambda ws: ["eval", "--data", edited_eval(ws, "samples/folder", "elsewhere"), "--predictions", ws.preds],
        "edited_eval",
    ),
    "eval cache gt_hw edited": (
        lambda ws: ["eval", "--data", edited_eval(ws, "samples/gt_hw", [5000, 5000]), "--predictions", ws.preds],
        "edited_eval",
    ),
    "eval training cache": (lambda ws: ["eval", "--data", ws.train_cache, "--predictions", ws.preds], "full-size"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_clean_line(name, hostile_ws, monkeypatch, capsys):
    check_case(*CASES[name], hostile_ws, monkeypatch, capsys)
