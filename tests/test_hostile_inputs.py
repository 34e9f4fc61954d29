"""Hostile-input harness: many bad inputs through the real entry point, each one clean line and exit 2.

Every case runs `depthcli.cli.app.main` in-process (what the console script runs) with its own argv and
asserts: exit status 2, exactly one line on stderr starting with `error:`, no traceback, and the line says
what the case is about (a fragment: the file or value named, or the reason). Cases that name an output
which is also an input check that the input is unchanged afterwards. Special files stand in as FIFOs
made in tmp (never /dev/null as an output: as root, a rename onto it would replace the device).

`python -m pytest tests/test_hostile_inputs.py -q` prints one line per failing case; the count of
parametrized cases is the number of hostile inputs tried.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from depthcli.checkpoints import save_checkpoint
from depthcli.cli.app import main
from depthcli.data.cache import build_cache
from depthcli.nets import build_depth_net

CASE_TIMEOUT_S = 60  # a case that hangs (e.g. a glob walking a symlink loop) fails instead of blocking CI
NET_SIZE = (64, 64)


@dataclass
class Workspace:
    """Good inputs every case starts from; cases write their bad files into `tmp`."""

    tmp: Path
    kitti: Path
    split: Path  # two eval lines of the real KITTI sample
    checkpoint: Path
    images: Path  # folder with two small PNGs
    preds: Path  # good (2,32,64) disparity predictions for `split`
    train_cache: Path
    eval_cache: Path
    nyu: Path  # synthetic NYU folder (labelled .mat + splits.mat)

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def fifo(self, name: str) -> Path:
        path = self.tmp / name
        if not path.exists():
            os.mkfifo(path)
        return path

    def npy(self, name: str, array: np.ndarray) -> Path:
        path = self.tmp / name
        np.save(path, array)
        return path

    def copy(self, source: Path, name: str) -> Path:
        return self.file(name, source.read_bytes())


@pytest.fixture(scope="module")
def ws(tmp_path_factory, kitti_mini, synthetic_nyu) -> Workspace:
    root = tmp_path_factory.mktemp("hostile")
    split = root / "two.txt"
    split.write_text("".join((kitti_mini / "eval_files.txt").read_text().splitlines(keepends=True)[2:4]))
    torch.manual_seed(0)
    config = {"net": "radepth-small", "size": list(NET_SIZE), "min_depth": 0.1, "max_depth": 100.0}
    model = build_depth_net("radepth-small")
    checkpoint = save_checkpoint(root / "small.ckpt", {"kind": "depth", "config": config, "model": model.state_dict()})
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    preds = root / "preds.npy"
    np.save(preds, rng.uniform(0.01, 0.3, (2, 32, 64)).astype(np.float32))
    train_cache = build_cache("kitti", kitti_mini, root / "train.h5", split=split, size=(64, 32))
    eval_cache = build_cache("kitti", kitti_mini, root / "eval.h5", split=split)
    return Workspace(root, kitti_mini, split, checkpoint, images, preds, train_cache, eval_cache, synthetic_nyu)


def _no_datasets(ws: Workspace) -> Path:
    """An HDF5 file carrying a real cache's root attributes (checksum included) but no datasets."""
    path = ws.tmp / "attrs_only.h5"
    with h5py.File(ws.train_cache, "r") as good, h5py.File(path, "w") as bad:
        for key, value in good.attrs.items():
            bad.attrs[key] = value
    return path


def _damaged_signature(ws: Workspace) -> Path:
    """The train cache with its HDF5 signature (the first 8 bytes) overwritten (random flips: test_cache_fuzz)."""
    return ws.file("signature.h5", b"\0" * 8 + ws.train_cache.read_bytes()[8:])


def _edited_table(ws: Workspace, name: str, value) -> Path:
    """The train cache with one table overwritten in place (what verify's checksum must notice)."""
    path = ws.copy(ws.train_cache, f"edited_{name.replace('/', '_')}.h5")
    with h5py.File(path, "r+") as handle:
        handle[name][0] = value
    return path


