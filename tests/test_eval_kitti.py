"""KITTI Eigen evaluation on the real sample against a literal, independent monodepth2 protocol.

The reference below re-implements monodepth2's `export_gt_depth.py` + `evaluate_depth.py` steps
directly in numpy (own calibration parsing, velodyne projection, crop, mask, median, clamp, metrics)
and shares no code with depthcli. The CLI is driven in-process and read back through `--json`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_harness import run_cli

from depthcli.evaluation.eval_sets import open_eval_set

KITTI_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# monodepth2's evaluate_depth.py on the Eigen split, switch by switch (median scaling and factor vary by test)
LEGACY_VARIANT = {
    "preset": "kitti-eigen", "dataset": "kitti", "gt": "velodyne", "gt_depth": "velo-x", "crop": "garg",
    "min_depth": 1e-3, "max_depth": 80.0, "cap_gt": True, "sq_rel": "legacy", "resize": "disp-cv2",
    "median_scaling": True, "scale_factor": 1.0,
}  # fmt: skip


# ---------------------------------------------------------------- the independent reference protocol


def ref_read_calib(path: Path) -> dict:
    data = {}
    for line in path.read_text().splitlines():
        key, value = line.split(":", 1)
        try:
            data[key] = np.array([float(x) for x in value.split()])
        except ValueError:
            pass
    return data


def ref_velodyne_gt(root: Path, folder: str, frame: int, vel_depth: bool = True) -> np.ndarray:
    """monodepth2 generate_depth_map(cam=2, vel_depth), written out step by step."""
    calib_dir = root / folder.split("/")[0]
    cam2cam = ref_read_calib(calib_dir / "calib_cam_to_cam.txt")
    velo2cam = ref_read_calib(calib_dir / "calib_velo_to_cam.txt")
    velo2cam = np.vstack((np.hstack((velo2cam["R"].reshape(3, 3), velo2cam["T"][:, None])), [0, 0, 0, 1.0]))
    im_shape = cam2cam["S_rect_02"][::-1].astype(np.int32)
    r_cam2rect = np.eye(4)
    r_cam2rect[:3, :3] = cam2cam["R_rect_00"].reshape(3, 3)
    p_rect = cam2cam["P_rect_02"].reshape(3, 4)
    p_velo2im = np.dot(np.dot(p_rect, r_cam2rect), velo2cam)
    velo = np.fromfile(root / folder / "velodyne_points" / "data" / f"{frame:010d}.bin", dtype=np.float32)
    velo = velo.reshape(-1, 4)
    velo[:, 3] = 1.0
    velo = velo[velo[:, 0] >= 0, :]
    pts = np.dot(p_velo2im, velo.T).T
    pts[:, :2] = pts[:, :2] / pts[:, 2][..., None]
    if vel_depth:
        pts[:, 2] = velo[:, 0]  # the Eigen quirk: velodyne x, not camera z
    pts[:, 0] = np.round(pts[:, 0]) - 1
    pts[:, 1] = np.round(pts[:, 1]) - 1
    ok = (pts[:, 0] >= 0) & (pts[:, 1] >= 0) & (pts[:, 0] < im_shape[1]) & (pts[:, 1] < im_shape[0])
    pts = pts[ok, :]
    depth = np.zeros(im_shape[:2])
    depth[pts[:, 1].astype(int), pts[:, 0].astype(int)] = pts[:, 2]
    inds = pts[:, 1].astype(int) * im_shape[1] + pts[:, 0].astype(int)
    for dupe in [item for item, count in Counter(inds).items() if count > 1]:
        same = np.where(inds == dupe)[0]
        depth[int(pts[same[0], 1]), int(pts[same[0], 0])] = pts[same, 2].min()
    depth[depth < 0] = 0
    return depth.astype(np.float32)


def ref_errors(gt, pred):
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": np.mean(np.abs(gt - pred) / gt),
        "sq_rel": np.mean(((gt - pred) ** 2) / gt),
        "rmse": np.sqrt(((gt - pred) ** 2).mean()),
        "rmse_log": np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean()),
        "a1": (thresh < 1.25).mean(),
        "a2": (thresh < 1.25**2).mean(),
        "a3": (thresh < 1.25**3).mean(),
    }


def ref_evaluate(preds, gt_depths, disp=True, median=True, factor=1.0, sq_rel_over_gt2=False):
    errors, ratios = [], []
    for i in range(preds.shape[0]):
        gt_depth = gt_depths[i]
        gt_height, gt_width = gt_depth.shape[:2]
        pred = cv2.resize(preds[i], (gt_width, gt_height))
        pred_depth = 1 / pred if disp else pred
        mask = np.logical_and(gt_depth > 1e-3, gt_depth < 80)
        crop = np.array(
            [0.40810811 * gt_height, 0.99189189 * gt_height, 0.03594771 * gt_width, 0.96405229 * gt_width]
        ).astype(np.int32)
        crop_mask = np.zeros(mask.shape)
        crop_mask[crop[0] : crop[1], crop[2] : crop[3]] = 1
        mask = np.logical_and(mask, crop_mask)
        pred_depth = pred_depth[mask].astype(np.float64) * factor
        gt_valid = gt_depth[mask].astype(np.float64)
        if median:
            ratio = np.median(gt_valid) / np.median(pred_depth)
            ratios.append(ratio)
            pred_depth *= ratio
        pred_depth[pred_depth < 1e-3] = 1e-3
        pred_depth[pred_depth > 80] = 80
        errors.append(ref_errors(gt_valid, pred_depth))
        if sq_rel_over_gt2:
            errors[-1]["sq_rel"] = np.mean((gt_valid - pred_depth) ** 2 / gt_valid**2)
    means = {key: float(np.mean([e[key] for e in errors])) for key in KITTI_KEYS}
    if median:
        ratios = np.array(ratios)
        means["median_ratio"] = float(np.median(ratios))
        means["median_ratio_std"] = float(np.std(ratios / np.median(ratios)))
    return means


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def kitti_gt(kitti_mini):
    lines = (kitti_mini / "eval_files.txt").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    return [ref_velodyne_gt(kitti_mini, folder, int(frame)) for folder, frame, _ in entries]


def prediction_kinds(gt_depths) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noisy = []
    for gt in gt_depths:
        valid = gt > 0
        disp = np.full(gt.shape, 1.0 / np.median(gt[valid]), dtype=np.float32)
        disp[valid] = (1.0 / gt[valid]) * np.exp(rng.normal(0, 0.15, valid.sum()))
        noisy.append(disp)
    rows = np.linspace(0.02, 0.6, 128, dtype=np.float32)[:, None]
    smooth = rows * (1 + 0.2 * rng.random((len(gt_depths), 128, 416), dtype=np.float32))
    return {
        "gt_noisy": np.stack(noisy).astype(np.float32),  # at GT size (375x1242)
        "random": rng.uniform(0.01, 1.0, (len(gt_depths), 192, 640)).astype(np.float32),
        "smooth": smooth.astype(np.float32),  # 416x128, resized up by the protocol
    }


# ---------------------------------------------------------------- tests


def eval_real_sample(monkeypatch, kitti_mini, tmp_path, preds, *flags) -> dict:
    """`depthcli eval --predictions` on the ten real frames; the one JSON row."""
    np.save(tmp_path / "preds.npy", preds)
    out = tmp_path / "out.json"
    split = kitti_mini / "eval_files.txt"
    args = ["eval", "--predictions", tmp_path / "preds.npy", "--data", kitti_mini, "--split", split, "--json", out]
    assert run_cli(monkeypatch, *args, *flags) == 0
    (row,) = json.loads(out.read_text())
    return row


@pytest.mark.parametrize(
    ("kind", "flags", "reference_args"),
    [
        ("gt_noisy", [], {}),
        ("random", [], {}),
        ("random", ["--no-median-scaling", "--scale-factor", "5.4"], {"median": False, "factor": 5.4}),
        ("smooth", ["--pred-type", "depth"], {"disp": False}),
    ],
)
def test_cli_matches_reference_protocol(kitti_mini, kitti_gt, tmp_path, monkeypatch, kind, flags, reference_args):
    preds = prediction_kinds(kitti_gt)[kind]
    row = eval_real_sample(monkeypatch, kitti_mini, tmp_path, preds, *flags)
    expected = ref_evaluate(preds, kitti_gt, **reference_args)
    assert row["resolution"] == f"{preds.shape[2]}x{preds.shape[1]}"
    assert row["n_images"] == 10
    assert set(expected) <= set(row) and row["protocol"] == "kitti-eigen"
    assert row["variant"] | {"median_scaling": True, "scale_factor": 1.0} == LEGACY_VARIANT | {
        "pred_type": "depth" if "--pred-type" in flags else "disp"
    }
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-4), key


def test_corrected_protocol_matches_the_reference_with_camera_depth(kitti_mini, tmp_path, monkeypatch):
    """kitti-eigen-corrected = monodepth2's pipeline with generate_depth_map(vel_depth=False) and Sq Rel over gt²."""
    lines = (kitti_mini / "eval_files.txt").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    cam_gt = [ref_velodyne_gt(kitti_mini, folder, int(frame), vel_depth=False) for folder, frame, _ in entries]
    preds = prediction_kinds(cam_gt)["random"]
    row = eval_real_sample(monkeypatch, kitti_mini, tmp_path, preds, "--protocol", "kitti-eigen-corrected")
    for key, value in ref_evaluate(preds, cam_gt, sq_rel_over_gt2=True).items():
        assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-4), key
    legacy = ref_evaluate(preds, [ref_velodyne_gt(kitti_mini, f, int(i)) for f, i, _ in entries])
    assert abs(row["abs_rel"] - legacy["abs_rel"]) > 1e-4  # the two variants do differ on real data


