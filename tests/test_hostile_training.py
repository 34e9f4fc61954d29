"""Hostile input to train, pretrain and every checkpoint reader, through the real entry point: each case must end
in one clean `error:` line with exit status 2, name what it is about, and change no file it was given.

Covers impossible config numbers (flags, --set, config files, a resumed run's checkpoint), run directories that
are files, unwritable or hold another run, resumes that change the net or meet a damaged, foreign, older or
hand-edited checkpoint, and checkpoints with flipped bytes, NaN weights, raw pickles or edited configs given to
predict, eval, weights info and --init. The count of cases is the number of hostile inputs tried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_harness import one_error_line, run_main

from depthcli.checkpoints import save_checkpoint
from depthcli.config import config_to_dict
from depthcli.data.cache import build_cache
from depthcli.nets import build_depth_net
from depthcli.recipe_configs import SELFSUP

NET_SIZE = (64, 64)


@dataclasses.dataclass
class Workspace:
    """Good inputs every case starts from; cases write their bad files into `tmp`."""

    tmp: Path
    kitti: Path  # the real KITTI sample (raw root)
    train_cache: Path  # the eight training samples of the real KITTI sample at 64x64
    eval_cache: Path  # two of its eval frames at full size, with ground truth
    run: Path  # a run directory whose last.ckpt holds a monodepth2 run's config (and no weights)
    checkpoint: Path  # a small depth checkpoint (radepth-small, random weights)
    image: Path
    images: Path  # a folder of eight 96x96 images (pretraining data)
    nyu_cache: Path  # a NYU training cache (supervised data)

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def run_with(self, name: str, payload: dict, digest: bool = True) -> Path:
        """A run directory whose last.ckpt holds `payload` (without a digest: as older depthcli wrote it)."""
        run = self.tmp / name
        run.mkdir(exist_ok=True)
        if digest:
            save_checkpoint(run / "last.ckpt", payload)
        else:
            torch.save({"format": "depthcli", "version": 1, **payload}, run / "last.ckpt")
        return run


def make_workspace(root: Path, kitti_mini: Path, nyu_root: Path) -> Workspace:
    """The good inputs, built in `root` from the real KITTI sample and a synthetic NYU folder: every case's
    command line is valid but for its one defect."""
    eval_split = root / "two.txt"
    eval_split.write_text("".join((kitti_mini / "eval_files.txt").read_text().splitlines(keepends=True)[:2]))
    train_cache = build_cache(
        "kitti", kitti_mini, root / "train.h5", split=kitti_mini / "train_files.txt", size=NET_SIZE
    )
    eval_cache = build_cache("kitti", kitti_mini, root / "eval.h5", split=eval_split)
    overrides = {"data": str(train_cache), "size": NET_SIZE, "batch_size": 2, "num_workers": 0}
    config = config_to_dict(SELFSUP.build_config("monodepth2", overrides=overrides))
    nyu_cache = build_cache("nyu", nyu_root, root / "nyu.h5", size=NET_SIZE)
    workspace = Workspace(
        root,
        kitti_mini,
        train_cache,
        eval_cache,
        root / "run",
        root / "small.ckpt",
        root / "a.png",
        root / "images",
        nyu_cache,
    )
    workspace.run_with("run", {"kind": "depth", "config": config, "model": {}, "networks": {}, "train_state": {}})
    torch.manual_seed(0)
    small = {"net": "radepth-small", "size": list(NET_SIZE), "min_depth": 0.1, "max_depth": 100.0}
    weights = build_depth_net("radepth-small").state_dict()
    save_checkpoint(workspace.checkpoint, {"kind": "depth", "config": small, "model": weights})
    rng = np.random.default_rng(0)
    cv2.imwrite(str(workspace.image), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    workspace.images.mkdir()
    for index in range(8):
        cv2.imwrite(str(workspace.images / f"{index}.png"), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    return workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory, kitti_mini, synthetic_nyu) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("hostile_training"), kitti_mini, synthetic_nyu)


# ------------------------------------------------------------------------------------------- inputs
def _train(ws: Workspace, *extra, data: Path | None = None, out: Path | str | None = None) -> list:
    """A new monodepth2 run on the training cache (each case fails before it trains)."""
    return ["train", "--preset", "monodepth2", "--data", data or ws.train_cache, "--max-steps", "1", "--batch-size",
            "2", "--num-workers", "0", "--no-progress", "--out", out or ws.tmp / "new_run", *extra]  # fmt: skip


def _pretrain(ws: Workspace, *extra, out: Path | None = None) -> list:
    return ["pretrain", "--data", ws.images, "--dataset", "folder", "--encoder", "resnet18", "--size", "64x64",
            "--batch-size", "4", "--queue", "8", "--num-workers", "0", "--max-steps", "1", "--no-progress",
            "--out", out or ws.tmp / "new_pretrain", *extra]  # fmt: skip


def _supervised(ws: Workspace, *extra) -> list:
    return ["train", "--task", "supervised", "--preset", "nyu-resnet50", "--data", ws.nyu_cache, "--size", "64x64",
            "--batch-size", "2", "--max-steps", "1", "--no-progress", "--out", ws.tmp / "sup", *extra]  # fmt: skip


def _resume(ws: Workspace, run: Path, *extra) -> list:
    return ["train", "--resume", "--out", run, "--no-progress", *extra]


def _config_file(ws: Workspace, name: str, text: str) -> Path:
    return ws.file(name, text)


def _stored_config(ws: Workspace, **changes) -> dict:
    config = torch.load(ws.run / "last.ckpt", weights_only=True)["config"]
    return {**config, **changes}


def _resume_with_config(ws: Workspace, name: str, **changes) -> list:
    """--resume of a run whose stored config was edited by hand (no digest, as an edit re-saved with torch.save)."""
    payload = {"kind": "depth", "config": _stored_config(ws, **changes), "model": {}, "train_state": {}}
    return _resume(ws, ws.run_with(name, payload, digest=False))


def _flipped(ws: Workspace, source: Path, name: str) -> Path:
    """`source` with 4 KB of bytes flipped in its middle (inside the weights: the zip stays readable)."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(value ^ 0xFF for value in data[middle : middle + 4096])
    return ws.file(name, bytes(data))


