"""Metrics that need dense ground truth: point-cloud distances and depth-boundary errors.

- Point clouds (Örnek et al. 2022, as monodepth_benchmark reports them): GT and prediction are
  back-projected through the intrinsics at the scored pixels; `chamfer` is the mean distance from each
  predicted point to its nearest GT point plus the mean distance from each GT point to its nearest
  predicted point (metres); `fscore` is the harmonic mean of precision (predicted points within 10 cm
  of a GT point) and recall (GT points within 10 cm of a predicted point), as a fraction.
- Depth boundaries (iBims-1, Koch et al. 2018): edges are found with Canny (Gaussian σ = √2, Sobel
  gradients, thresholds 0.15 / 0.30) on each depth map scaled to [0, 1]. iBims-1 annotates its true edges
  by hand; here they come from the true depth with the same detector. As the iBims-1 evaluation script
  computes them, with a 10 px window: `dbe_acc` is the mean distance (pixels) from each predicted edge
  within 10 px of a true edge to the nearest true edge; `dbe_comp` is a truncated, symmetric chamfer
  distance: every predicted edge's distance to the nearest true edge and every true edge's distance to the
  nearest predicted edge, each capped at 10 px, summed and divided by the number of predicted plus true
  edges, so it never exceeds 10. Without any predicted edge within 10 px of a true edge both are 10 px;
  without any true edge they are undefined (NaN, left out of the mean).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

CLOUD_METRICS = ("chamfer", "fscore")
EDGE_METRICS = ("dbe_acc", "dbe_comp")
FSCORE_THRESHOLD_M = 0.1
EDGE_WINDOW_PX = 10.0
CANNY_SIGMA = np.sqrt(2.0)
CANNY_THRESHOLDS = (0.15, 0.30)


def backproject(depth: np.ndarray, mask: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N,3) camera points of the `mask` pixels: pixel centres at integer (u, v), depth along z."""
    rows, cols = np.nonzero(mask)
    z = depth[rows, cols].astype(np.float64)
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    return np.stack([(cols - cx) * z / fx, (rows - cy) * z / fy, z], axis=1)


def cloud_errors(gt_points: np.ndarray, pred_points: np.ndarray, threshold: float = FSCORE_THRESHOLD_M) -> dict:
    """Chamfer distance and F-score between two point sets (see the module docstring)."""
    pred_to_gt = cKDTree(gt_points).query(pred_points)[0]
    gt_to_pred = cKDTree(pred_points).query(gt_points)[0]
    precision = float(np.mean(pred_to_gt < threshold))
    recall = float(np.mean(gt_to_pred < threshold))
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"chamfer": float(pred_to_gt.mean() + gt_to_pred.mean()), "fscore": fscore}


def canny_edges(depth: np.ndarray, sigma: float = CANNY_SIGMA, thresholds: tuple = CANNY_THRESHOLDS) -> np.ndarray:
    """Boolean edge map of a depth map scaled to [0, 1]: smoothing, Sobel, non-maximum suppression, hysteresis.

    The Sobel gradients are unnormalised (scipy's, as skimage's Canny uses), so the thresholds mean what
    they mean in the iBims-1 evaluation script.
    """
    image = np.asarray(depth, dtype=np.float64)
    span = image.max() - image.min()
    if span <= 0:
        return np.zeros(image.shape, dtype=bool)
    smoothed = ndimage.gaussian_filter((image - image.min()) / span, sigma, mode="nearest")
    gx = ndimage.sobel(smoothed, axis=1, mode="nearest")
    gy = ndimage.sobel(smoothed, axis=0, mode="nearest")
    magnitude = np.hypot(gx, gy)
    # Gradient direction quantised to 0, 45, 90, 135 degrees; each compares with its two neighbours along it.
    angle = np.mod(np.rad2deg(np.arctan2(gy, gx)), 180.0)
    sector = (np.round(angle / 45.0).astype(np.int64)) % 4
    padded = np.pad(magnitude, 1)
    height, width = magnitude.shape
    local_max = np.zeros(magnitude.shape, dtype=bool)
    for index, (dr, dc) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width]
        behind = padded[1 - dr : 1 - dr + height, 1 - dc : 1 - dc + width]
        # strict on one side, so that a plateau of two equal maxima keeps one pixel, not both
        local_max |= (sector == index) & (magnitude > behind) & (magnitude >= ahead)
    low, high = thresholds
    weak = local_max & (magnitude >= low)
    labels, count = ndimage.label(weak, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return weak
    strong_labels = np.unique(labels[local_max & (magnitude >= high)])
    return np.isin(labels, strong_labels[strong_labels > 0])


def edge_errors(gt_edges: np.ndarray, pred_edges: np.ndarray, window: float = EDGE_WINDOW_PX) -> dict:
    """iBims-1 depth-boundary accuracy and completeness from two edge maps (module docstring)."""
    if not gt_edges.any():
        return {"dbe_acc": float("nan"), "dbe_comp": float("nan")}
    to_gt = ndimage.distance_transform_edt(~gt_edges)
    near = pred_edges & (to_gt < window)
    if not near.any():
        return {"dbe_acc": window, "dbe_comp": window}
    to_pred = ndimage.distance_transform_edt(~pred_edges)
    capped_sum = np.minimum(to_gt[pred_edges], window).sum() + np.minimum(to_pred[gt_edges], window).sum()
    completeness = capped_sum / (pred_edges.sum() + gt_edges.sum())
    return {"dbe_acc": float(to_gt[near].mean()), "dbe_comp": float(completeness)}


def depth_edge_errors(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict:
    """Edges of GT and prediction inside the bounding box of the scored pixels, then `edge_errors`.

    Unscored pixels inside the box (holes, sky) take each map's farthest scored depth, in both maps alike,
    so that a boundary against the sky is an edge in both and a prediction equal to the GT scores 0.
    """
    rows, cols = np.nonzero(mask)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    inside = mask[box]
    gt_box = np.where(inside, gt[box], gt[mask].max())
    pred_box = np.where(inside, pred[box], pred[mask].max())
    return edge_errors(canny_edges(gt_box), canny_edges(pred_box))


def dense_errors(
    gt: np.ndarray, pred_map: np.ndarray, mask: np.ndarray, intrinsics: np.ndarray | None, clouds: bool
) -> dict:
    """Edge metrics always; point-cloud metrics when asked (they cost seconds per image) and K is known."""
    errors = depth_edge_errors(gt, pred_map, mask)
    if clouds and intrinsics is not None:
        errors.update(cloud_errors(backproject(gt, mask, intrinsics), backproject(pred_map, mask, intrinsics)))
    return errors
