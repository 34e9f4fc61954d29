"""Evaluation protocols: every known divergence between published KITTI / NYU evaluations is a named switch.

A `Protocol` is one full variant: where ground truth comes from, which GT pixels count, how a prediction
is brought to GT size and made metric, and which Sq Rel formula is reported. Presets (docs/evaluation.md):

- ``kitti-eigen``: monodepth2's ``evaluate_depth.py`` on the Eigen split, exactly (the numbers papers
  print): velodyne GT storing the scanner's x coordinate; the Garg crop; GT in ``(1e-3, 80)``;
  disparity resized with ``cv2.resize`` (bilinear) and then inverted; Sq Rel = mean(err² / gt);
  per-image median scaling; prediction clamped to ``[1e-3, 80]``.
- ``kitti-eigen-corrected``: the same with its two mistakes fixed: depth along the camera's optical
  axis (z), and Sq Rel = mean(err² / gt²).
- ``kitti-benchmark``: what monodepth_benchmark recommends: the improved GT of Eigen-Benchmark (652
  frames), no crop, a 100 m cap, the KITTI devkit's metrics (Sq Rel over gt², SILog, iRMSE).
- ``kitti-benchmark-legacy``: monodepth2's numbers on eigen_benchmark: improved GT, no crop, every
  ``gt > 0`` scored (GT beyond 80 m included), prediction clamped at 80 m, Sq Rel over gt.
- ``nyu``: Eigen et al.'s NYU protocol (BTS / DenseDepth code): crop rows ``[45, 471)``, cols
  ``[41, 601)`` of 480x640 (proportional elsewhere), GT in ``(1e-3, 10)``; no median scaling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from depthcli.errors import DepthcliError

PRED_TYPES = ("disp", "depth")

# Fixed scale of monodepth2's stereo-trained models (baseline 0.54 m x 10): `--scale-factor 5.4`.
STEREO_SCALE_FACTOR = 5.4

# Crops as fractions (top, bottom, left, right) of the GT size, truncated to int32 as the reference code does.
# "garg" is what monodepth2 (and most self-supervised papers) apply and call the "Eigen crop";
# "eigen" is the crop Godard et al. found to reproduce Eigen et al.'s own numbers (monodepth v1 `--eigen_crop`).
CROP_FRACTIONS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}

# NYU crop in pixels of the 480x640 labelled images: rows [45, 471), cols [41, 601).
NYU_CROP = (45, 471, 41, 601)
NYU_SIZE = (480, 640)

# The choices of every switch (the CLI lists them without importing this module; a test keeps them equal).
GT_SOURCES = ("velodyne", "improved", "dense")  # KITTI; NYU's depth maps are always "dense"
GT_DEPTHS = ("velo-x", "cam-z")
CROPS = ("garg", "eigen", "nyu", "none")
SQ_REL_FORMULAS = ("legacy", "squared")
RESIZE_MODES = ("disp-cv2", "depth-bilinear")

# Metrics a table shows first for a preset (JSON rows always hold every metric).
EIGEN_TABLE = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
DEVKIT_TABLE = ("silog", "sq_rel", "abs_rel", "irmse", "rmse", "a1")
NYU_TABLE = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "a1", "a2", "a3")


@dataclass(frozen=True)
class Protocol:
    """One complete evaluation variant. Two numbers are comparable only when their `variant()` match."""

    name: str  # the preset it came from
    dataset: str  # "kitti" or "nyu"
    gt: str  # GT_SOURCES (KITTI); "dense" for NYU
    gt_depth: str  # GT_DEPTHS: what a velodyne GT pixel stores (ignored by other GT sources)
    crop: str  # CROPS
    min_depth: float
    max_depth: float  # the cap: predictions are clamped to it
    cap_gt: bool  # also drop GT beyond the cap (False: any gt > 0 counts, as monodepth2's benchmark branch)
    sq_rel: str  # SQ_REL_FORMULAS: mean(err²/gt) or mean(err²/gt²)
    resize: str  # RESIZE_MODES: how a prediction reaches GT size
    median_scaling: bool  # default; --no-median-scaling overrides
    pred_type: str  # default meaning of external prediction arrays ("disp" or "depth")
    table: tuple[str, ...] = EIGEN_TABLE

    def valid_mask(self, gt: np.ndarray) -> np.ndarray:
        """Boolean (H,W) mask of the GT pixels this protocol scores."""
        if self.cap_gt:
            mask = (gt > self.min_depth) & (gt < self.max_depth)
        else:
            mask = gt > 0
        if self.crop != "none":
            mask &= crop_mask(gt.shape, self.crop)
        return mask

    def variant(self) -> dict:
        """Every switch by name, for JSON rows: the full statement of what was measured."""
        fields = dataclasses.asdict(self)
        fields.pop("table")
        fields["preset"] = fields.pop("name")
        if self.gt != "velodyne":
            fields["gt_depth"] = "cam-z"  # improved PNGs and dense maps are depth along the optical axis
        return fields

    def changes(self) -> dict:
        """The switches that differ from the preset this variant started from."""
        preset = PROTOCOLS.get(self.name)
        if preset is None:
            return {}
        return {key: value for key, value in self.variant().items() if preset.variant()[key] != value}

    def label(self) -> str:
        """`kitti-eigen` or `kitti-eigen [cap=100, sq_rel=squared]`: the preset and what was changed."""
        changed = self.changes()
        if not changed:
            return self.name
        return f"{self.name} [{', '.join(f'{key}={value}' for key, value in changed.items())}]"

    def describe(self) -> str:
        """One line spelling out every switch, for table titles."""
        cap = f"{self.max_depth:g} m" + ("" if self.cap_gt else " (prediction only)")
        gt = f"{self.gt} ({self.variant()['gt_depth']})" if self.dataset == "kitti" else "dense"
        return (
            f"gt {gt}, crop {self.crop}, cap {cap}, sq_rel {self.sq_rel}, resize {self.resize}, "
            f"median scaling {'on' if self.median_scaling else 'off'}"
        )


# monodepth2's evaluate_depth.py on the Eigen split; the other KITTI presets say what they change.
_EIGEN = Protocol(
    name="kitti-eigen",
    dataset="kitti",
    gt="velodyne",
    gt_depth="velo-x",
    crop="garg",
    min_depth=1e-3,
    max_depth=80.0,
    cap_gt=True,
    sq_rel="legacy",
    resize="disp-cv2",
    median_scaling=True,
    pred_type="disp",
)
_NYU = dataclasses.replace(
    _EIGEN, name="nyu", dataset="nyu", gt="dense", gt_depth="cam-z", crop="nyu", max_depth=10.0,
    median_scaling=False, pred_type="depth", table=NYU_TABLE,
)  # fmt: skip
PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        _EIGEN,
        dataclasses.replace(_EIGEN, name="kitti-eigen-corrected", gt_depth="cam-z", sq_rel="squared"),
        dataclasses.replace(
            _EIGEN,
            name="kitti-benchmark",
            gt="improved",
            gt_depth="cam-z",
            crop="none",
            max_depth=100.0,
            sq_rel="squared",
            table=DEVKIT_TABLE,
        ),  # fmt: skip
        dataclasses.replace(
            _EIGEN, name="kitti-benchmark-legacy", gt="improved", gt_depth="cam-z", crop="none", cap_gt=False
        ),
        _NYU,
    )
}


def get_protocol(name: str) -> Protocol:
    """Look a preset up by its CLI name."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise DepthcliError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def _check(value, choices: tuple, option: str) -> None:
    if value not in choices:
        raise DepthcliError(f"{option} {value!r} is not one of {', '.join(map(str, choices))}")