def _checkpoint_with(ws: Workspace, name: str, digest: bool = True, weights=None, **config_changes) -> Path:
    payload = torch.load(ws.checkpoint, weights_only=True)
    payload = {"kind": "depth", "config": {**payload["config"], **config_changes}, "model": payload["model"]}
    if weights is not None:
        payload["model"] = {key: weights(value) if value.is_floating_point() else value
                            for key, value in payload["model"].items()}  # fmt: skip
    path = ws.tmp / name
    if digest:
        return save_checkpoint(path, payload)
    torch.save({"format": "depthcli", "version": 1, **payload}, path)
    return path


def _old_pose_head(ws: Workspace) -> list:
    """A run saved before the pose decoder kept its second pose: a 6-channel head."""
    head = {"decoder.pose2.weight": torch.zeros(6, 256, 1, 1), "decoder.pose2.bias": torch.zeros(6)}
    payload = {"kind": "depth", "config": _stored_config(ws), "model": {}, "networks": {"pose": head},
               "train_state": {}}  # fmt: skip
    return _resume(ws, ws.run_with("old_pose_run", payload))


def _raw_root_without_split(ws: Workspace, kitti: Path) -> Path:
    root = ws.tmp / "raw_root"
    if not root.exists():
        root.mkdir()
        (root / "2011_09_26").symlink_to(kitti / "2011_09_26", target_is_directory=True)
    return root


def _predict(ws: Workspace, checkpoint: Path) -> list:
    return ["predict", ws.image, "--checkpoint", checkpoint, "--out", ws.tmp / "pred"]


def _eval(ws: Workspace, checkpoint: Path) -> list:
    return ["eval", "--checkpoint", checkpoint, "--data", ws.eval_cache]


