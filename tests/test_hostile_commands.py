"""Hostile inputs to `predict`, `synth`, `models`, `export` and `weights`, and out-of-memory inside a net.

The harness and the good inputs are in tests/hostile_workspace.py.
"""

from __future__ import annotations

import os
import pickle
import sys

import pytest
import torch
from hostile_workspace import (
    HUGE,
    Args,
    check_case,
    existing_checkpoint_as_output,
    hardlink,
    nan_weights,
    predict_args,
    raw_pickle,
    release,
    symlink_loop,
    synth_args,
)

# name -> (argv builder, fragment the error line must contain)
CASES: dict[str, tuple[Args, str]] = {
    # ---------------------------------------------------------------- predict
    "predict checkpoint missing": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", ws.tmp / "no.ckpt"],
        "no.ckpt",
    ),
    "predict checkpoint with NaN weights": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", nan_weights(ws)],
        "NaN",
    ),
    "predict checkpoint empty": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", ws.file("e.ckpt", b"")],
        "e.ckpt",
    ),
    "predict checkpoint raw pickle": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", raw_pickle(ws)],
        "raw_pickle",
    ),
    "predict checkpoint random bytes": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", ws.file("r.ckpt", os.urandom(4096))],
        "r.ckpt",
    ),
    "predict input missing": (
        lambda ws: ["predict", ws.tmp / "gone.png", "-c", ws.checkpoint, "-o", ws.tmp / "p"],
        "gone.png",
    ),
    "predict input /dev/null": (
        lambda ws: ["predict", "/dev/null", "-c", ws.checkpoint, "-o", ws.tmp / "p"],
        "not a regular file",
    ),
    "predict glob over a symlink loop": (
        lambda ws: ["predict", symlink_loop(ws), "-c", ws.tmp / "later.ckpt", "-o", ws.tmp / "looped"],
        "later.ckpt",  # the inputs are expanded before the checkpoint is opened
    ),
    "predict size huge": (lambda ws: [*predict_args(ws), "--size", HUGE], HUGE),
    "predict size 0x0": (lambda ws: [*predict_args(ws), "--size", "0x0"], "0x0"),
    "predict size not a multiple of 32": (lambda ws: [*predict_args(ws), "--size", "100x100"], "100x100"),
    "predict scale factor inf": (lambda ws: [*predict_args(ws), "--scale-factor", "inf"], "--scale-factor"),
    "predict scale factor nan": (lambda ws: [*predict_args(ws), "--scale-factor", "nan"], "--scale-factor"),
    "predict out is a file": (
        lambda ws: ["predict", ws.images, "-c", ws.checkpoint, "-o", ws.file("out_file", "x")],
        "out_file",
    ),
    "predict output would overwrite the checkpoint": (
        lambda ws: ["predict", *existing_checkpoint_as_output(ws)[0]],
        "same file as",
    ),
    "predict device unknown": (lambda ws: [*predict_args(ws), "--device", "tpu"], "tpu"),
    "predict colormap unknown": (lambda ws: [*predict_args(ws), "--colormap", "nope"], "nope"),
    # ---------------------------------------------------------------- synth
    "synth kitti size huge": (lambda ws: [*synth_args("kitti", ws), "--size", "99999x99999"], "99999x99999"),
    "synth kitti size 0x0": (lambda ws: [*synth_args("kitti", ws), "--size", "0x0"], "0x0"),
    "synth kitti frames 0": (lambda ws: [*synth_args("kitti", ws), "--frames", "0"], "--frames"),
    "synth kitti frames huge": (lambda ws: [*synth_args("kitti", ws), "--frames", "1000000000"], "--frames"),
    "synth kitti drives 0": (lambda ws: [*synth_args("kitti", ws), "--drives", "0"], "--drives"),
    "synth kitti drives huge": (lambda ws: [*synth_args("kitti", ws), "--drives", "100000000"], "--drives"),
    "synth kitti workers 0": (
        lambda ws: ["synth", "kitti", ws.tmp / "w0", "--workers", "0", "--frames", "5", "--size", "32x16"],
        "--workers",
    ),
    "synth kitti workers huge": (
        lambda ws: ["synth", "kitti", ws.tmp / "wh", "--workers", "100000", "--frames", "5", "--size", "32x16"],
        "--workers",
    ),
    "synth kitti out is a file": (
        lambda ws: ["synth", "kitti", ws.file("synth_file", "x"), "--frames", "5", "--size", "32x16"],
        "synth_file",
    ),
    "synth nyu size huge": (lambda ws: [*synth_args("nyu", ws), "--size", "99999x99999"], "99999x99999"),
    "synth nyu frames 0": (lambda ws: [*synth_args("nyu", ws), "--frames", "0"], "--frames"),
    # ---------------------------------------------------------------- models
    "models size huge": (lambda ws: ["models", "--size", HUGE], HUGE),
    "models size 0x0": (lambda ws: ["models", "--size", "0x0"], "0x0"),
    "models size text": (lambda ws: ["models", "--size", "big"], "big"),
    "models size not a multiple of 32": (lambda ws: ["models", "--size", "100x50"], "100x50"),
    # ---------------------------------------------------------------- export
    "export out is the checkpoint": (
        lambda ws: ["export", "onnx", ws.copy(ws.checkpoint, "exp.ckpt"), "--out", ws.tmp / "exp.ckpt"],
        "same file as",
    ),
    "export size huge": (
        lambda ws: ["export", "onnx", ws.checkpoint, "--out", ws.tmp / "m.onnx", "--size", HUGE],
        HUGE,
    ),
    "export checkpoint /dev/null": (
        lambda ws: ["export", "onnx", "/dev/null", "--out", ws.tmp / "m.onnx"],
        "/dev/null",
    ),
    "export out is a folder": (lambda ws: ["export", "onnx", ws.checkpoint, "--out", ws.tmp], "hostile"),
    "export out is a FIFO": (
        lambda ws: ["export", "onnx", ws.checkpoint, "--out", ws.fifo("model_fifo.onnx")],
        "model_fifo.onnx",
    ),
    # ---------------------------------------------------------------- weights
    "weights info raw pickle": (lambda ws: ["weights", "info", raw_pickle(ws)], "raw_pickle"),
    "weights info empty": (lambda ws: ["weights", "info", ws.file("empty.ckpt", b"")], "empty.ckpt"),
    "weights info folder": (lambda ws: ["weights", "info", ws.tmp], "hostile"),
    "weights import out is its own depth.pth": (
        lambda ws: ["weights", "import", "monodepth2", release(ws), "--out", ws.tmp / "release" / "depth.pth"],
        "same file as",
    ),
    "weights import unknown project": (
        lambda ws: ["weights", "import", "nope", ws.tmp, "--out", ws.tmp / "w.ckpt"],
        "nope",
    ),
    "weights slim out is a hard link to the checkpoint": (
        lambda ws: ["weights", "slim", ws.checkpoint, "--out", hardlink(ws.checkpoint, ws.tmp / "slim.ckpt")],
        "same file as checkpoint",
    ),
    "weights info /dev/null": (lambda ws: ["weights", "info", "/dev/null"], "is a device"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_clean_line(name, hostile_ws, monkeypatch, capsys):
    check_case(*CASES[name], hostile_ws, monkeypatch, capsys)


class _Exhausting(torch.nn.Module):
    """A depth net whose forward fails the way an allocation does (`error` is raised)."""

    def __init__(self, error: BaseException):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.error = error

    def forward(self, images):
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: 119923212288"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 112.00 GiB"),
        MemoryError(),
    ],
)
def test_running_out_of_memory_in_the_net_is_one_line(error):
    from depthcli.errors import DepthcliError
    from depthcli.inference import run_depth_net

    with pytest.raises(DepthcliError, match=r"^not enough memory to run the depth net on 2 image\(s\) at 64x32 on cpu"):
        run_depth_net(_Exhausting(error), torch.zeros(2, 3, 32, 64), (64, 32))
    with pytest.raises(RuntimeError, match="a shape bug"):  # anything else keeps its traceback
        run_depth_net(_Exhausting(RuntimeError("a shape bug")), torch.zeros(2, 3, 32, 64), (64, 32))


def test_raw_pickle_checkpoint_is_one_line_on_the_real_stderr(tmp_path):
    """In-process runs hide Python warnings (pytest captures them): run the console entry point for real."""
    import subprocess

    path = tmp_path / "raw.ckpt"
    path.write_bytes(pickle.dumps({"format": "depthcli", "model": {}}))
    command = [sys.executable, "-m", "depthcli", "weights", "info", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and str(path) in lines[0], result.stderr
