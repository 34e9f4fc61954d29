"""Shipped split lists, monodepth2's gt_depths.npz (safe reading), `depthcli data check kitti`, honest selection."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from cli_harness import run_cli
from typer.testing import CliRunner

from depthcli.cli.app import app
from depthcli.data.gt_npz import load_gt_depths, save_gt_depths
from depthcli.data.kitti import read_split
from depthcli.data.standard_splits import (
    drives_of,
    evaluation_split_drives,
    parse_split_name,
    read_split_argument,
    standard_split,
)
from depthcli.errors import DepthcliError
from depthcli.evaluation.eval_sets import open_eval_set
from depthcli.evaluation.selection import eval_selection_warnings, train_selection_warnings

# ---------------------------------------------------------------- shipped splits


def test_shipped_splits_have_the_published_sizes_and_drive_facts():
    assert len(standard_split("eigen")) == 697 and len(standard_split("eigen_benchmark")) == 652
    assert len(standard_split("eigen_zhou", "train")) == 39810 and len(standard_split("eigen_zhou", "val")) == 4424
    eigen = {(e.folder, e.frame_index) for e in standard_split("eigen")}
    assert {(e.folder, e.frame_index) for e in standard_split("eigen_benchmark")} <= eigen  # a subset of Eigen's
    test_drives = evaluation_split_drives()["eigen"]
    assert len(test_drives) == 28
    for name in ("eigen_zhou", "eigen_full"):
        for part in ("train", "val"):
            assert not drives_of(standard_split(name, part)) & test_drives, (name, part)
    assert len(drives_of(standard_split("benchmark", "train")) & test_drives) == 21
    assert len(drives_of(standard_split("benchmark", "val")) & test_drives) == 7


def test_split_names_and_files(tmp_path):
    assert parse_split_name("eigen") == ("eigen", "test")
    assert parse_split_name("eigen_zhou:val") == parse_split_name("eigen_zhou/val") == ("eigen_zhou", "val")
    assert parse_split_name("my_split.txt") is None
    with pytest.raises(DepthcliError, match="name one"):
        parse_split_name("eigen_zhou")
    with pytest.raises(DepthcliError, match="no test list"):
        parse_split_name("eigen_full/test")
    entries, label = read_split_argument("eigen")
    assert label == "eigen/test (shipped)" and entries[0].folder == "2011_09_26/2011_09_26_drive_0002_sync"
    (tmp_path / "eigen").write_text("2011_09_26/2011_09_26_drive_0001_sync 3 l\n")  # a file wins over a name
    entries, label = read_split_argument(tmp_path / "eigen")
    assert len(entries) == 1 and label == str(tmp_path / "eigen")
    with pytest.raises(DepthcliError, match="neither a file nor a shipped split"):
        read_split_argument(tmp_path / "nothing")


# ---------------------------------------------------------------- gt_depths.npz


def test_gt_npz_round_trips_ragged_and_regular(tmp_path):
    ragged = [np.full((375, 1242), 1.5, np.float32), np.full((370, 1224), 2.5, np.float32)]
    save_gt_depths(tmp_path / "ragged.npz", ragged)
    loaded = load_gt_depths(tmp_path / "ragged.npz")
    assert [m.shape for m in loaded] == [(375, 1242), (370, 1224)] and loaded[1][0, 0] == 2.5
    # what monodepth2's evaluate_depth.py does with it (it trusts the file): the same maps
    legacy = np.load(tmp_path / "ragged.npz", fix_imports=True, encoding="latin1", allow_pickle=True)["data"]
    assert legacy.dtype == object and np.array_equal(legacy[0], ragged[0])
    assert b"numpy._core" not in zipfile.ZipFile(tmp_path / "ragged.npz").read("data.npy")  # numpy 1.x reads it
    regular = [np.ones((4, 6), np.float32), np.zeros((4, 6), np.float32)]
    save_gt_depths(tmp_path / "regular.npz", regular)
    assert np.load(tmp_path / "regular.npz", allow_pickle=False)["data"].shape == (2, 4, 6)
    np.savez_compressed(tmp_path / "numpy_own.npz", data=np.array(ragged + [ragged[0]], dtype=object))
    assert len(load_gt_depths(tmp_path / "numpy_own.npz")) == 3


class _Payload:
    def __reduce__(self):
        return (print, ("pickle payload ran",))


def test_gt_npz_refuses_pickles_that_are_not_arrays(tmp_path, capsys):
    hostile = np.empty(1, dtype=object)
    hostile[0] = _Payload()
    np.savez_compressed(tmp_path / "hostile.npz", data=hostile)
    with pytest.raises(DepthcliError, match="refusing to load builtins.print"):
        load_gt_depths(tmp_path / "hostile.npz")
    assert "pickle payload ran" not in capsys.readouterr().out
    np.savez_compressed(tmp_path / "other_key.npz", depths=np.zeros((1, 2, 2)))
    with pytest.raises(DepthcliError, match="no 'data' array"):
        load_gt_depths(tmp_path / "other_key.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DepthcliError, match="not a readable .npz"):
        load_gt_depths(tmp_path / "junk.npz")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    with zipfile.ZipFile(tmp_path / "flat.npz", "w") as archive:
        archive.writestr("data.npy", buffer.getvalue())
    with pytest.raises(DepthcliError, match="expected \\(H,W\\) depth maps"):
        load_gt_depths(tmp_path / "flat.npz")


# ---------------------------------------------------------------- data check kitti + export, eval --gt-npz


def test_data_check_reports_complete_and_missing(kitti_mini, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["data", "check", "kitti", str(kitti_mini), "--split", str(kitti_mini / "eval_files.txt")]
    )
    assert result.exit_code == 0, result.output
    assert "complete" in result.output and "10 png" in result.output
    split = tmp_path / "eleven.txt"
    split.write_text((kitti_mini / "eval_files.txt").read_text() + "2011_09_26/2011_09_26_drive_0000_sync 10 l\n")
    result = runner.invoke(app, ["data", "check", "kitti", str(kitti_mini), "--split", str(split)])
    assert result.exit_code == 1
    assert "0000000010.bin" in result.output and "0000000010.png" in result.output
    result = runner.invoke(app, ["data", "check", "kitti", str(kitti_mini), "--split", "eigen", "--show", "1"])
    assert result.exit_code == 1 and "697" in result.output and "2011_09_26_drive_0002_sync" in result.output
    train = runner.invoke(
        app, ["data", "check", "kitti", str(kitti_mini), "--split", str(kitti_mini / "train_files.txt")]
    )
    assert train.exit_code == 0  # a split file is checked like a test list: frames + velodyne


def test_exported_gt_npz_scores_like_the_raw_root(kitti_mini, tmp_path, monkeypatch):
    split = kitti_mini / "eval_files.txt"
    gt_file = tmp_path / "gt_depths.npz"
    result = CliRunner().invoke(
        app, ["data", "check", "kitti", str(kitti_mini), "--split", str(split), "--export-gt", str(gt_file)]
    )
    assert result.exit_code == 0, result.output
    exported = load_gt_depths(gt_file)
    raw = open_eval_set(kitti_mini, split, "kitti-eigen")
    assert len(exported) == 10 and all(np.array_equal(exported[i], raw.load_gt(i)) for i in (0, 9))
    preds = np.random.default_rng(0).uniform(0.01, 1, (10, 96, 320)).astype(np.float32)
    np.save(tmp_path / "p.npy", preds)
    rows = []
    for source in (["--data", kitti_mini, "--split", split], ["--gt-npz", gt_file]):
        assert (
            run_cli(monkeypatch, "eval", "--predictions", tmp_path / "p.npy", *source, "--json", tmp_path / "o.json")
            == 0
        )
        rows.append(json.loads((tmp_path / "o.json").read_text())[0])
    assert rows[0]["abs_rel"] == rows[1]["abs_rel"] and rows[0]["a1"] == rows[1]["a1"]
    assert rows[1]["variant"]["gt"] == "gt_depths.npz" and rows[1]["gt"].startswith("gt_depths.npz")


# ---------------------------------------------------------------- honest selection


def test_train_warns_when_selection_data_shares_test_drives(tmp_path):
    assert train_selection_warnings({"split": "eigen_zhou/train", "data": str(tmp_path)}) == []
    (warning,) = train_selection_warnings({"split": "benchmark/val", "data": str(tmp_path)})
    assert "training data (benchmark/val) shares 7 drive(s) with the eigen / eigen_benchmark test split" in warning
    frames = tmp_path / "raw" / "2011_09_26" / "2011_09_26_drive_0002_sync" / "image_02" / "data"  # an Eigen test drive
    frames.mkdir(parents=True)
    (frames / "0000000000.png").write_bytes(b"")
    (tmp_path / "raw" / "2011_09_26" / "calib_cam_to_cam.txt").write_text("")
    (warning,) = train_selection_warnings({"split": "eigen_zhou/train", "val_data": str(tmp_path / "raw")})
    assert warning.startswith("the validation data") and "shares 1 drive(s)" in warning


def test_eval_warns_when_validation_cache_shares_the_evaluated_drive(kitti_mini, tmp_path):
    from depthcli.data.cache import build_cache

    split = tmp_path / "one.txt"
    split.write_text((kitti_mini / "eval_files.txt").read_text().splitlines()[0] + "\n")
    cache = build_cache("kitti", kitti_mini, tmp_path / "val.h5", split=split)
    drives = open_eval_set(kitti_mini, kitti_mini / "eval_files.txt", "kitti-eigen").drives
    (warning,) = eval_selection_warnings({"val_data": str(cache)}, drives, "kitti")
    assert "validation data" in warning and "2011_09_26_drive_0000_sync" in warning
    assert eval_selection_warnings({"val_data": str(cache)}, ["2011_09_26/2011_09_26_drive_0002_sync"], "kitti") == []
    training = eval_selection_warnings(
        {"data": str(kitti_mini), "split": str(kitti_mini / "train_files.txt")}, drives, "kitti"
    )
    assert len(training) == 1 and "training data" in training[0]
    assert read_split(kitti_mini / "train_files.txt")  # the fixture's training list is a real split file


def test_nyu_selection_on_the_test_split_is_named(synthetic_nyu, tmp_path):
    """The supervised NYU recipe scores its --val-data cache's test split: best.ckpt is then chosen on test."""
    from depthcli.data.cache import build_cache

    cache = build_cache("nyu", synthetic_nyu / "nyu_depth_v2_labeled.mat", tmp_path / "nyu.h5")
    (warning,) = eval_selection_warnings({"val_data": str(cache)}, [], "nyu")
    assert "chosen on the test split" in warning and str(cache) in warning
    assert train_selection_warnings({"val_data": str(cache), "data": str(cache)}) == [warning]
    assert eval_selection_warnings({"val_data": None}, [], "nyu") == []