def _init(ws: Workspace, checkpoint: Path, flag: str = "--init") -> list:
    return ["train", "--preset", "radepth", "--net", "radepth-small", "--data", ws.train_cache, flag, checkpoint,
            "--max-steps", "1", "--no-progress", "--out", ws.tmp / "init_run"]  # fmt: skip


def _init_from_own_run(ws: Workspace) -> list:
    """--overwrite of a run, starting from that run's own last.ckpt: removing it would lose the weights."""
    run = ws.tmp / "own_run"
    run.mkdir(exist_ok=True)
    shutil.copyfile(ws.checkpoint, run / "last.ckpt")
    return [*_init(ws, run / "last.ckpt")[:-1], run, "--overwrite"]


Args = Callable[[Workspace], list]
CHECKPOINT_READERS: dict[str, Callable[[Workspace, Path], list]] = {
    "predict": _predict,
    "eval": _eval,
    "weights info": lambda ws, checkpoint: ["weights", "info", checkpoint],
    "train --init": _init,
}
DEFECTIVE_CHECKPOINTS: dict[str, tuple[Callable[[Workspace], Path], str]] = {
    "4 KB flipped": (lambda ws: _flipped(ws, ws.checkpoint, "flipped.ckpt"), "is damaged"),
    "NaN weights": (lambda ws: _checkpoint_with(ws, "nan.ckpt", weights=lambda w: w * float("nan")), "NaN or inf"),
    "inf weights": (lambda ws: _checkpoint_with(ws, "inf.ckpt", weights=lambda w: w + float("inf")), "NaN or inf"),
    "raw pickle": (lambda ws: ws.file("raw.ckpt", pickle.dumps({"format": "depthcli"})), "cannot be read"),
    "random bytes": (lambda ws: ws.file("random.ckpt", np.random.default_rng(1).bytes(4096)), "cannot be read"),
    "empty file": (lambda ws: ws.file("empty.ckpt", b""), "empty.ckpt"),
    "cut short": (lambda ws: ws.file("cut.ckpt", ws.checkpoint.read_bytes()[:50_000]), "cannot be read"),
    "size as a string": (lambda ws: _checkpoint_with(ws, "s.ckpt", False, size="64x64"), "key 'size'"),
    "min_depth 'abc'": (lambda ws: _checkpoint_with(ws, "m.ckpt", False, min_depth="abc"), "key 'min_depth'"),
    "min_depth nan": (lambda ws: _checkpoint_with(ws, "n.ckpt", False, min_depth=float("nan")), "key 'min_depth'"),
    "max_depth below min": (lambda ws: _checkpoint_with(ws, "r.ckpt", False, max_depth=0.01), "below max_depth"),
    "net a list": (lambda ws: _checkpoint_with(ws, "l.ckpt", False, net=["radepth-small"]), "key 'net'"),
}

