"""Depth error metrics (Eigen et al. 2014; the KITTI devkit's SILog and iRMSE), per image on valid pixels.

Protocols average these per-image values over images, never over pooled pixels, so that every image
weighs the same whatever its number of valid ground-truth points (docs/evaluation.md).
"""

from __future__ import annotations

import numpy as np

# Order in tables, JSON and CSV. log10, silog and irmse are cheap, so always computed.
METRIC_NAMES: tuple[str, ...] = (
    "abs_rel",
    "sq_rel",
    "rmse",
    "rmse_log",
    "a1",
    "a2",
    "a3",
    "log10",
    "silog",
    "irmse",
)

# Metrics where larger is better (accuracy under threshold, F-score); all others are errors.
HIGHER_IS_BETTER: frozenset[str] = frozenset({"a1", "a2", "a3", "fscore"})


def compute_depth_errors(gt: np.ndarray, pred: np.ndarray, sq_rel: str = "legacy") -> dict[str, float]:
    """All metrics for one image from the 1-D arrays of valid GT and (scaled, clamped) predicted depth.

    Both must be positive (the protocols mask GT and clamp predictions before calling this).
    `sq_rel`: "legacy" = mean(err²/gt), what the Eigen benchmark has always printed; "squared" =
    mean(err²/gt²), the relative squared error the KITTI devkit computes. Computed in float64 so that
    the mean over hundreds of images does not drift.
    """
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape or gt.size == 0:
        raise ValueError(f"need two non-empty arrays of equal size, got {gt.shape} and {pred.shape}")
    if sq_rel not in ("legacy", "squared"):
        raise ValueError(f"sq_rel formula {sq_rel!r} is not legacy or squared")
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    log_diff = np.log(pred) - np.log(gt)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / (gt if sq_rel == "legacy" else gt**2))),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff**2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
        "log10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
        # Scale-invariant log error x100 (devkit / BTS); max() guards tiny negative rounding.
        "silog": float(np.sqrt(max(np.mean(log_diff**2) - np.mean(log_diff) ** 2, 0.0)) * 100.0),
        # RMSE of inverse depth in 1/km (devkit units; depths are in metres).
        "irmse": float(np.sqrt(np.mean((1000.0 / gt - 1000.0 / pred) ** 2))),
    }


def mean_errors(per_image: list[dict[str, float]], names: tuple[str, ...] = METRIC_NAMES) -> dict[str, float]:
    """Mean of every metric over images (each image weighs the same); NaN entries (undefined) are skipped."""
    if not per_image:
        raise ValueError("no images to average")
    means = {}
    for name in names:
        values = np.array([row[name] for row in per_image if name in row], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if len(values):
            means[name] = float(np.mean(finite)) if len(finite) else float("nan")
    return means