def _raw_pickle(ws: Workspace) -> Path:
    """A checkpoint written with plain pickle (not torch.save): loading must not unpickle it."""
    return ws.file("raw_pickle.ckpt", pickle.dumps({"format": "depthcli", "model": {}}))


def _garbage_splits(ws: Workspace) -> Path:
    folder = ws.tmp / "nyu_garbage_splits"
    folder.mkdir(exist_ok=True)
    (folder / "nyu_depth_v2_labeled.mat").symlink_to(ws.nyu / "nyu_depth_v2_labeled.mat")
    (folder / "splits.mat").write_bytes(os.urandom(300))
    return folder


def _symlink_loop(ws: Workspace) -> str:
    loop = ws.tmp / "loop"
    (loop / "sub").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(loop / "sub" / "x.png"), np.zeros((40, 60, 3), np.uint8))
    for name in ("back", "again"):  # two ways back: a walk that follows them never ends (2**depth paths)
        if not (loop / "sub" / name).is_symlink():
            (loop / "sub" / name).symlink_to(loop, target_is_directory=True)
    return f"{loop}/**/*.png"


def _existing_checkpoint_as_output(ws: Workspace) -> tuple[list, Path]:
    out = ws.tmp / "pred_out_ck"
    out.mkdir(exist_ok=True)
    checkpoint = ws.copy(ws.checkpoint, "pred_out_ck/a_disp.npy")
    return [ws.images / "a.png", "-c", checkpoint, "-o", out, "--overwrite"], checkpoint


def _kitti_cache_args(ws: Workspace) -> list:
    return ["cache", "build", "--dataset", "kitti", "--root", ws.kitti]


def _eval_args(ws: Workspace) -> list:
    return ["eval", "--data", ws.kitti, "--split", ws.split, "--protocol", "kitti-eigen"]


def _predict_args(ws: Workspace) -> list:
    return ["predict", ws.images, "-c", ws.checkpoint, "-o", ws.tmp / "pred_out"]


def _synth_args(kind: str, ws: Workspace, out: str = "synth_out") -> list:
    return ["synth", kind, ws.tmp / out, "--workers", "1"]


def _hardlink(source: Path, link: Path) -> Path:
    if not link.exists():
        os.link(source, link)
    return link


def _foreign_h5(ws: Workspace) -> Path:
    path = ws.tmp / "foreign.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)
    return path


def _old_version(ws: Workspace) -> Path:
    path = ws.copy(ws.train_cache, "old_version.h5")
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = 1
    return path


def _edited_eval(ws: Workspace, name: str, value) -> Path:
    path = ws.copy(ws.eval_cache, "edited_eval.h5")
    with h5py.File(path, "r+") as handle:
        handle[name][0] = value
    return path


def _with_nan(preds: np.ndarray) -> np.ndarray:
    preds = preds.copy()
    preds[1, 3, 4] = np.nan
    return preds


def _object_npy(ws: Workspace) -> Path:
    path = ws.tmp / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


def _release(ws: Workspace) -> Path:
    """A monodepth2 release folder with (meaningless) encoder.pth and depth.pth."""
    folder = ws.tmp / "release"
    folder.mkdir(exist_ok=True)
    torch.save({"height": 64, "width": 64}, folder / "encoder.pth")
    torch.save({}, folder / "depth.pth")
    return folder


def _nan_weights(ws: Workspace) -> Path:
    """The small checkpoint after a diverged run: one weight tensor is NaN."""
    payload = torch.load(ws.checkpoint, weights_only=True)
    name = next(key for key, value in payload["model"].items() if value.is_floating_point())
    payload["model"][name] = torch.full_like(payload["model"][name], float("nan"))
    return save_checkpoint(ws.tmp / "nan_weights.ckpt", {key: payload[key] for key in ("kind", "config", "model")})


BAD_SPLITS = {  # splits.mat files that load as MATLAB but hold no usable index list
    "text indices": {"trainNdxs": np.array(["a", "b"]), "testNdxs": np.array(["c"])},
    "fractional indices": {"trainNdxs": np.array([[1.5], [2.0]]), "testNdxs": np.array([[3.0]])},
    "NaN indices": {"trainNdxs": np.array([[np.nan]]), "testNdxs": np.array([[1.0]])},
    "a struct": {"trainNdxs": {"a": 1}, "testNdxs": {"b": np.array([1])}},
    "indices past the end": {"trainNdxs": np.array([[1]]), "testNdxs": np.array([[10_000]])},
    "zero indices": {"trainNdxs": np.array([[0]]), "testNdxs": np.array([[0]])},
    "no testNdxs": {"trainNdxs": np.array([[1]])},
}