# name -> (argv builder, fragment the error line must contain)
CASES: dict[str, tuple[Args, str]] = {
    # ------------------------------------------------------------------ numbers a user can set (item 5)
    "lr nan": (lambda ws: _train(ws, "--lr", "nan"), "key 'lr' (--lr) must be a finite number > 0, got nan"),
    "lr -1": (lambda ws: _train(ws, "--lr", "-1"), "key 'lr' (--lr)"),
    "lr inf": (lambda ws: _train(ws, "--lr", "inf"), "key 'lr' (--lr)"),
    "batch size 0": (lambda ws: _train(ws, "--batch-size", "0"), "key 'batch_size' (--batch-size) must be an"),
    "batch size -2": (lambda ws: _train(ws, "--batch-size", "-2"), "key 'batch_size'"),
    "log every 0": (lambda ws: _train(ws, "--log-every", "0"), "key 'log_every'"),
    "lr_decay_at inf": (lambda ws: _train(ws, "--set", "lr_decay_at=inf"), "key 'lr_decay_at' must be a finite"),
    "lr_decay_at 1.5": (lambda ws: _train(ws, "--set", "lr_decay_at=1.5"), "in [0, 1]"),
    "num workers -1": (lambda ws: _train(ws, "--num-workers", "-1"), "key 'num_workers'"),
    "warmup -1": (lambda ws: _train(ws, "--set", "warmup_steps=-1"), "key 'warmup_steps'"),
    "lr_gamma 0": (lambda ws: _train(ws, "--set", "lr_gamma=0"), "key 'lr_gamma'"),
    "epochs 0": (lambda ws: _train(ws, "--epochs", "0"), "key 'epochs'"),
    "max steps -5": (lambda ws: _train(ws, "--max-steps", "-5"), "key 'max_steps'"),
    "max minutes nan": (lambda ws: _train(ws, "--max-minutes", "nan"), "key 'max_minutes'"),
    "save every -1": (lambda ws: _train(ws, "--save-every", "-1"), "key 'save_every'"),
    "seed -1": (lambda ws: _train(ws, "--seed", "-1"), "key 'seed'"),
    "min_depth nan": (lambda ws: _train(ws, "--set", "min_depth=nan"), "key 'min_depth' must be a finite number"),
    "max_depth nan": (lambda ws: _train(ws, "--set", "max_depth=nan"), "key 'max_depth' must be a finite number"),
    "min_depth 0": (lambda ws: _train(ws, "--set", "min_depth=0"), "key 'min_depth'"),
    "min_depth above max_depth": (
        lambda ws: _train(ws, "--set", "min_depth=50", "--set", "max_depth=10"),
        "key 'min_depth' (50.0) must be below max_depth (10.0",
    ),
    "high_scale_range reversed": (
        lambda ws: _train(ws, "--set", "high_scale_range=[2.0, 1.5]"),
        "key 'high_scale_range' must be two finite numbers in [1, 4], the first <= the second",
    ),
    "high_scale_range below 1": (lambda ws: _train(ws, "--set", "high_scale_range=[0.5, 2]"), "high_scale_range"),
    "low_scale_range 0.1": (lambda ws: _train(ws, "--set", "low_scale_range=[0.1, 0.9]"), "low_scale_range"),
    "consistency ramp reversed": (lambda ws: _train(ws, "--set", "consistency_ramp=[5, 2]"), "consistency_ramp"),
    "smoothness weight -1": (lambda ws: _train(ws, "--set", "smoothness_weight=-1"), "smoothness_weight"),
    "scales [0, 9]": (lambda ws: _train(ws, "--set", "scales=[0, 9]"), "key 'scales' must be integers in [0, 3]"),
    "size 100x64 in a file": (
        lambda ws: _train(ws, "--config", _config_file(ws, "size.toml", "size = [100, 64]\n")),
        "size.toml: key 'size': depth nets need",
    ),
    "min_depth nan in TOML": (
        lambda ws: _train(ws, "--config", _config_file(ws, "nan.toml", "min_depth = nan\n")),
        "nan.toml: key 'min_depth' must be a finite number > 0, got nan",
    ),
    "lr NaN in JSON": (lambda ws: _train(ws, "--config", _config_file(ws, "nan.json", '{"lr": NaN}')), "nan.json"),
    "batch size a string in JSON": (
        lambda ws: _train(ws, "--config", _config_file(ws, "s.json", '{"batch_size": "4"}')),
        "s.json: key 'batch_size' must be an integer, got '4'",
    ),
    "label fraction 0": (
        lambda ws: _supervised(ws, "--label-fraction", "0"),
        "key 'label_fraction' (--label-fraction) must be a finite number in (0, 1]",
    ),
    "pretrain temperature 0": (lambda ws: _pretrain(ws, "--temperature", "0"), "key 'temperature'"),
    "pretrain momentum 1": (lambda ws: _pretrain(ws, "--momentum", "1"), "key 'momentum'"),
    "pretrain dim 0": (lambda ws: _pretrain(ws, "--dim", "0"), "key 'dim'"),
    "pretrain queue -4": (lambda ws: _pretrain(ws, "--queue", "-4"), "key 'queue'"),
    "pretrain lr nan": (lambda ws: _pretrain(ws, "--lr", "nan"), "key 'lr'"),
    "demo budget nan": (lambda ws: ["demo", "--budget-minutes", "nan", "--out", ws.tmp / "demo"], "nan"),
    "demo budget inf": (lambda ws: ["demo", "--budget-minutes", "inf", "--out", ws.tmp / "demo"], "inf"),
    "demo budget -1": (lambda ws: ["demo", "--budget-minutes", "-1", "--out", ws.tmp / "demo"], "-1"),
    "demo budget 1e12": (lambda ws: ["demo", "--budget-minutes", "1e12", "--out", ws.tmp / "demo"], "a week"),
    # ------------------------------------------------------------------ run directories (items 2, 10, 12)
    "train into a run": (lambda ws: _train(ws, out=ws.run), "is not empty (last.ckpt)"),
    "pretrain into a run": (lambda ws: _pretrain(ws, out=ws.run), "depthcli pretrain --resume --out"),
    "resume and overwrite": (lambda ws: [*_train(ws, "--resume", "--overwrite")], "give one of them"),
    "resume auto and overwrite": (lambda ws: _train(ws, "--resume", "auto", "--overwrite"), "give one of them"),
    "resume with a value": (lambda ws: _train(ws, "--resume=later"), "--resume takes no value, or `auto`"),
    "resume without a run": (lambda ws: ["train", "--resume", "--out", ws.tmp / "nothing"], "no checkpoint"),
    "out is a file": (lambda ws: _train(ws, out=ws.train_cache), "is a file, not a run directory"),
    "out under a file": (lambda ws: _train(ws, out=ws.train_cache / "run"), "Not a directory"),
    "out unwritable": (lambda ws: _train(ws, out="/proc/depthcli_run"), "cannot create the run directory"),
    "pretrain out is a file": (lambda ws: _pretrain(ws, out=ws.train_cache), "is a file"),
    "raw root without a split": (
        lambda ws: _train(ws, data=_raw_root_without_split(ws, ws.kitti), out=ws.tmp / "raw_run"),
        "give --split",
    ),
    # ------------------------------------------------------------------ resuming (item 10)
    "resume changes the net by flag": (
        lambda ws: _resume(ws, ws.run, "--net", "diffnet"),
        "set net to 'diffnet' but the run has 'monodepth2': resuming cannot change the architecture",
    ),
    "resume changes the net by file": (
        lambda ws: _resume(ws, ws.run, "--config", _config_file(ws, "net.toml", 'net = "diffnet"\n')),
        "net.toml set net to 'diffnet'",
    ),
    "resume changes the scales": (
        lambda ws: _resume(ws, ws.run, "--set", "scales=[0]"),
        "cannot change the architecture",
    ),
    "resume a damaged checkpoint": (lambda ws: _resume(ws, _damaged_run(ws)), "is damaged"),
    "resume a pretraining run as training": (
        lambda ws: _resume(
            ws, ws.run_with("pre_run", {"kind": "pretrain", "config": {}, "model": {}}), "--task", "selfsup"
        ),
        "holds a 'pretrain' model, expected 'depth'",
    ),
    "resume a run whose pose head predates two poses": (_old_pose_head, "predates the two-pose decoder"),
    "resume a checkpoint without training state": (
        lambda ws: _resume(ws, ws.run_with("no_state", {"kind": "depth", "config": _stored_config(ws), "model": {}})),
        "holds no training state",
    ),
    "resume weights that do not fit": (lambda ws: _resume(ws, _misfit_run(ws)), "does not fit the depth net"),
    "resume: stored min_depth 'abc'": (lambda ws: _resume_with_config(ws, "abc", min_depth="abc"), "key 'min_depth'"),
    "resume: stored size a string": (lambda ws: _resume_with_config(ws, "sz", size="640x192"), "key 'size'"),
    "resume: stored lr negative": (lambda ws: _resume_with_config(ws, "lr", lr=-1.0), "key 'lr'"),
    "resume: stored batch size a float": (lambda ws: _resume_with_config(ws, "bs", batch_size=2.5), "key 'batch_size'"),
    "resume: stored unknown key": (lambda ws: _resume_with_config(ws, "uk", mystery=1), "unknown config key"),
    "overwrite a run with --init from its own last.ckpt": (_init_from_own_run, "is the same file as --init"),
    "config is /dev/null": (lambda ws: _train(ws, "--config", "/dev/null"), "config file /dev/null is a device"),
    "config is a folder": (lambda ws: _train(ws, "--config", ws.images), "is a folder, not a regular file"),
    "init is /dev/null": (lambda ws: _init(ws, Path("/dev/null")), "/dev/null is a device, not a regular file"),
    "init missing": (lambda ws: _init(ws, ws.tmp / "nowhere.ckpt"), "nowhere.ckpt does not exist"),
    "encoder init missing": (lambda ws: _init(ws, ws.tmp / "none.pth", "--encoder-init"), "none.pth does not exist"),
}
for reader, build_args in CHECKPOINT_READERS.items():
    for defect, (make, fragment) in DEFECTIVE_CHECKPOINTS.items():
        if reader == "weights info" and fragment.startswith(("key ", "below")):
            continue  # it shows what a checkpoint holds, edited values included, without using them
        CASES[f"{reader}: {defect}"] = (lambda ws, b=build_args, m=make: b(ws, m(ws)), fragment)