def build_protocol(
    preset: str | Protocol,
    *,
    gt: str | None = None,
    gt_depth: str | None = None,
    crop: str | None = None,
    cap: float | None = None,
    sq_rel: str | None = None,
    resize: str | None = None,
) -> Protocol:
    """A preset with some switches changed (None keeps the preset's value); checks every choice."""
    base = get_protocol(preset) if isinstance(preset, str) else preset
    changes = {
        key: value
        for key, value in dict(gt=gt, gt_depth=gt_depth, crop=crop, sq_rel=sq_rel, resize=resize).items()
        if value is not None
    }
    for key, choices in (
        ("gt_depth", GT_DEPTHS),
        ("crop", CROPS),
        ("sq_rel", SQ_REL_FORMULAS),
        ("resize", RESIZE_MODES),
    ):
        if key in changes:
            _check(changes[key], choices, f"--{key.replace('_', '-')}")
    if "gt" in changes:
        _check(changes["gt"], GT_SOURCES if base.dataset == "kitti" else ("dense",), "--gt")
    if cap is not None:
        if not cap > base.min_depth:
            raise DepthcliError(f"--cap {cap}: must be larger than the minimum depth {base.min_depth:g} m")
        changes["max_depth"] = float(cap)
    if changes.get("crop") == "nyu" and base.dataset != "nyu":
        raise DepthcliError("--crop nyu applies to NYU's 480x640 frames; use garg, eigen or none for KITTI")
    return dataclasses.replace(base, **changes)


