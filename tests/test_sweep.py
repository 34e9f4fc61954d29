"""`depthcli sweep` / `run_sweep`: every checkpoint at every resolution, JSON + CSV + PNG plot."""

from __future__ import annotations

import csv
import json
import sys

import cv2
import numpy as np
import pytest
import torch

from depthcli.checkpoints import save_checkpoint
from depthcli.cli.app import main
from depthcli.evaluation.eval_sets import open_eval_set
from depthcli.evaluation.evaluate import evaluate_model
from depthcli.evaluation.sweep import checkpoint_labels, run_sweep
from depthcli.nets import build_depth_net

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = [(416, 128), (512, 160)]


@pytest.fixture(scope="module")
def setup(kitti_mini, tmp_path_factory):
    """Two checkpoints with the same file name in different runs (labels must tell them apart)."""
    tmp = tmp_path_factory.mktemp("sweep")
    split = tmp / "one.txt"
    split.write_text((kitti_mini / "eval_files.txt").read_text().splitlines()[3] + "\n")
    paths, models = [], []
    for seed, run in ((0, "run_a"), (1, "run_b")):
        torch.manual_seed(seed)
        model = build_depth_net("monodepth2").eval()
        config = {"net": "monodepth2", "preset": "monodepth2", "size": [640, 192], "min_depth": 0.1, "max_depth": 100.0}
        paths.append(
            save_checkpoint(tmp / run / "best.ckpt", {"kind": "depth", "config": config, "model": model.state_dict()})
        )
        models.append(model)
    return tmp, split, paths, models


def test_labels_disambiguate_equal_file_names(tmp_path):
    configs = [{"preset": "radepth"}, {"net": "diffnet"}, {}, {"preset": "radepth", "net": "radepth-small"}]
    paths = [tmp_path / "a" / "best.ckpt", tmp_path / "b" / "best.ckpt", tmp_path / "c" / "last.ckpt"]
    paths.append(tmp_path / "small" / "last.ckpt")
    assert checkpoint_labels(paths, configs) == [
        "radepth: a/best", "diffnet: b/best", "c/last", "radepth-small: small/last"  # the net, not the recipe
    ]  # fmt: skip


def test_sweep_groups_seeds_and_marks_the_training_size(setup, kitti_mini):
    tmp, split, paths, _ = setup
    rows, files = run_sweep(paths, kitti_mini, split, tmp / "grouped", SIZES, groups={"seeds": [0, 1]})
    members = [row for row in rows if "group" not in row]
    grouped = [row for row in rows if "group" in row]
    assert [row["resolution"] for row in grouped] == ["416x128", "512x160"]
    for row in grouped:
        values = [member["rmse"] for member in members if member["resolution"] == row["resolution"]]
        assert row["rmse"] == pytest.approx(np.mean(values)) and row["rmse_std"] == pytest.approx(
            np.std(values, ddof=1)
        )
    assert {row["trained_at"] for row in members} == {"640x192"}
    assert all(row["protocol"] == "kitti-eigen" and row["variant"]["crop"] == "garg" for row in rows)
    assert files["png"].read_bytes().startswith(PNG_SIGNATURE)


def test_run_sweep_writes_json_csv_png(setup, kitti_mini):
    tmp, split, paths, models = setup
    out = tmp / "out"
    rows, files = run_sweep(paths, kitti_mini, split, out, SIZES)
    assert files == {"json": out / "sweep.json", "csv": out / "sweep.csv", "png": out / "sweep.png"}
    stored = json.loads(files["json"].read_text())
    assert stored == rows
    assert [(row["checkpoint"], row["resolution"]) for row in stored] == [
        ("monodepth2: run_a/best", "416x128"),
        ("monodepth2: run_a/best", "512x160"),
        ("monodepth2: run_b/best", "416x128"),
        ("monodepth2: run_b/best", "512x160"),
    ]
    # Each row is exactly what a plain evaluation of that checkpoint gives.
    expected = evaluate_model(models[1], open_eval_set(kitti_mini, split, "kitti-eigen"), SIZES, 0.1, 100.0)
    for row, result in zip(stored[2:], expected, strict=True):
        assert row["abs_rel"] == pytest.approx(result.metrics["abs_rel"], rel=1e-5)
        assert row["n_images"] == 1 and "median_ratio" in row
    with files["csv"].open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and table[0]["checkpoint"] == "monodepth2: run_a/best"
    assert float(table[3]["rmse"]) == pytest.approx(stored[3]["rmse"])
    data = files["png"].read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = cv2.imread(str(files["png"]))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 500
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_sweep_cli_and_bad_checkpoint(setup, kitti_mini, tmp_path, monkeypatch, capsys):
    _, split, paths, _ = setup
    args = ["sweep", "--checkpoint", paths[0], "--data", kitti_mini, "--split", split, "--out", tmp_path / "cli"]
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, args), "--resolutions", "416x128", "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert (tmp_path / "cli" / "sweep.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(json.loads((tmp_path / "cli" / "sweep.json").read_text())) == 1
    assert str(tmp_path / "cli" / "sweep.csv") in capsys.readouterr().out.replace("\n", "")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(paths[0].read_bytes()[:1000])
    args = ["sweep", "--checkpoint", broken, "--data", kitti_mini, "--split", split, "--out", tmp_path / "x"]
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, args), "--resolutions", "416x128..640x190"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "multiples of 32" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "broken.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
