"""Good inputs for the hostile-input tests, the bad files their cases are made of, and the check they share.

Each `tests/test_hostile_*.py` module holds a table of cases, name -> (argv builder, fragment): the argv
is run through the real entry point (`cli_harness.run_main`, what the console script runs) and must end
in exit status 2 with exactly one `error:` line on stderr, no traceback, the fragment (the file or value
named, or the reason) in that line, and every file the argv names unchanged. Special files stand in as
FIFOs made in tmp (never /dev/null as an output: as root, a rename onto it would replace the device).
The number of cases is the number of hostile inputs tried.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
from cli_harness import one_error_line, run_main

from depthcli.checkpoints import save_checkpoint
from depthcli.data.cache import build_cache
from depthcli.nets import build_depth_net

NET_SIZE = (64, 64)
HUGE = "99968x99968"  # multiples of 32: only a size bound stops it


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


Args = Callable[[Workspace], list]


def make_workspace(root: Path, kitti_mini: Path, synthetic_nyu: Path) -> Workspace:
    """The good inputs, built in `root` from the real KITTI sample and a synthetic NYU folder."""
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


def check_case(build: Args, fragment: str, ws: Workspace, monkeypatch, capsys) -> str:
    """Run one case (module docstring); returns its error line."""
    argv = build(ws)
    inputs = [Path(str(a)) for a in argv if isinstance(a, Path) and Path(a).is_file()]
    before = {path: _digest(path) for path in inputs}
    line = one_error_line(*run_main(argv, monkeypatch, capsys))
    assert fragment in line, line
    assert {path: _digest(path) for path in inputs} == before, "an input file was changed"
    return line


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# ------------------------------------------------------------------------------- the bad inputs
def no_datasets(ws: Workspace) -> Path:
    """An HDF5 file carrying a real cache's root attributes (checksum included) but no datasets."""
    path = ws.tmp / "attrs_only.h5"
    with h5py.File(ws.train_cache, "r") as good, h5py.File(path, "w") as bad:
        for key, value in good.attrs.items():
            bad.attrs[key] = value
    return path


def damaged_signature(ws: Workspace) -> Path:
    """The train cache with its HDF5 signature (the first 8 bytes) overwritten (random flips: test_cache_fuzz)."""
    return ws.file("signature.h5", b"\0" * 8 + ws.train_cache.read_bytes()[8:])


def edited_table(ws: Workspace, name: str, value) -> Path:
    """The train cache with one table overwritten in place (what verify's checksum must notice)."""
    path = ws.copy(ws.train_cache, f"edited_{name.replace('/', '_')}.h5")
    with h5py.File(path, "r+") as handle:
        handle[name][0] = value
    return path


def raw_pickle(ws: Workspace) -> Path:
    """A checkpoint written with plain pickle (not torch.save): loading must not unpickle it."""
    return ws.file("raw_pickle.ckpt", pickle.dumps({"format": "depthcli", "model": {}}))


def garbage_splits(ws: Workspace) -> Path:
    folder = ws.tmp / "nyu_garbage_splits"
    folder.mkdir(exist_ok=True)
    (folder / "nyu_depth_v2_labeled.mat").symlink_to(ws.nyu / "nyu_depth_v2_labeled.mat")
    (folder / "splits.mat").write_bytes(os.urandom(300))
    return folder


def symlink_loop(ws: Workspace) -> str:
    loop = ws.tmp / "loop"
    (loop / "sub").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(loop / "sub" / "x.png"), np.zeros((40, 60, 3), np.uint8))
    for name in ("back", "again"):  # two ways back: a walk that follows them never ends (2**depth paths)
        if not (loop / "sub" / name).is_symlink():
            (loop / "sub" / name).symlink_to(loop, target_is_directory=True)
    return f"{loop}/**/*.png"


def existing_checkpoint_as_output(ws: Workspace) -> tuple[list, Path]:
    out = ws.tmp / "pred_out_ck"
    out.mkdir(exist_ok=True)
    checkpoint = ws.copy(ws.checkpoint, "pred_out_ck/a_disp.npy")
    return [ws.images / "a.png", "-c", checkpoint, "-o", out, "--overwrite"], checkpoint


def kitti_cache_args(ws: Workspace) -> list:
    return ["cache", "build", "--dataset", "kitti", "--root", ws.kitti]


def eval_args(ws: Workspace) -> list:
    return ["eval", "--data", ws.kitti, "--split", ws.split, "--protocol", "kitti-eigen"]


def predict_args(ws: Workspace) -> list:
    return ["predict", ws.images, "-c", ws.checkpoint, "-o", ws.tmp / "pred_out"]


def synth_args(kind: str, ws: Workspace, out: str = "synth_out") -> list:
    return ["synth", kind, ws.tmp / out, "--workers", "1"]


def hardlink(source: Path, link: Path) -> Path:
    if not link.exists():
        os.link(source, link)
    return link


def foreign_h5(ws: Workspace) -> Path:
    path = ws.tmp / "foreign.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)
    return path


def old_version(ws: Workspace) -> Path:
    path = ws.copy(ws.train_cache, "old_version.h5")
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = 1
    return path


def edited_eval(ws: Workspace, name: str, value) -> Path:
    path = ws.copy(ws.eval_cache, "edited_eval.h5")
    with h5py.File(path, "r+") as handle:
        handle[name][0] = value
    return path


def with_nan(preds: np.ndarray) -> np.ndarray:
    preds = preds.copy()
    preds[1, 3, 4] = np.nan
    return preds


def object_npy(ws: Workspace) -> Path:
    path = ws.tmp / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


def release(ws: Workspace) -> Path:
    """A monodepth2 release folder with (meaningless) encoder.pth and depth.pth."""
    folder = ws.tmp / "release"
    folder.mkdir(exist_ok=True)
    torch.save({"height": 64, "width": 64}, folder / "encoder.pth")
    torch.save({}, folder / "depth.pth")
    return folder


def nan_weights(ws: Workspace) -> Path:
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


def bad_splits_mat(ws: Workspace, kind: str) -> Path:
    import scipy.io

    path = ws.tmp / f"splits_{kind.replace(' ', '_')}.mat"
    scipy.io.savemat(path, BAD_SPLITS[kind])
    return path


Args = Callable[[Workspace], list]
