"""Evaluating a real (randomly initialised) net at several resolutions, the inference helper, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_harness import run_cli

from depthcli.checkpoints import save_checkpoint
from depthcli.evaluation.eval_sets import open_eval_set
from depthcli.evaluation.evaluate import EvalOptions, evaluate_model, evaluate_predictions
from depthcli.inference import image_to_tensor, post_process_disparity, run_depth_net
from depthcli.nets import build_depth_net

SUMMARY_KEYS = {"resolution", "abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "log10", "silog", "irmse"}
SUMMARY_KEYS |= {"n_images", "protocol", "variant", "split", "gt"}
ROW_KEYS = SUMMARY_KEYS | {"checkpoint", "selection_warnings", "provenance"}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_depth_net("monodepth2").eval()


@pytest.fixture()
def one_frame_split(kitti_mini, tmp_path):
    """One frame keeps the real ResNet-18 net affordable on 2 CPU cores."""
    split = tmp_path / "one.txt"
    split.write_text((kitti_mini / "eval_files.txt").read_text().splitlines()[5] + "\n")
    return split


@pytest.fixture()
def checkpoint(model, tmp_path):
    config = {"net": "monodepth2", "preset": "monodepth2", "size": [416, 128], "min_depth": 0.1, "max_depth": 100.0}
    return save_checkpoint(
        tmp_path / "run" / "best.ckpt", {"kind": "depth", "config": config, "model": model.state_dict()}
    )


def ref_post_process(l_disp, r_disp):
    """monodepth2's batch_post_process_disparity, written out in numpy."""
    _, h, w = l_disp.shape
    m_disp = 0.5 * (l_disp + r_disp)
    grid, _ = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    l_mask = (1.0 - np.clip(20 * (grid - 0.05), 0, 1))[None, ...]
    r_mask = l_mask[:, :, ::-1]
    return r_mask * l_disp + l_mask * r_disp + (1.0 - l_mask - r_mask) * m_disp


def test_post_process_matches_monodepth2():
    rng = np.random.default_rng(0)
    plain, flipped_back = rng.random((2, 3, 8, 64)).astype(np.float32)
    ours = post_process_disparity(torch.from_numpy(plain)[:, None], torch.from_numpy(flipped_back)[:, None])
    np.testing.assert_allclose(ours[:, 0].numpy(), ref_post_process(plain, flipped_back), rtol=1e-6, atol=1e-7)


