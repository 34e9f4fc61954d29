"""Depth error metrics (Eigen et al. 2014; silog as in BTS), computed per image on valid pixels only.

Protocols average these per-image values over images (docs/protocols.md), never over pooled pixels, so that
every image weighs the same whatever its number of valid ground-truth points.
"""

from __future__ import annotations

import numpy as np

# Order in tables, JSON and CSV. log10 and silog are standard for NYU and cheap, so always computed.
METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "log10", "silog")

# Metrics where larger is better (accuracy under threshold); all others are errors.
HIGHER_IS_BETTER: frozenset[str] = frozenset({"a1", "a2", "a3"})


def compute_depth_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All metrics for one image from the 1-D arrays of valid GT and (scaled, clamped) predicted depth.

    Both must be positive (the protocols mask GT and clamp predictions before calling this).
    Computed in float64 so that the mean over hundreds of images does not drift.
    """
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape or gt.size == 0:
        raise ValueError(f"need two non-empty arrays of equal size, got {gt.shape} and {pred.shape}")
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    log_diff = np.log(pred) - np.log(gt)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff**2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
        "log10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
        # Scale-invariant log error x100 (BTS convention); max() guards tiny negative rounding.
        "silog": float(np.sqrt(max(np.mean(log_diff**2) - np.mean(log_diff) ** 2, 0.0)) * 100.0),
    }


def mean_errors(per_image: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every metric over images (each image weighs the same)."""
    if not per_image:
        raise ValueError("no images to average")
    return {name: float(np.mean([row[name] for row in per_image])) for name in METRIC_NAMES}