def _bad_splits_mat(ws: Workspace, kind: str) -> Path:
    import scipy.io

    path = ws.tmp / f"splits_{kind.replace(' ', '_')}.mat"
    scipy.io.savemat(path, BAD_SPLITS[kind])
    return path


Args = Callable[[Workspace], list]
HUGE = "99968x99968"  # multiples of 32: only a size bound stops it

# name -> (argv builder, fragment the error line must contain)
CASES: dict[str, tuple[Args, str]] = {
    # ---------------------------------------------------------------- cache build: outputs and arguments
    "cache out is the split file": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.copy(ws.split, "s.txt"), "--out", ws.tmp / "s.txt"],
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
    ),  # fmt: skip
    "cache out is a hard link to the split": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.split, "--out", _hardlink(ws.split, ws.tmp / "hl.h5")],
        "same file as",
    ),
    "cache out is a FIFO": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.split, "--out", ws.fifo("fifo.h5"), "--size", "64x64"],
        "fifo.h5",
    ),
    "cache split is a FIFO": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.fifo("split_fifo"), "--out", ws.tmp / "c.h5"],
        "split_fifo",
    ),
    "cache root is /dev/null": (
        lambda ws: ["cache", "build", "--dataset", "kitti", "--root", "/dev/null", "--out", ws.tmp / "c.h5"],
        "/dev/null",
    ),
    "cache size huge": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.split, "--out", ws.tmp / "c.h5", "--size", HUGE],
        HUGE,
    ),
    "cache size 0x0": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.split, "--out", ws.tmp / "c.h5", "--size", "0x0"],
        "0x0",
    ),
    "cache size negative": (
        lambda ws: [*_kitti_cache_args(ws), "--split", ws.split, "--out", ws.tmp / "c.h5", "--size", "-64x32"],
        "-64x32",
    ),
    "cache NYU garbage splits.mat": (
        lambda ws: ["cache", "build", "--dataset", "nyu", "--root", _garbage_splits(ws), "--out", ws.tmp / "n.h5"],
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
    "info attributes but no datasets": (lambda ws: ["cache", "info", _no_datasets(ws)], "attrs_only.h5"),
    "info HDF5 signature damaged": (lambda ws: ["cache", "info", _damaged_signature(ws)], "signature.h5"),
    "info frames/hw edited": (lambda ws: ["cache", "info", _edited_table(ws, "frames/hw", [9, 9])], "edited"),
    "info source name edited": (
        lambda ws: ["cache", "info", _edited_table(ws, "frames/source", "elsewhere.png")],
        "edited",
    ),
    "info foreign HDF5": (lambda ws: ["cache", "info", _foreign_h5(ws)], "foreign.h5"),
    "info old format version": (lambda ws: ["cache", "info", _old_version(ws)], "format version 1"),
    # ---------------------------------------------------------------- eval on damaged caches
    "eval cache attributes but no datasets": (
        lambda ws: ["eval", "--data", _no_datasets(ws), "--predictions", ws.preds],
        "attrs_only.h5",
    ),
    "eval cache source names edited": (
        lambda ws: ["eval", "--data", _edited_eval(ws, "samples/folder", "elsewhere"), "--predictions", ws.preds],
        "edited_eval",
    ),
    "eval cache gt_hw edited": (
        lambda ws: ["eval", "--data", _edited_eval(ws, "samples/gt_hw", [5000, 5000]), "--predictions", ws.preds],
        "edited_eval",
    ),
    "eval training cache": (lambda ws: ["eval", "--data", ws.train_cache, "--predictions", ws.preds], "full-size"),
    # ---------------------------------------------------------------- eval: predictions and options
    "eval predictions missing": (lambda ws: [*_eval_args(ws), "--predictions", ws.tmp / "no.npy"], "no.npy"),
    "eval predictions /dev/null": (lambda ws: [*_eval_args(ws), "--predictions", "/dev/null"], "not a regular file"),
    "eval predictions empty file": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.file("empty.npy", b"")],
        "empty.npy",
    ),
    "eval predictions text": (lambda ws: [*_eval_args(ws), "--predictions", ws.file("t.npy", "1 2 3")], "t.npy"),
    "eval predictions complex": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.npy("c.npy", np.ones((2, 32, 64), np.complex64))],
        "complex",
    ),
    "eval predictions NaN": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.npy("nan.npy", _with_nan(np.load(ws.preds)))],
        "non-finite",
    ),
    "eval predictions object array": (
        lambda ws: [*_eval_args(ws), "--predictions", _object_npy(ws)],
        "obj.npy",
    ),
    "eval predictions 2-D": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.npy("flat.npy", np.ones((32, 64), np.float32))],
        "flat.npy",
    ),
    "eval predictions zero images": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.npy("zero.npy", np.ones((0, 32, 64), np.float32))],
        "zero.npy",
    ),
    "eval predictions wrong count": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.npy("three.npy", np.ones((3, 32, 64), np.float32))],
        "three.npy",
    ),
    "eval scale factor inf": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.preds, "--scale-factor", "inf"],
        "--scale-factor",
    ),
    "eval scale factor nan": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.preds, "--scale-factor", "nan"],
        "--scale-factor",
    ),
    "eval scale factor negative": (
        lambda ws: [*_eval_args(ws), "--predictions", ws.preds, "--scale-factor", "-2"],
        "--scale-factor",
    ),
    "eval resolutions huge": (
        lambda ws: [*_eval_args(ws), "--checkpoint", ws.checkpoint, "--resolutions", HUGE],
        HUGE,
    ),  # fmt: skip
    "eval raw pickle checkpoint": (lambda ws: [*_eval_args(ws), "--checkpoint", _raw_pickle(ws)], "raw_pickle"),
    "eval NYU garbage splits.mat": (
        lambda ws: [
            "eval",
            "--data",
            ws.nyu,
            "--protocol",
            "nyu",
            "--predictions",
            ws.preds,
            "--split",
            ws.file("garbage_splits.mat", os.urandom(500)),
        ],
        "garbage_splits.mat",
    ),  # fmt: skip
    "eval data /dev/null": (
        lambda ws: ["eval", "--data", "/dev/null", "--split", ws.split, "--predictions", ws.preds],
        "/dev/null",
    ),
    "eval checkpoint with NaN weights": (lambda ws: [*_eval_args(ws), "--checkpoint", _nan_weights(ws)], "NaN"),
    **{
        f"eval NYU splits.mat with {kind}": (
            lambda ws, kind=kind: [
                "eval",
                "--data",
                ws.nyu,
                "--protocol",
                "nyu",
                "--predictions",
                ws.preds,
                "--split",
                _bad_splits_mat(ws, kind),
            ],
            "splits_",
        )  # fmt: skip
        for kind in BAD_SPLITS
    },
    # ---------------------------------------------------------------- predict
    "predict checkpoint missing": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", ws.tmp / "no.ckpt"],
        "no.ckpt",
    ),
    "predict checkpoint with NaN weights": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", _nan_weights(ws)],
        "NaN",
    ),
    "predict checkpoint empty": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", ws.file("e.ckpt", b"")],
        "e.ckpt",
    ),
    "predict checkpoint raw pickle": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", _raw_pickle(ws)],
        "raw_pickle",
    ),
    "predict checkpoint random bytes": (
        lambda ws: ["predict", ws.images, "-o", ws.tmp / "p", "-c", ws.file("r.ckpt", os.urandom(4096))],
        "r.ckpt",
    ),
    "predict input missing": (
        lambda ws: ["predict", ws.tmp / "gone.png", "-c", ws.checkpoint, "-o", ws.tmp / "p"],
        "gone.png",
    ),  # fmt: skip
    "predict input /dev/null": (
        lambda ws: ["predict", "/dev/null", "-c", ws.checkpoint, "-o", ws.tmp / "p"],
        "not a regular file",
    ),
    "predict glob over a symlink loop": (
        lambda ws: ["predict", _symlink_loop(ws), "-c", ws.tmp / "later.ckpt", "-o", ws.tmp / "looped"],
        "later.ckpt",  # the inputs are expanded before the checkpoint is opened
    ),
    "predict size huge": (lambda ws: [*_predict_args(ws), "--size", HUGE], HUGE),
    "predict size 0x0": (lambda ws: [*_predict_args(ws), "--size", "0x0"], "0x0"),
    "predict size not a multiple of 32": (lambda ws: [*_predict_args(ws), "--size", "100x100"], "100x100"),
    "predict scale factor inf": (lambda ws: [*_predict_args(ws), "--scale-factor", "inf"], "--scale-factor"),
    "predict scale factor nan": (lambda ws: [*_predict_args(ws), "--scale-factor", "nan"], "--scale-factor"),
    "predict out is a file": (
        lambda ws: ["predict", ws.images, "-c", ws.checkpoint, "-o", ws.file("out_file", "x")],
        "out_file",
    ),
    "predict output would overwrite the checkpoint": (
        lambda ws: ["predict", *_existing_checkpoint_as_output(ws)[0]],
        "same file as",
    ),
    "predict device unknown": (lambda ws: [*_predict_args(ws), "--device", "tpu"], "tpu"),
    "predict colormap unknown": (lambda ws: [*_predict_args(ws), "--colormap", "nope"], "nope"),
    # ---------------------------------------------------------------- synth
    "synth kitti size huge": (lambda ws: [*_synth_args("kitti", ws), "--size", "99999x99999"], "99999x99999"),
    "synth kitti size 0x0": (lambda ws: [*_synth_args("kitti", ws), "--size", "0x0"], "0x0"),
    "synth kitti frames 0": (lambda ws: [*_synth_args("kitti", ws), "--frames", "0"], "--frames"),
    "synth kitti frames huge": (lambda ws: [*_synth_args("kitti", ws), "--frames", "1000000000"], "--frames"),
    "synth kitti drives 0": (lambda ws: [*_synth_args("kitti", ws), "--drives", "0"], "--drives"),
    "synth kitti drives huge": (lambda ws: [*_synth_args("kitti", ws), "--drives", "100000000"], "--drives"),
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
    "synth nyu size huge": (lambda ws: [*_synth_args("nyu", ws), "--size", "99999x99999"], "99999x99999"),
    "synth nyu frames 0": (lambda ws: [*_synth_args("nyu", ws), "--frames", "0"], "--frames"),
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
    ),  # fmt: skip
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
    "weights info raw pickle": (lambda ws: ["weights", "info", _raw_pickle(ws)], "raw_pickle"),
    "weights info empty": (lambda ws: ["weights", "info", ws.file("empty.ckpt", b"")], "empty.ckpt"),
    "weights info folder": (lambda ws: ["weights", "info", ws.tmp], "hostile"),
    "weights import out is its own depth.pth": (
        lambda ws: ["weights", "import", "monodepth2", _release(ws), "--out", ws.tmp / "release" / "depth.pth"],
        "same file as",
    ),
    "weights import unknown project": (
        lambda ws: ["weights", "import", "nope", ws.tmp, "--out", ws.tmp / "w.ckpt"],
        "nope",
    ),
}


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


class _Hung(Exception):
    pass


def run_case(argv: list, monkeypatch, capsys) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr) of one in-process run; a hang or any escaping exception fails the case."""
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, argv)])

    def hung(*_):
        raise _Hung(f"still running after {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_clean_line(name, ws, monkeypatch, capsys):
    build, fragment = CASES[name]
    argv = build(ws)
    inputs = [Path(str(a)) for a in argv if isinstance(a, Path) and Path(a).is_file()]
    before = {path: _digest(path) for path in inputs}
    code, out, err = run_case(argv, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), f"exit {code}\n{out}\n{err}"
    assert "Traceback" not in out + err
    assert fragment in lines[0], lines[0]
    assert {path: _digest(path) for path in inputs} == before, "an input file was changed"


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
