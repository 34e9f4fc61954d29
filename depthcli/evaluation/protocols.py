"""Evaluation protocols: which GT pixels count, how predictions become metric depth (docs/protocols.md).

Every step follows the published evaluation code so that numbers are comparable with papers:

- ``kitti-eigen`` (monodepth2 ``evaluate_depth.py``, eigen split): GT from velodyne; prediction resized to
  the GT size with ``cv2.resize`` (bilinear); disparity -> depth = 1/disp; valid = ``1e-3 < gt < 80``
  inside the Garg/Eigen crop rows ``[0.40810811 H, 0.99189189 H)``, cols ``[0.03594771 W, 0.96405229 W)``
  (bounds truncated to int32); depth x scale factor; per-image median scaling (mono, default on);
  prediction clamped to ``[1e-3, 80]``.
- ``kitti-benchmark`` (monodepth2's eigen_benchmark): GT from the improved 16-bit PNGs (value/256,
  0 = invalid); valid = ``gt > 0`` and **no crop**, exactly as monodepth2 does; same scaling and clamp.
- ``nyu`` (Eigen et al., as in BTS / DenseDepth evaluation): valid = ``1e-3 < gt < 10`` inside the crop
  rows ``[45, 471)``, cols ``[41, 601)`` of a 480x640 image (scaled proportionally for other GT sizes);
  prediction clamped to ``[1e-3, 10]``. Supervised NYU results are published without median scaling,
  so it is off by default (turn it on for self-supervised models); predictions default to metric depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depthcli.errors import DepthcliError

PRED_TYPES = ("disp", "depth")

# Fixed scale of monodepth2's stereo-trained models (baseline 0.54 m x 10): `--scale-factor 5.4`.
STEREO_SCALE_FACTOR = 5.4

# Garg/Eigen crop as fractions of the GT size (monodepth2's constants).
EIGEN_CROP_FRACTIONS = (0.40810811, 0.99189189, 0.03594771, 0.96405229)

# NYU crop in pixels of the 480x640 labelled images: rows [45, 471), cols [41, 601).
NYU_CROP = (45, 471, 41, 601)
NYU_SIZE = (480, 640)


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: depth range, crop and the defaults papers use with it."""

    name: str
    min_depth: float
    max_depth: float
    median_scaling: bool  # default; the CLI's --no-median-scaling overrides
    pred_type: str  # default meaning of external prediction arrays ("disp" or "depth")
    crop: str  # "eigen", "nyu" or "none"
    depth_range_mask: bool  # False: any gt > 0 is valid (kitti-benchmark, as monodepth2)

    def valid_mask(self, gt: np.ndarray) -> np.ndarray:
        """Boolean (H,W) mask of the GT pixels this protocol scores."""
        if self.depth_range_mask:
            mask = (gt > self.min_depth) & (gt < self.max_depth)
        else:
            mask = gt > 0
        if self.crop == "eigen":
            mask &= _crop_mask(gt.shape, eigen_crop(gt.shape))
        elif self.crop == "nyu":
            mask &= _crop_mask(gt.shape, nyu_crop(gt.shape))
        return mask


PROTOCOLS: dict[str, Protocol] = {
    "kitti-eigen": Protocol("kitti-eigen", 1e-3, 80.0, True, "disp", "eigen", True),
    "kitti-benchmark": Protocol("kitti-benchmark", 1e-3, 80.0, True, "disp", "none", False),
    "nyu": Protocol("nyu", 1e-3, 10.0, False, "depth", "nyu", True),
}


def get_protocol(name: str) -> Protocol:
    """Look a protocol up by its CLI name."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise DepthcliError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def eigen_crop(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the Eigen crop, truncated with int32 like monodepth2."""
    height, width = shape[:2]
    fractions = np.array(EIGEN_CROP_FRACTIONS)
    sizes = np.array([height, height, width, width])
    top, bottom, left, right = (fractions * sizes).astype(np.int32)
    return int(top), int(bottom), int(left), int(right)


def nyu_crop(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the NYU crop; exact constants at 480x640, proportional otherwise."""
    height, width = shape[:2]
    ref_h, ref_w = NYU_SIZE
    top, bottom, left, right = NYU_CROP
    return top * height // ref_h, bottom * height // ref_h, left * width // ref_w, right * width // ref_w


def _crop_mask(shape: tuple[int, ...], crop: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = crop
    mask = np.zeros(shape[:2], dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


@dataclass
class ScoredPixels:
    """What the metrics see for one image: valid GT and the final predicted depth at those pixels."""

    gt: np.ndarray  # 1-D float64 metres
    pred: np.ndarray  # 1-D float64 metres, scaled and clamped
    ratio: float | None  # median-scaling ratio median(gt)/median(pred), None when scaling is off


def prepare_pixels(
    gt: np.ndarray,
    pred: np.ndarray,
    protocol: Protocol,
    pred_type: str,
    median_scaling: bool,
    scale_factor: float = 1.0,
) -> ScoredPixels | None:
    """Apply the protocol to one image: resize, invert, mask, scale, clamp. None if no GT pixel is valid.

    `pred` is a disparity (any positive quantity proportional to 1/depth, e.g. monodepth2's scaled
    disparity) or a depth map, at any resolution: it is resized to the GT size with cv2 bilinear
    interpolation *before* inversion, as monodepth2 does.
    """
    if pred_type not in PRED_TYPES:
        raise DepthcliError(f"prediction type {pred_type!r} is not one of {', '.join(PRED_TYPES)}")
    gt_h, gt_w = gt.shape[:2]
    resized = cv2.resize(np.asarray(pred, dtype=np.float32), (gt_w, gt_h), interpolation=cv2.INTER_LINEAR)
    mask = protocol.valid_mask(gt)
    if not mask.any():
        return None
    values = resized[mask].astype(np.float64)
    pred_depth = 1.0 / values if pred_type == "disp" else values
    gt_valid = gt[mask].astype(np.float64)
    pred_depth *= scale_factor
    ratio = None
    if median_scaling:
        ratio = float(np.median(gt_valid) / np.median(pred_depth))
        pred_depth *= ratio
    np.clip(pred_depth, protocol.min_depth, protocol.max_depth, out=pred_depth)
    return ScoredPixels(gt_valid, pred_depth, ratio)