def test_ground_truth_equals_reference_projection(kitti_mini, kitti_gt):
    eval_set = open_eval_set(kitti_mini, kitti_mini / "eval_files.txt", "kitti-eigen")
    assert len(eval_set) == len(kitti_gt) == 10
    for index in (0, 9):
        ours = eval_set.load_gt(index)
        assert ours.shape == kitti_gt[index].shape == (375, 1242)
        assert (ours > 0).sum() > 10000
        np.testing.assert_allclose(ours, kitti_gt[index], rtol=1e-6)


def test_per_image_csv_and_extremes(kitti_mini, kitti_gt, tmp_path, monkeypatch, capsys):
    preds = prediction_kinds(kitti_gt)["random"]
    np.save(tmp_path / "preds.npy", preds)
    csv_path = tmp_path / "per_image.csv"
    args = ["--data", kitti_mini, "--split", kitti_mini / "eval_files.txt", "--per-image", csv_path]
    assert run_cli(monkeypatch, "eval", "--predictions", tmp_path / "preds.npy", *args) == 0
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["resolution", "index", "name"] and "ratio" in header
    assert len(lines) == 11
    abs_rel = [float(line.split(",")[header.index("abs_rel")]) for line in lines[1:]]
    expected_first = ref_evaluate(preds[:1], kitti_gt[:1])["abs_rel"]
    assert abs_rel[0] == pytest.approx(expected_first, rel=1e-5)
    printed = capsys.readouterr().out
    worst = int(np.argmax(abs_rel))
    assert f"drive_0000_sync {worst} l ({abs_rel[worst]:.3f})" in printed.replace("\n", " ")


