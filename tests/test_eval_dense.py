"""Dense-GT metrics: point clouds (Chamfer, F-score@10cm) and iBims-1 depth-boundary errors, by hand and end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthcli.evaluation.dense_metrics import backproject, canny_edges, cloud_errors, depth_edge_errors, edge_errors
from depthcli.evaluation.eval_sets import open_eval_set
from depthcli.evaluation.evaluate import EvalOptions, evaluate_predictions
from depthcli.evaluation.ground_truth import EvalSet
from depthcli.evaluation.metrics import compute_depth_errors
from depthcli.evaluation.protocols import build_protocol


def test_backprojection_by_hand():
    k = np.array([[100.0, 0, 10.0], [0, 50.0, 5.0], [0, 0, 1]])
    depth = np.zeros((8, 16))
    depth[5, 10], depth[1, 12] = 2.0, 4.0
    points = backproject(depth, depth > 0, k)
    # row-major order of np.nonzero: (1, 12) first
    np.testing.assert_allclose(points, [[(12 - 10) * 4 / 100, (1 - 5) * 4 / 50, 4.0], [0.0, 0.0, 2.0]])


def test_chamfer_and_fscore_by_hand():
    gt = np.array([[0.0, 0, 0], [1, 0, 0]])
    pred = np.array([[0.0, 0, 0.05], [1, 0, 0.3]])  # nearest distances 0.05 and 0.3, both ways
    errors = cloud_errors(gt, pred)
    assert errors["chamfer"] == pytest.approx(0.175 + 0.175)
    assert errors["fscore"] == pytest.approx(0.5)  # precision 1/2, recall 1/2
    far = cloud_errors(gt, pred + [0, 0, 5])
    assert far["fscore"] == 0.0


def step(width: int, columns: list[int], height: int = 40, values=(2.0, 5.0, 9.0)) -> np.ndarray:
    """A depth map with vertical steps at `columns` (depth changes left to right)."""
    depth = np.full((height, width), values[0])
    for value, column in zip(values[1:], columns, strict=False):
        depth[:, column:] = value
    return depth


def test_canny_finds_a_one_pixel_line_at_a_step():
    edges = canny_edges(step(60, [30]))
    assert edges.sum() == 40 and set(np.nonzero(edges)[1]) == {29}  # the last column before the step
    assert not canny_edges(np.full((20, 20), 3.0)).any()


# Each step of `step(64, ...)` is a 40-pixel vertical edge in the column before it; the true edge is column 29.
# dbe_comp = (sum over predicted edges of min(distance to a true edge, 10)
#             + sum over true edges of min(distance to a predicted edge, 10)) / (predicted + true edge pixels)
@pytest.mark.parametrize(
    ("gt_steps", "pred_steps", "accuracy", "completeness"),
    [
        # edge moved by 3 px: (40*3 + 40*3) / (40 + 40) = 3
        ([30], [33], 3.0, 3.0),
        ([30], [30], 0.0, 0.0),
        # plus a predicted edge 20 px away (column 49): outside the 10 px window, so not in the accuracy;
        # in the completeness capped at 10: (40*3 + 40*10 + 40*3) / (80 + 40) = 640 / 120
        ([30], [33, 50], 3.0, 640 / 120),
        # true edges at columns 19 and 44, one predicted edge on column 19: the true edge 25 px from any
        # prediction counts 10 each: (40*0 + 40*0 + 40*10) / (40 + 80) = 400 / 120
        ([20, 45], [20], 0.0, 400 / 120),
        # the only predicted edge is 15 px away (column 44): none within 10 px, so both are 10
        ([30], [45], 10.0, 10.0),
    ],
)
def test_depth_boundary_errors_by_hand(gt_steps, pred_steps, accuracy, completeness):
    gt_edges, pred_edges = canny_edges(step(64, gt_steps)), canny_edges(step(64, pred_steps))
    assert gt_edges.sum() == 40 * len(gt_steps) and pred_edges.sum() == 40 * len(pred_steps)
    errors = edge_errors(gt_edges, pred_edges)
    assert errors == pytest.approx({"dbe_acc": accuracy, "dbe_comp": completeness})


def test_depth_boundary_errors_without_edges():
    gt_edges = canny_edges(step(64, [30]))
    assert edge_errors(gt_edges, np.zeros_like(gt_edges)) == {"dbe_acc": 10.0, "dbe_comp": 10.0}
    undefined = edge_errors(np.zeros_like(gt_edges), gt_edges)
    assert math.isnan(undefined["dbe_acc"]) and math.isnan(undefined["dbe_comp"])


def test_unscored_pixels_are_filled_alike_in_both_maps():
    gt = step(64, [30])
    mask = np.ones(gt.shape, bool)
    mask[:, 50:] = False  # e.g. sky: no GT there
    pred = gt.copy()
    pred[:, 50:] = 1.0  # whatever the net says there does not make an edge
    assert depth_edge_errors(gt, pred, mask) == {"dbe_acc": 0.0, "dbe_comp": 0.0}


def test_dense_metrics_on_dense_arrays_only_and_clouds_on_request():
    gt = step(64, [30], height=48)
    k = np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
    dense = EvalSet(["a"], "hand-made", lambda i: gt.astype(np.float32), intrinsics=lambda i: k, dense_gt=True)
    sparse = EvalSet(["a"], "hand-made", lambda i: gt.astype(np.float32), intrinsics=lambda i: k)
    pred = step(64, [33], height=48)[None].astype(np.float32)
    protocol = build_protocol("kitti-eigen", crop="none")
    options = EvalOptions(protocol, pred_type="depth", median_scaling=False)
    assert "dbe_acc" not in evaluate_predictions(pred, sparse, options).metrics
    edges_only = evaluate_predictions(pred, dense, options).metrics
    assert edges_only["dbe_acc"] == pytest.approx(3.0) and "chamfer" not in edges_only
    with_clouds = evaluate_predictions(pred, dense, EvalOptions(protocol, pred_type="depth", median_scaling=False,
                                                                 cloud_metrics=True)).metrics  # fmt: skip
    expected = cloud_errors(backproject(gt, gt > 0, k), backproject(pred[0], gt > 0, k))
    assert with_clouds["chamfer"] == pytest.approx(expected["chamfer"]) and 0 < with_clouds["fscore"] < 1
    assert with_clouds["abs_rel"] == pytest.approx(compute_depth_errors(gt.ravel(), pred.ravel())["abs_rel"])


def test_synthetic_world_dense_gt_end_to_end(synthetic_kitti):
    """`--gt dense` reads the world's exact depth: predicting it exactly scores perfectly on every metric."""
    protocol = build_protocol("kitti-eigen", gt="dense")
    eval_set = open_eval_set(synthetic_kitti, synthetic_kitti / "test_files.txt", protocol)
    gts = [eval_set.load_gt(i) for i in range(len(eval_set))]
    assert all((gt > 0).mean() > 0.5 for gt in gts)  # dense: sky is the only hole
    exact = np.stack([np.where(gt > 0, gt, 1.0) for gt in gts]).astype(np.float32)
    options = EvalOptions(protocol, pred_type="depth", cloud_metrics=True)
    metrics = evaluate_predictions(exact, eval_set, options).metrics
    assert metrics["abs_rel"] == 0.0 and metrics["a1"] == 1.0 and metrics["fscore"] == 1.0
    assert metrics["chamfer"] == metrics["dbe_acc"] == metrics["dbe_comp"] == 0.0
    shifted = np.roll(exact, 4, axis=2)  # the scene 4 px to the right: edges 4 px off, points off too
    moved = evaluate_predictions(shifted, eval_set, options).metrics
    assert 0 < moved["dbe_acc"] <= 4.5 and moved["chamfer"] > 0.05 and moved["fscore"] < 0.9


def test_nyu_synthetic_rooms_report_edge_metrics(synthetic_nyu):
    eval_set = open_eval_set(synthetic_nyu, None, "nyu")
    gts = [eval_set.load_gt(i) for i in range(len(eval_set))]
    metrics = evaluate_predictions(np.stack(gts), eval_set, EvalOptions("nyu")).metrics
    assert metrics["abs_rel"] == 0.0 and metrics["dbe_acc"] == 0.0 and metrics["dbe_comp"] == 0.0
