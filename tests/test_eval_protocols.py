"""Metrics against hand values, protocol masks/crops/scaling, and the NYU protocol against a direct computation."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from cli_harness import run_cli

from depthcli.errors import DepthcliError
from depthcli.evaluation.evaluate import EvalOptions, evaluate_predictions
from depthcli.evaluation.ground_truth import EvalSet
from depthcli.evaluation.metrics import compute_depth_errors
from depthcli.evaluation.protocols import eigen_crop, get_protocol, nyu_crop


def array_set(gts: list[np.ndarray]) -> EvalSet:
    return EvalSet([f"img{i}" for i in range(len(gts))], "synthetic", lambda i: gts[i])


def score(preds, gts, protocol="kitti-eigen", pred_type=None, median_scaling=None, scale_factor=1.0):
    options = EvalOptions(protocol, median_scaling=median_scaling, scale_factor=scale_factor, pred_type=pred_type)
    return evaluate_predictions(preds, gts, options)


def test_plain_gt_list_is_accepted():
    gts = [np.full((480, 640), 2.0, np.float32)]
    result = score(np.full((1, 240, 320), 3.0, np.float32), gts, "nyu")
    assert result.metrics["abs_rel"] == pytest.approx(0.5)
    assert result.per_image[0]["name"] == "image 0"


# ---------------------------------------------------------------- metrics by hand


def test_metrics_double_prediction_by_hand():
    gt = np.array([1.0, 2.0, 4.0])
    errors = compute_depth_errors(gt, 2 * gt)
    assert errors["abs_rel"] == pytest.approx(1.0)
    assert errors["sq_rel"] == pytest.approx(7 / 3)  # mean(gt^2 / gt) = mean(gt)
    assert errors["rmse"] == pytest.approx(math.sqrt(7.0))  # sqrt(mean(gt^2)) = sqrt(21/3)
    assert errors["rmse_log"] == pytest.approx(math.log(2))
    assert errors["log10"] == pytest.approx(math.log10(2))
    assert errors["silog"] == pytest.approx(0.0, abs=1e-6)  # a pure scale error is scale-invariant
    assert (errors["a1"], errors["a2"], errors["a3"]) == (0.0, 0.0, 0.0)  # ratio 2 > 1.25^3 = 1.953


def test_metrics_thresholds_and_silog_by_hand():
    gt = np.array([1.0, 1.0, 1.0, 1.0])
    pred = np.array([1.2, 1.5, 1.9, 2.5])  # ratios under 1.25 / 1.5625 / 1.953125: 1, 2, 3 of 4
    errors = compute_depth_errors(gt, pred)
    assert (errors["a1"], errors["a2"], errors["a3"]) == (0.25, 0.5, 0.75)
    log_diff = np.log(pred)
    assert errors["silog"] == pytest.approx(100 * math.sqrt(np.mean(log_diff**2) - np.mean(log_diff) ** 2))
    errors = compute_depth_errors(np.array([1.0, 1.0]), np.array([math.e, 1.0]))
    assert errors["silog"] == pytest.approx(50.0)  # log diffs (1, 0): variance 0.25


def test_crop_constants_at_kitti_and_nyu_size():
    assert eigen_crop((375, 1242)) == (153, 371, 44, 1197)  # int(153.04), int(371.96), int(44.65), int(1197.35)
    # 0.99189189 * 370 = 366.99999...: int32 truncation gives 366, not the rounded 367
    assert eigen_crop((370, 1224)) == (151, 366, 43, 1180)
    assert nyu_crop((480, 640)) == (45, 471, 41, 601)


def test_median_scaling_makes_scaled_predictions_exact():
    rng = np.random.default_rng(1)
    gts = [rng.uniform(2.0, 70.0, (375, 1242)).astype(np.float32) for _ in range(2)]
    for pred_type, preds in (
        ("depth", np.stack([3.0 * g for g in gts])),
        ("disp", np.stack([1.0 / (0.25 * g) for g in gts])),
    ):
        result = score(preds.astype(np.float32), array_set(gts), "kitti-eigen", pred_type)
        for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10"):
            assert result.metrics[key] == pytest.approx(0.0, abs=1e-5), (pred_type, key)
        assert result.metrics["a1"] == 1.0
        assert result.median_ratio == pytest.approx(1 / 3 if pred_type == "depth" else 4.0, rel=1e-5)
        assert result.median_ratio_std == pytest.approx(0.0, abs=1e-6)


def test_without_median_scaling_the_scale_error_shows():
    gts = [np.full((375, 1242), 10.0, np.float32)]
    preds = np.full((1, 375, 1242), 20.0, np.float32)
    result = score(preds, array_set(gts), "kitti-eigen", "depth", median_scaling=False)
    assert result.metrics["abs_rel"] == pytest.approx(1.0)
    assert result.metrics["a1"] == 0.0
    assert result.median_ratio is None
    fixed = score(preds, array_set(gts), "kitti-eigen", "depth", False, scale_factor=0.5)
    assert fixed.metrics["abs_rel"] == pytest.approx(0.0)


def test_clamp_and_mask_of_kitti_eigen():
    gt = np.zeros((375, 1242), np.float32)
    gt[200, 600] = 50.0  # inside the crop
    gt[201, 600] = 90.0  # beyond 80 m: masked
    gt[10, 600] = 20.0  # above the crop: masked
    pred = np.full((1, 375, 1242), 500.0, np.float32)  # clamped to 80
    result = score(pred, array_set([gt]), "kitti-eigen", "depth", median_scaling=False)
    assert result.metrics["abs_rel"] == pytest.approx(30 / 50)
    assert result.metrics["rmse"] == pytest.approx(30.0)


def test_kitti_benchmark_scores_every_positive_pixel_without_crop():
    gt = np.zeros((375, 1242), np.float32)
    gt[10, 5] = 4.0  # outside the Eigen crop but valid for the benchmark (as monodepth2)
    gt[300, 600] = 8.0
    pred = np.full((1, 375, 1242), 6.0, np.float32)
    result = score(pred, array_set([gt]), "kitti-benchmark", "depth", median_scaling=False)
    assert result.metrics["abs_rel"] == pytest.approx((2 / 4 + 2 / 8) / 2)


def test_mean_is_over_images_not_pixels():
    gt_a = np.zeros((375, 1242), np.float32)
    gt_a[200:300, 100:1100] = 10.0  # many pixels, perfect
    gt_b = np.zeros((375, 1242), np.float32)
    gt_b[250, 600] = 10.0  # one pixel, abs_rel 1
    preds = np.stack([np.full((375, 1242), 10.0), np.full((375, 1242), 20.0)]).astype(np.float32)
    result = score(preds, array_set([gt_a, gt_b]), "kitti-eigen", "depth", median_scaling=False)
    assert result.metrics["abs_rel"] == pytest.approx(0.5)
    assert [row["abs_rel"] for row in result.ranked()] == pytest.approx([0.0, 1.0])


# ---------------------------------------------------------------- NYU


def ref_nyu(preds, gts, median=False):
    """BTS / DenseDepth-style NYU evaluation written out directly (depth predictions, 480x640)."""
    rows = []
    for pred, gt in zip(preds, gts, strict=True):
        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]))
        valid = (gt > 1e-3) & (gt < 10)
        crop = np.zeros_like(valid)
        crop[45:471, 41:601] = True
        valid &= crop
        g, p = gt[valid].astype(np.float64), pred[valid].astype(np.float64)
        if median:
            p = p * np.median(g) / np.median(p)
        p = np.clip(p, 1e-3, 10)
        thresh = np.maximum(g / p, p / g)
        rows.append(
            {
                "abs_rel": np.mean(np.abs(g - p) / g),
                "sq_rel": np.mean((g - p) ** 2 / g),
                "rmse": np.sqrt(np.mean((g - p) ** 2)),
                "rmse_log": np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)),
                "log10": np.mean(np.abs(np.log10(g) - np.log10(p))),
                "a1": np.mean(thresh < 1.25),
                "a2": np.mean(thresh < 1.25**2),
                "a3": np.mean(thresh < 1.25**3),
            }
        )
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def synthetic_nyu(count=3, seed=2):
    rng = np.random.default_rng(seed)
    gts = []
    for _ in range(count):
        gt = rng.uniform(0.5, 12.0, (480, 640)).astype(np.float32)  # some beyond the 10 m cap
        gt[rng.random((480, 640)) < 0.1] = 0.0  # holes
        gts.append(gt)
    preds = np.stack([np.clip(g, 0.3, None) * rng.uniform(0.7, 1.3, g.shape) for g in gts]).astype(np.float32)
    preds[0, :5, :5] = 30.0  # beyond the cap, outside the crop
    return gts, preds


@pytest.mark.parametrize("median", [False, True])
def test_nyu_protocol_matches_direct_computation(median):
    gts, preds = synthetic_nyu()
    result = score(preds, array_set(gts), "nyu", median_scaling=median)
    expected = ref_nyu(preds, gts, median)
    summary = result.summary()
    described = {"resolution", "n_images", "silog", "irmse", "protocol", "variant", "split", "gt"}
    assert set(summary) == described | set(expected) | ({"median_ratio", "median_ratio_std"} if median else set())
    assert summary["variant"]["crop"] == "nyu" and summary["variant"]["median_scaling"] is median
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert get_protocol("nyu").median_scaling is False  # supervised NYU results are unscaled by default


def test_nyu_protocol_on_the_real_sample(nyu_real_sample):
    """The real 224x224 NYU depth enlarged to 480x640 as GT; a blurred, biased copy as the prediction."""
    depth = np.load(nyu_real_sample / "depth.npy").astype(np.float32)
    gt = cv2.resize(depth, (640, 480), interpolation=cv2.INTER_NEAREST)
    pred = cv2.GaussianBlur(depth, (9, 9), 3) * 1.1
    result = score(pred[None], array_set([gt]), "nyu")
    expected = ref_nyu(pred[None], [gt])
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, rel=1e-6), key
    assert 0.05 < result.metrics["abs_rel"] < 0.2  # dominated by the 10 % bias


def test_nyu_cli_on_png_folder(tmp_path, monkeypatch):
    """`depthcli eval --protocol nyu` on a NYU PNG-pair layout: its test/ folder is the default split."""
    gts, preds = synthetic_nyu(count=2, seed=3)
    for split in ("train", "test"):
        (tmp_path / "nyu" / split / "rgb").mkdir(parents=True)
        (tmp_path / "nyu" / split / "depth").mkdir(parents=True)
    for i, gt in enumerate(gts):
        cv2.imwrite(str(tmp_path / "nyu" / "test" / "rgb" / f"{i:03d}.png"), np.zeros((480, 640, 3), np.uint8))
        cv2.imwrite(str(tmp_path / "nyu" / "test" / "depth" / f"{i:03d}.png"), np.round(gt * 1000).astype(np.uint16))
    cv2.imwrite(str(tmp_path / "nyu" / "train" / "rgb" / "x.png"), np.zeros((480, 640, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "nyu" / "train" / "depth" / "x.png"), np.ones((480, 640), np.uint16))
    np.save(tmp_path / "preds.npy", preds)
    out = tmp_path / "nyu.json"
    args = ["eval", "--protocol", "nyu", "--predictions", tmp_path / "preds.npy", "--data", tmp_path / "nyu"]
    assert run_cli(monkeypatch, *args, "--json", out) == 0
    (row,) = json.loads(out.read_text())
    stored_gts = [np.round(g * 1000).astype(np.uint16).astype(np.float32) / 1000 for g in gts]
    expected = ref_nyu(preds, stored_gts)
    assert row["n_images"] == 2 and "median_ratio" not in row
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-5), key
    # --split: a text file of zero-based indices into the layout (train first, then test)
    (tmp_path / "one.txt").write_text("1\n")
    np.save(tmp_path / "one.npy", preds[:1])
    args = ["eval", "--protocol", "nyu", "--predictions", tmp_path / "one.npy", "--data", tmp_path / "nyu"]
    assert run_cli(monkeypatch, *args, "--split", tmp_path / "one.txt", "--json", out) == 0
    assert json.loads(out.read_text())[0]["abs_rel"] == pytest.approx(ref_nyu(preds[:1], stored_gts[:1])["abs_rel"])


def test_no_valid_pixel_is_a_user_error():
    gt = np.zeros((375, 1242), np.float32)
    with pytest.raises(DepthcliError, match="img0.*no ground-truth pixel"):
        score(np.ones((1, 375, 1242), np.float32), array_set([gt]), "kitti-eigen")