def test_eval_cache_gives_the_same_numbers_as_the_raw_root(kitti_mini, kitti_gt, tmp_path, monkeypatch):
    from depthcli.data.cache import build_cache

    split = tmp_path / "two.txt"
    split.write_text("".join(line + "\n" for line in (kitti_mini / "eval_files.txt").read_text().splitlines()[:2]))
    cache = build_cache("kitti", kitti_mini, tmp_path / "eval.h5", split=split)
    from_cache = open_eval_set(cache, None, "kitti-eigen")
    from_root = open_eval_set(kitti_mini, split, "kitti-eigen")
    assert from_cache.names == from_root.names
    for index in range(2):
        np.testing.assert_array_equal(from_cache.load_gt(index), kitti_gt[index])
        np.testing.assert_array_equal(from_cache.load_image(index), from_root.load_image(index))
    preds = prediction_kinds(kitti_gt)["random"][:2]
    np.save(tmp_path / "preds.npy", preds)
    out = tmp_path / "out.json"
    assert run_cli(monkeypatch, "eval", "--predictions", tmp_path / "preds.npy", "--data", cache, "--json", out) == 0
    (row,) = json.loads(out.read_text())
    assert row["abs_rel"] == pytest.approx(ref_evaluate(preds, kitti_gt[:2])["abs_rel"], rel=1e-5)