def test_run_depth_net_shapes_and_post_process(model):
    images = torch.rand(3, 3, 50, 100)
    disp = run_depth_net(model, images, (96, 64), batch_size=2)
    assert disp.shape == (3, 1, 64, 96) and disp.dtype == torch.float32
    with torch.no_grad():
        direct = model(F.interpolate(images, (64, 96), mode="bilinear", align_corners=False, antialias=True))
    torch.testing.assert_close(disp, direct[("disp", 0)], rtol=1e-4, atol=1e-5)
    processed = run_depth_net(model, images, (96, 64), post_process=True)
    with torch.no_grad():
        flipped = model(torch.flip(F.interpolate(images, (64, 96), mode="bilinear", antialias=True), dims=[-1]))
    expected = ref_post_process(disp[:, 0].numpy(), torch.flip(flipped[("disp", 0)], dims=[-1])[:, 0].numpy())
    np.testing.assert_allclose(processed[:, 0].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_evaluate_model_at_two_resolutions(model, kitti_mini, one_frame_split):
    eval_set = open_eval_set(kitti_mini, one_frame_split, "kitti-eigen")
    sizes = [(416, 128), (512, 160)]
    results = evaluate_model(model, eval_set, sizes, 0.1, 100.0, EvalOptions(batch_size=1))
    assert [r.resolution for r in results] == ["416x128", "512x160"]
    for result, (width, height) in zip(results, sizes, strict=True):
        assert set(result.summary()) == SUMMARY_KEYS | {"median_ratio", "median_ratio_std"}
        assert result.n_images == 1
        # The same numbers through the external-predictions path: net output -> scaled disparity by hand.
        images = image_to_tensor(eval_set.load_image(0))[None]
        with torch.no_grad():
            small = F.interpolate(images, (height, width), mode="bilinear", align_corners=False, antialias=True)
            sigmoid = model(small)[("disp", 0)][:, 0].numpy()
        scaled = 1 / 100.0 + (1 / 0.1 - 1 / 100.0) * sigmoid
        expected = evaluate_predictions(scaled, eval_set)
        for key, value in expected.metrics.items():
            assert result.metrics[key] == pytest.approx(value, rel=1e-4), key


def test_cli_checkpoint_resolutions_json(checkpoint, kitti_mini, one_frame_split, tmp_path, monkeypatch):
    out = tmp_path / "eval.json"
    args = ["eval", "--checkpoint", checkpoint, "--data", kitti_mini, "--split", one_frame_split, "--json", out]
    assert run_cli(monkeypatch, *args, "--resolutions", "416x128,512x160", "--device", "cpu") == 0
    rows = json.loads(out.read_text())
    assert [row["resolution"] for row in rows] == ["416x128", "512x160"]
    assert all(set(row) == ROW_KEYS | {"median_ratio", "median_ratio_std"} for row in rows)
    assert run_cli(monkeypatch, *args, "--no-median-scaling", "--device", "cpu") == 0  # default: the ckpt's size
    (row,) = json.loads(out.read_text())
    assert row["resolution"] == "416x128" and set(row) == ROW_KEYS


# ---------------------------------------------------------------- bad input: one red line, exit 2


def bad_cli(monkeypatch, capsys, *args) -> str:
    assert run_cli(monkeypatch, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_bad_predictions(kitti_mini, tmp_path, monkeypatch, capsys):
    split = kitti_mini / "eval_files.txt"
    base = ["eval", "--data", kitti_mini, "--split", split, "--predictions"]
    np.save(tmp_path / "nine.npy", np.ones((9, 192, 640), np.float32))
    assert "hold 9 images but split" in bad_cli(monkeypatch, capsys, *base, tmp_path / "nine.npy")
    np.save(tmp_path / "flat.npy", np.ones((192, 640), np.float32))
    err = bad_cli(monkeypatch, capsys, *base, tmp_path / "flat.npy")
    assert "flat.npy" in err and "(N,H,W)" in err and "N = 10" in err
    bad = np.ones((10, 192, 640), np.float32)
    bad[3, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    assert "image 3" in bad_cli(monkeypatch, capsys, *base, tmp_path / "nan.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert "junk.npy" in bad_cli(monkeypatch, capsys, *base, tmp_path / "junk.npy")
    assert "does not exist" in bad_cli(monkeypatch, capsys, *base, tmp_path / "missing.npy")


def test_bad_split_and_options(kitti_mini, checkpoint, tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "p.npy", np.ones((1, 192, 640), np.float32))
    lines = (kitti_mini / "eval_files.txt").read_text().splitlines()
    no_velo = tmp_path / "no_velo.txt"
    no_velo.write_text(f"{lines[0]}\n2011_09_26/2011_09_26_drive_0000_sync 10 l\n")
    common = ["eval", "--data", kitti_mini, "--predictions", tmp_path / "p.npy", "--split"]
    err = bad_cli(monkeypatch, capsys, *common, no_velo)
    assert "line 2" in err and "0000000010.bin" in err and "no_velo.txt" in err
    (tmp_path / "empty.txt").write_text("\n")
    assert "no entries" in bad_cli(monkeypatch, capsys, *common, tmp_path / "empty.txt")
    split = kitti_mini / "eval_files.txt"
    ckpt_args = ["eval", "--data", kitti_mini, "--split", split, "--checkpoint", checkpoint, "--resolutions"]
    assert "multiples of 32" in bad_cli(monkeypatch, capsys, *ckpt_args, "640x190")
    assert "WIDTHxHEIGHT" in bad_cli(monkeypatch, capsys, *ckpt_args, "big")
    both = ["eval", "--data", kitti_mini, "--split", split, "--checkpoint", checkpoint]
    assert "exactly one" in bad_cli(monkeypatch, capsys, *both, "--predictions", tmp_path / "p.npy")
    assert "--protocol 'kitti'" in bad_cli(monkeypatch, capsys, *both, "--protocol", "kitti")


def test_bad_checkpoints(kitti_mini, tmp_path, monkeypatch, capsys):
    corrupted = tmp_path / "corrupted.ckpt"
    corrupted.write_bytes(b"\x00garbage" * 100)
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    base = ["eval", "--data", kitti_mini, "--split", kitti_mini / "eval_files.txt", "--checkpoint"]
    assert "corrupted.ckpt" in bad_cli(monkeypatch, capsys, *base, corrupted)
    assert "not a depthcli checkpoint" in bad_cli(monkeypatch, capsys, *base, foreign)