def crop_box(shape: tuple[int, ...], crop: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a named crop for a GT of `shape`."""
    height, width = shape[:2]
    if crop == "nyu":
        ref_h, ref_w = NYU_SIZE
        top, bottom, left, right = NYU_CROP
        return top * height // ref_h, bottom * height // ref_h, left * width // ref_w, right * width // ref_w
    fractions = np.array(CROP_FRACTIONS[crop])
    sizes = np.array([height, height, width, width])
    top, bottom, left, right = (fractions * sizes).astype(np.int32)
    return int(top), int(bottom), int(left), int(right)


def eigen_crop(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The crop monodepth2 applies on the Eigen split (the Garg crop), truncated with int32 like it."""
    return crop_box(shape, "garg")


def nyu_crop(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The NYU crop; exact constants at 480x640, proportional otherwise."""
    return crop_box(shape, "nyu")


def crop_mask(shape: tuple[int, ...], crop: str) -> np.ndarray:
    top, bottom, left, right = crop_box(shape, crop)
    mask = np.zeros(shape[:2], dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def resize_align_corners(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with corner pixels mapped onto corner pixels (torch's `align_corners=True`).

    Written out in float64 numpy: OpenCV has no such mode, and `cv2.remap` quantises positions to 1/32 px.
    """
    image = np.asarray(image, dtype=np.float64)
    in_h, in_w = image.shape

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
        low = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, pos - low

    r0, r1, fy = axis(in_h, height)
    c0, c1, fx = axis(in_w, width)
    rows = image[r0] * (1 - fy)[:, None] + image[r1] * fy[:, None]
    return rows[:, c0] * (1 - fx) + rows[:, c1] * fx


def prediction_at_gt_size(pred: np.ndarray, shape: tuple[int, int], pred_type: str, resize: str) -> np.ndarray:
    """Predicted *depth* at GT size (H,W), float64 where resized in numpy.

    ``disp-cv2`` (monodepth2): resize the array as given with ``cv2.resize`` bilinear (half-pixel centres),
    then invert a disparity. ``depth-bilinear`` (packnet-sfm): invert a disparity at network size first,
    then resize the depth bilinearly with ``align_corners=True``.
    """
    if pred_type not in PRED_TYPES:
        raise DepthcliError(f"prediction type {pred_type!r} is not one of {', '.join(PRED_TYPES)}")
    height, width = shape
    pred = np.asarray(pred, dtype=np.float32)
    if resize == "disp-cv2":
        resized = cv2.resize(pred, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float64)
        return 1.0 / resized if pred_type == "disp" else resized
    depth = 1.0 / pred.astype(np.float64) if pred_type == "disp" else pred
    return resize_align_corners(depth, height, width)


@dataclass
class ScoredPixels:
    """What the metrics see for one image: valid GT and the final predicted depth at those pixels."""

    gt: np.ndarray  # 1-D float64 metres
    pred: np.ndarray  # 1-D float64 metres, scaled and clamped
    ratio: float | None  # median-scaling ratio median(gt)/median(pred), None when scaling is off
    mask: np.ndarray | None = None  # (H,W) bool: where `gt` and `pred` came from
    pred_map: np.ndarray | None = None  # (H,W) float64 predicted depth at GT size, scaled and clamped


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
    disparity) or a depth map, at any resolution; `protocol.resize` says how it reaches GT size.
    """
    depth = prediction_at_gt_size(pred, gt.shape[:2], pred_type, protocol.resize)
    mask = protocol.valid_mask(gt)
    if not mask.any():
        return None
    gt_valid = gt[mask].astype(np.float64)
    depth = depth * scale_factor
    ratio = None
    if median_scaling:
        ratio = float(np.median(gt_valid) / np.median(depth[mask]))
        depth *= ratio
    np.clip(depth, protocol.min_depth, protocol.max_depth, out=depth)
    return ScoredPixels(gt_valid, depth[mask], ratio, mask, depth)