@pytest.mark.parametrize("protocol", ["kitti-benchmark-legacy", "kitti-benchmark"])
def test_kitti_benchmark_reads_improved_gt_pngs(kitti_mini, tmp_path, monkeypatch, protocol):
    """Layout: DRIVE/proj_depth/groundtruth/image_02/%010d.png, uint16 / 256, 0 = invalid, no crop.

    Legacy = monodepth2's eigen_benchmark branch (every gt > 0, clamp at 80, Sq Rel over gt); the preset =
    monodepth_benchmark's recommendation (gt in (1e-3, 100), clamp at 100, the devkit's Sq Rel over gt²,
    SILog and iRMSE in 1/km), both written out here.
    """
    date = tmp_path / "root" / "2011_09_26"
    drive = date / "2011_09_26_drive_0000_sync"
    (drive / "proj_depth" / "groundtruth" / "image_02").mkdir(parents=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        (date / name).symlink_to(kitti_mini / "2011_09_26" / name)
    rng = np.random.default_rng(5)
    gt_raw = (rng.uniform(1, 120, (375, 1242)) * 256).astype(np.uint16)  # some beyond 80 m, some beyond 100 m
    gt_raw[rng.random(gt_raw.shape) < 0.7] = 0
    gt_raw[0, 0] = 10 * 256  # top-left corner: outside the Eigen crop, scored by the benchmark protocols
    cv2.imwrite(str(drive / "proj_depth" / "groundtruth" / "image_02" / "0000000004.png"), gt_raw)
    (tmp_path / "split.txt").write_text("2011_09_26/2011_09_26_drive_0000_sync 4 l\n")
    pred = rng.uniform(0.05, 1.0, (1, 192, 640)).astype(np.float32)
    np.save(tmp_path / "p.npy", pred)
    out = tmp_path / "out.json"
    args = ["eval", "--protocol", protocol, "--predictions", tmp_path / "p.npy", "--json", out]
    assert run_cli(monkeypatch, *args, "--data", tmp_path / "root", "--split", tmp_path / "split.txt") == 0
    (row,) = json.loads(out.read_text())
    gt = gt_raw.astype(np.float32) / 256
    resized = cv2.resize(pred[0], (1242, 375))
    legacy = protocol == "kitti-benchmark-legacy"
    valid = gt > 0 if legacy else (gt > 1e-3) & (gt < 100)
    cap = 80 if legacy else 100
    g, p = gt[valid].astype(np.float64), 1.0 / resized[valid].astype(np.float64)
    p = np.clip(p * np.median(g) / np.median(p), 1e-3, cap)
    expected = ref_errors(g, p)
    if not legacy:
        expected["sq_rel"] = np.mean((g - p) ** 2 / g**2)
        log_err = 100 * (np.log(p) - np.log(g))
        expected["silog"] = np.sqrt(np.mean(log_err**2) - np.mean(log_err) ** 2)
        expected["irmse"] = np.sqrt(np.mean((1000 / p - 1000 / g) ** 2))
    assert row["n_images"] == 1 and row["variant"]["max_depth"] == cap
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-5), key
