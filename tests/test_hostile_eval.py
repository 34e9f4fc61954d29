"""Hostile inputs to `eval` and `sweep`: predictions, options, checkpoints, NYU splits.mat files, report files
that name an input.

The harness and the good inputs are in tests/hostile_workspace.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hostile_workspace import (
    BAD_SPLITS,
    HUGE,
    Args,
    Workspace,
    bad_splits_mat,
    check_case,
    eval_args,
    hardlink,
    nan_weights,
    object_npy,
    raw_pickle,
    with_nan,
)


def _nyu_eval(ws: Workspace, splits: Path) -> list:
    return ["eval", "--data", ws.nyu, "--protocol", "nyu", "--predictions", ws.preds, "--split", splits]


def _sweep_json_onto_checkpoint(ws: Workspace) -> list:
    checkpoint = ws.copy(ws.checkpoint, "sw.ckpt")
    sweep = ["sweep", "--checkpoint", checkpoint, "--data", ws.kitti, "--split", ws.split, "--resolutions", "64x64"]
    return [*sweep, "--out", ws.tmp / "sweep", "--json", checkpoint]


# name -> (argv builder, fragment the error line must contain)
CASES: dict[str, tuple[Args, str]] = {
    # ---------------------------------------------------------------- eval: predictions and options
    "eval predictions missing": (lambda ws: [*eval_args(ws), "--predictions", ws.tmp / "no.npy"], "no.npy"),
    "eval predictions /dev/null": (lambda ws: [*eval_args(ws), "--predictions", "/dev/null"], "not a regular file"),
    "eval predictions empty file": (
        lambda ws: [*eval_args(ws), "--predictions", ws.file("empty.npy", b"")],
        "empty.npy",
    ),
    "eval predictions text": (lambda ws: [*eval_args(ws), "--predictions", ws.file("t.npy", "1 2 3")], "t.npy"),
    "eval predictions complex": (
        lambda ws: [*eval_args(ws), "--predictions", ws.npy("c.npy", np.ones((2, 32, 64), np.complex64))],
        "complex",
    ),
    "eval predictions NaN": (
        lambda ws: [*eval_args(ws), "--predictions", ws.npy("nan.npy", with_nan(np.load(ws.preds)))],
        "non-finite",
    ),
    "eval predictions object array": (
        lambda ws: [*eval_args(ws), "--predictions", object_npy(ws)],
        "obj.npy",
    ),
    "eval predictions 2-D": (
        lambda ws: [*eval_args(ws), "--predictions", ws.npy("flat.npy", np.ones((32, 64), np.float32))],
        "flat.npy",
    ),
    "eval predictions zero images": (
        lambda ws: [*eval_args(ws), "--predictions", ws.npy("zero.npy", np.ones((0, 32, 64), np.float32))],
        "zero.npy",
    ),
    "eval predictions wrong count": (
        lambda ws: [*eval_args(ws), "--predictions", ws.npy("three.npy", np.ones((3, 32, 64), np.float32))],
        "three.npy",
    ),
    "eval scale factor inf": (
        lambda ws: [*eval_args(ws), "--predictions", ws.preds, "--scale-factor", "inf"],
        "--scale-factor",
    ),
    "eval scale factor nan": (
        lambda ws: [*eval_args(ws), "--predictions", ws.preds, "--scale-factor", "nan"],
        "--scale-factor",
    ),
    "eval scale factor negative": (
        lambda ws: [*eval_args(ws), "--predictions", ws.preds, "--scale-factor", "-2"],
        "--scale-factor",
    ),
    "eval resolutions huge": (
        lambda ws: [*eval_args(ws), "--checkpoint", ws.checkpoint, "--resolutions", HUGE],
        HUGE,
    ),
    "eval raw pickle checkpoint": (lambda ws: [*eval_args(ws), "--checkpoint", raw_pickle(ws)], "raw_pickle"),
    "eval NYU garbage splits.mat": (
        lambda ws: _nyu_eval(ws, ws.file("garbage_splits.mat", os.urandom(500))),
        "garbage_splits.mat",
    ),
    "eval data /dev/null": (
        lambda ws: ["eval", "--data", "/dev/null", "--split", ws.split, "--predictions", ws.preds],
        "/dev/null",
    ),
    "eval checkpoint with NaN weights": (lambda ws: [*eval_args(ws), "--checkpoint", nan_weights(ws)], "NaN"),
    **{
        f"eval NYU splits.mat with {kind}": (lambda ws, kind=kind: _nyu_eval(ws, bad_splits_mat(ws, kind)), "splits_")
        for kind in BAD_SPLITS
    },
    "eval checkpoint /dev/null": (lambda ws: [*eval_args(ws), "--checkpoint", "/dev/null"], "is a device"),
    "eval checkpoint is a folder": (lambda ws: [*eval_args(ws), "--checkpoint", ws.tmp], "is a folder"),
    # ---------------------------------------------------------------- report files that name an input
    "eval --json is the checkpoint": (
        lambda ws: [*eval_args(ws), "--checkpoint", ws.copy(ws.checkpoint, "j.ckpt"), "--json", ws.tmp / "j.ckpt"],
        "same file as --checkpoint",
    ),
    "eval --json is the predictions": (
        lambda ws: [*eval_args(ws), "--predictions", ws.copy(ws.preds, "p.npy"), "--json", ws.tmp / "p.npy"],
        "same file as --predictions",
    ),
    "eval --json is a hard link to the split": (
        lambda ws: [*eval_args(ws), "--predictions", ws.preds, "--json", hardlink(ws.split, ws.tmp / "split.json")],
        "same file as --split",
    ),
    "eval --per-image is the split": (
        lambda ws: [*eval_args(ws), "--predictions", ws.preds, "--per-image", ws.split],
        "same file as --split",
    ),
    "eval --json is a FIFO": (
        lambda ws: [*eval_args(ws), "--predictions", ws.preds, "--json", ws.fifo("json_fifo")],
        "json_fifo",
    ),
    "sweep --json is the checkpoint": (_sweep_json_onto_checkpoint, "same file as --checkpoint"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_clean_line(name, hostile_ws, monkeypatch, capsys):
    check_case(*CASES[name], hostile_ws, monkeypatch, capsys)