def _misfit_run(ws: Workspace) -> Path:
    payload = {"kind": "depth", "config": _stored_config(ws), "model": {"w": torch.zeros(2)}, "train_state": {}}
    return ws.run_with("misfit", payload)


def _damaged_run(ws: Workspace) -> Path:
    run = ws.tmp / "damaged_run"
    run.mkdir(exist_ok=True)
    payload = {"kind": "depth", "config": _stored_config(ws), "model": {"w": torch.rand(100_000)}, "train_state": {}}
    save_checkpoint(ws.tmp / "big.ckpt", payload)
    _flipped(ws, ws.tmp / "big.ckpt", "damaged_run/last.ckpt")
    return run


def _fingerprint(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_training_input_is_one_clean_line(name, ws, monkeypatch, capsys):
    build, fragment = CASES[name]
    argv = build(ws)
    given = [Path(str(a)) for a in argv if isinstance(a, Path) and a.exists()]
    before = {path: _fingerprint(path) for path in given}
    line = one_error_line(*run_main(argv, monkeypatch, capsys))
    assert fragment in line, line
    assert {path: _fingerprint(path) for path in given} == before, "a file or run directory it was given changed"


def _damaged_ground_truth(ws: Workspace) -> Path:
    """The eval cache with the compressed depth chunk of its second sample overwritten: h5py cannot inflate it."""
    import h5py

    path = ws.file("bad_val.h5", ws.eval_cache.read_bytes())
    with h5py.File(path, "r") as handle:
        chunk = handle["samples/depth_gt"].id.get_chunk_info(1)
    with open(path, "r+b") as handle:
        handle.seek(chunk.byte_offset)
        handle.write(b"\xff" * 4096)
    return path


def test_a_damaged_validation_cache_costs_no_training(ws, monkeypatch, capsys):
    from depthcli.checkpoints import load_checkpoint

    out = ws.tmp / "val_run"
    bad = _damaged_ground_truth(ws)
    # 8 samples, batch 2: the first validation comes at the end of the first epoch, step 4 (save_every is 200)
    line = one_error_line(*run_main(_train(ws, "--max-steps", "6", "--val-data", bad, out=out), monkeypatch, capsys))
    assert line.startswith(f"error: validation at step 4 failed (cache {bad}: samples/depth") and f"on {bad}" in line
    assert f"the run is saved in {out / 'last.ckpt'}" in line and f"depthcli train --resume --out {out}" in line
    assert load_checkpoint(out / "last.ckpt")["train_state"]["step"] == 4
