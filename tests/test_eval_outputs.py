"""`eval` outputs: predict -> eval round trip, seed groups, provenance, `--json -`, paper rows."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from cli_harness import run_cli

import depthcli
from depthcli.checkpoints import save_checkpoint
from depthcli.nets import build_depth_net

SIZE = [192, 64]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Two monodepth2 nets of one recipe (seeds 0 and 1), as best.ckpt of two runs."""
    tmp = tmp_path_factory.mktemp("seeds")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_depth_net("monodepth2")
        config = {"net": "monodepth2", "preset": "monodepth2", "size": SIZE, "min_depth": 0.1, "max_depth": 100.0}
        paths.append(save_checkpoint(tmp / f"seed{seed}" / "best.ckpt", {"kind": "depth", "config": config,
                                                                         "model": model.state_dict()}))  # fmt: skip
    return paths


@pytest.fixture()
def two_frames(kitti_mini, tmp_path):
    split = tmp_path / "two.txt"
    split.write_text("".join(line + "\n" for line in (kitti_mini / "eval_files.txt").read_text().splitlines()[3:5]))
    return split


def test_predict_then_eval_equals_eval_of_the_checkpoint(seeds, kitti_mini_links, two_frames, tmp_path, monkeypatch):
    """predict saves monodepth2's scaled disparity; eval --predictions FOLDER scores it like eval --checkpoint
    (predict in float32: its default --amp auto may run the net in bf16, eval --checkpoint runs float32)."""
    data = ["--data", kitti_mini_links, "--split", two_frames, "--json"]
    for resize in ("torch", "pil-lanczos"):
        assert (
            run_cli(monkeypatch, "eval", "--checkpoint", seeds[0], "--image-resize", resize, *data, tmp_path / "c.json")
            == 0
        )
        (direct,) = json.loads((tmp_path / "c.json").read_text())
        out = tmp_path / f"pred_{resize}"
        code = run_cli(monkeypatch, "predict", kitti_mini_links, "--split", two_frames, "-c", seeds[0], "-o", out,
                       "--save", "npy", "--image-resize", resize, "--device", "cpu", "--amp", "off")  # fmt: skip
        assert code == 0 and (out / "2011_09_26" / "2011_09_26_drive_0000_sync" / "image_02" / "data").is_dir()
        assert run_cli(monkeypatch, "eval", "--predictions", out, *data, tmp_path / "p.json") == 0
        (saved,) = json.loads((tmp_path / "p.json").read_text())
        for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "median_ratio"):
            assert saved[key] == pytest.approx(direct[key], rel=1e-6, abs=1e-9), (resize, key)
        assert direct["variant"]["image_resize"] == resize and direct["variant"]["frames"] == "png"


def test_lanczos_changes_the_numbers(seeds, kitti_mini, two_frames, tmp_path, monkeypatch):
    rows = []
    for resize in ("torch", "pil-lanczos"):
        args = ["--data", kitti_mini, "--split", two_frames, "--image-resize", resize, "--json", tmp_path / "o.json"]
        assert run_cli(monkeypatch, "eval", "--checkpoint", seeds[0], *args) == 0
        rows.append(json.loads((tmp_path / "o.json").read_text())[0])
    assert rows[0]["abs_rel"] != rows[1]["abs_rel"]


def test_group_mean_std_provenance_and_stdout_json(seeds, kitti_mini, two_frames, monkeypatch, capsys):
    args = ["eval", "--checkpoint", seeds[0], "--checkpoint", seeds[1], "--group", "md2-seeds", "--data", kitti_mini]
    assert run_cli(monkeypatch, *args, "--split", two_frames, "--json", "-", "--format", "markdown") == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)  # stdout holds the JSON alone; tables and rows went to stderr
    assert [row["checkpoint"] for row in rows] == ["monodepth2: seed0/best", "monodepth2: seed1/best", "md2-seeds"]
    group = rows[2]
    for key in ("abs_rel", "rmse", "a1"):
        values = [rows[0][key], rows[1][key]]
        assert group[key] == pytest.approx(np.mean(values)) and group[f"{key}_std"] == pytest.approx(
            np.std(values, ddof=1)
        )
    assert group["n_runs"] == 2 and group["runs"] == ["monodepth2: seed0/best", "monodepth2: seed1/best"]
    assert f"| md2-seeds (mean ± std of 2) @ 192x64 | {group['abs_rel']:.3f} ± {group['abs_rel_std']:.3f} |" in (
        captured.err.replace("\n", "")
    )
    record = rows[0]["provenance"]
    assert record["depthcli"] == depthcli.__version__ and record["torch"] == torch.__version__
    assert record["checkpoint"] == str(seeds[0].resolve()) and "--group md2-seeds" in record["command"]
    assert record["data"] == str(kitti_mini.resolve()) and record["split"] == str(two_frames)
    head = subprocess.run(["git", "-C", depthcli.__path__[0], "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert record["git_commit"].split("+")[0] == head.stdout.strip()
    assert rows[0]["variant"]["preset"] == "kitti-eigen" and rows[0]["selection_warnings"] == []


def test_latex_rows(seeds, kitti_mini, two_frames, monkeypatch, capsys):
    args = ["eval", "--checkpoint", seeds[1], "--data", kitti_mini, "--split", two_frames, "--format", "latex"]
    assert run_cli(monkeypatch, *args, "--protocol", "kitti-benchmark-legacy", "--gt", "velodyne") == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "% model & abs_rel & sq_rel & rmse & rmse_log & a1 & a2 & a3 \\\\" in out
    assert "192x64 & 0." in out and "kitti-benchmark-legacy [gt=velodyne" in out


def test_group_needs_two_runs(seeds, kitti_mini, two_frames, monkeypatch, capsys):
    args = ["eval", "--checkpoint", seeds[0], "--group", "alone", "--data", kitti_mini, "--split", two_frames]
    assert run_cli(monkeypatch, *args) == 2
    assert "at least 2 checkpoints" in capsys.readouterr().err


def test_prediction_folder_matches_split_entries(tmp_path):
    from depthcli.errors import DepthcliError
    from depthcli.evaluation.predictions import PredictionFolder

    names = ["2011_09_26/2011_09_26_drive_0001_sync 3 l", "2011_09_26/2011_09_26_drive_0001_sync 4 l"]
    nested = tmp_path / "nested" / "2011_09_26" / "2011_09_26_drive_0001_sync" / "image_02" / "data"
    nested.mkdir(parents=True)
    flat = tmp_path / "flat"
    flat.mkdir()
    for frame in (3, 4):
        np.save(nested / f"{frame:010d}_disp.npy", np.full((1, 1, 2, 3), frame, np.float32))  # monodepth2's shape
        np.save(flat / f"{frame:010d}_disp.npy", np.full((2, 3), frame, np.float32))
    for folder in (tmp_path / "nested", flat):
        preds = PredictionFolder(folder, names)
        assert len(preds) == 2 and preds[1].shape == (2, 3) and preds[1][0, 0] == 4
    other_drive = ["2011_09_26/2011_09_26_drive_0002_sync 3 l"]
    with pytest.raises(DepthcliError, match="both match"):
        PredictionFolder(flat, names[:1] + other_drive)  # a flat folder cannot tell drives apart
    with pytest.raises(DepthcliError, match="has no 0000000004_disp.npy"):
        PredictionFolder(tmp_path / "nested", ["2011_09_26/2011_09_26_drive_0002_sync 4 l"])
