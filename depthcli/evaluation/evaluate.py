"""Scoring predictions against an evaluation set: external arrays, or a model at several resolutions.

Every choice an evaluation makes lives in one `EvalOptions`: the protocol variant plus how predictions
are made (image resize, frames, flip post-processing) and scaled. Its `variant()` goes into every row.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from depthcli.errors import DepthcliError
from depthcli.evaluation.dense_metrics import dense_errors
from depthcli.evaluation.ground_truth import FRAME_FORMATS, EvalSet
from depthcli.evaluation.metrics import HIGHER_IS_BETTER, compute_depth_errors, mean_errors
from depthcli.evaluation.predictions import check_predictions
from depthcli.evaluation.protocols import PRED_TYPES, PROTOCOLS, Protocol, get_protocol, prepare_pixels
from depthcli.geometry import disp_to_depth
from depthcli.inference import IMAGE_RESIZES, images_to_batch, run_depth_net
from depthcli.sizes import format_size

ProgressCallback = Callable[[int, int], None]  # (images done, images total)


@dataclass(frozen=True)
class EvalOptions:
    """One evaluation's choices. `None` for median_scaling / pred_type means the protocol's default."""

    protocol: Protocol | str = PROTOCOLS["kitti-eigen"]
    median_scaling: bool | None = None
    scale_factor: float = 1.0
    pred_type: str | None = None  # external predictions only: "disp" or "depth"
    post_process: bool = False  # checkpoints only: monodepth2's flip averaging
    image_resize: str = "torch"  # checkpoints only: IMAGE_RESIZES
    frames: str = "auto"  # checkpoints only: FRAME_FORMATS
    batch_size: int = 4
    cloud_metrics: bool = False  # Chamfer / F-score on dense GT (seconds per image)

    def __post_init__(self) -> None:
        if isinstance(self.protocol, str):
            object.__setattr__(self, "protocol", get_protocol(self.protocol))
        if not (math.isfinite(self.scale_factor) and self.scale_factor > 0):
            raise DepthcliError(f"--scale-factor {self.scale_factor} must be a positive finite number")
        if self.pred_type is not None and self.pred_type not in PRED_TYPES:
            raise DepthcliError(f"--pred-type {self.pred_type!r} is not one of {', '.join(PRED_TYPES)}")
        if self.image_resize not in IMAGE_RESIZES:
            raise DepthcliError(f"--image-resize {self.image_resize!r} is not one of {', '.join(IMAGE_RESIZES)}")
        if self.frames not in FRAME_FORMATS:
            raise DepthcliError(f"--frames {self.frames!r} is not one of {', '.join(FRAME_FORMATS)}")
        if self.batch_size < 1:
            raise DepthcliError(f"--batch-size {self.batch_size} must be 1 or more")

    @property
    def scaling(self) -> bool:
        return self.protocol.median_scaling if self.median_scaling is None else self.median_scaling

    @property
    def kind(self) -> str:
        return self.protocol.pred_type if self.pred_type is None else self.pred_type

    def variant(self, eval_set: EvalSet, from_model: bool) -> dict:
        """The protocol's switches plus this run's own, as JSON rows state them."""
        variant = self.protocol.variant() | {"median_scaling": self.scaling, "scale_factor": self.scale_factor}
        if eval_set.gt_source.startswith("gt_depths.npz"):
            variant |= {"gt": "gt_depths.npz", "gt_depth": "as exported"}
        if from_model:
            variant |= {"image_resize": self.image_resize, "frames": eval_set.frames_label(),
                        "post_process": self.post_process}  # fmt: skip
        else:
            variant["pred_type"] = self.kind
        return variant


@dataclass
class EvalResult:
    """Mean metrics over images for one resolution, with the per-image rows they came from."""

    resolution: str  # "640x192" (network input), or the predictions' "WxH"
    protocol: str  # the variant's label: preset [changed switches]
    metrics: dict[str, float]  # mean over images of every metric computed
    per_image: list[dict] = field(default_factory=list)  # {"index", "name", metrics..., "ratio"?}
    median_ratio: float | None = None  # median of the per-image median-scaling ratios
    median_ratio_std: float | None = None  # std of ratios / median_ratio (monodepth2's spread)
    variant: dict = field(default_factory=dict)  # every switch (EvalOptions.variant)
    split: str = ""
    gt_source: str = ""

    @property
    def n_images(self) -> int:
        return len(self.per_image)

    def summary(self) -> dict:
        """The JSON object of `depthcli eval --json`: resolution, metrics, n_images, ratios, the full variant."""
        row: dict = {"resolution": self.resolution, **self.metrics, "n_images": self.n_images}
        if self.median_ratio is not None:
            row["median_ratio"] = self.median_ratio
            row["median_ratio_std"] = self.median_ratio_std
        row |= {"protocol": self.protocol, "variant": self.variant, "split": self.split, "gt": self.gt_source}
        return row

    def ranked(self, metric: str = "abs_rel") -> list[dict]:
        """Per-image rows from best to worst by `metric`."""
        reverse = metric in HIGHER_IS_BETTER
        return sorted(self.per_image, key=lambda row: row[metric], reverse=reverse)


class _Accumulator:
    """Per-image errors and ratios of one resolution, turned into an EvalResult at the end."""

    def __init__(self, resolution: str, options: EvalOptions, eval_set: EvalSet, from_model: bool) -> None:
        self.resolution, self.options, self.eval_set, self.from_model = resolution, options, eval_set, from_model
        self.dense = eval_set.dense_gt
        self.rows: list[dict] = []
        self.ratios: list[float] = []

    def add(self, index: int, gt: np.ndarray, pred: np.ndarray, pred_type: str) -> None:
        options, protocol = self.options, self.options.protocol
        pixels = prepare_pixels(gt, pred, protocol, pred_type, options.scaling, options.scale_factor)
        name = self.eval_set.names[index]
        if pixels is None:
            raise DepthcliError(
                f"{self.eval_set.source}: image {index} ({name}) has no ground-truth pixel valid under the "
                f"{protocol.label()} protocol; remove it from the split"
            )
        row = {"index": index, "name": name, **compute_depth_errors(pixels.gt, pixels.pred, protocol.sq_rel)}
        if self.dense:
            intrinsics = self.eval_set.intrinsics(index) if self.eval_set.intrinsics else None
            row |= dense_errors(gt, pixels.pred_map, pixels.mask, intrinsics, options.cloud_metrics)
        if pixels.ratio is not None:
            row["ratio"] = pixels.ratio
            self.ratios.append(pixels.ratio)
        self.rows.append(row)

    def result(self) -> EvalResult:
        if not self.rows:
            raise DepthcliError(f"{self.eval_set.source} has no images to evaluate")
        median = std = None
        if self.ratios:
            ratios = np.asarray(self.ratios)
            median = float(np.median(ratios))
            std = float(np.std(ratios / median))
        names = tuple(key for key in self.rows[0] if key not in ("index", "name", "ratio"))
        return EvalResult(
            self.resolution,
            self.options.protocol.label(),
            mean_errors(self.rows, names),
            self.rows,
            median,
            std,
            self.options.variant(self.eval_set, self.from_model),
            self.eval_set.source,
            self.eval_set.gt_source,
        )


def evaluate_predictions(
    preds: np.ndarray | Sequence[np.ndarray],
    eval_set: EvalSet | Sequence[np.ndarray],
    options: EvalOptions | None = None,
    source: str = "predictions",
    progress: ProgressCallback | None = None,
) -> EvalResult:
    """Score external predictions, one per image of `eval_set` in its order.

    `preds` (N,h,w) or a sequence of (h,w): disparities (`pred_type="disp"`: any positive quantity
    proportional to 1/depth, such as the scaled disparities monodepth2 and `depthcli predict` save) or
    metric depths (`"depth"`). `eval_set`: an EvalSet or a list of (H,W) GT depth maps in metres
    (0 = invalid). `source` names the predictions in errors.
    """
    options = options or EvalOptions()
    if not isinstance(eval_set, EvalSet):
        eval_set = EvalSet.from_arrays(eval_set)
    if isinstance(preds, np.ndarray):
        preds = check_predictions(preds, len(eval_set), source, eval_set.source)
    elif len(preds) != len(eval_set):
        raise DepthcliError(f"{source}: {len(preds)} predictions for {len(eval_set)} images of {eval_set.source}")
    height, width = np.shape(preds[0])[-2:] if len(preds) else (0, 0)
    accumulator = _Accumulator(format_size((width, height)), options, eval_set, from_model=False)
    for index in range(len(eval_set)):
        pred = np.asarray(preds[index], dtype=np.float32)
        if not np.all(np.isfinite(pred)) or pred.min() <= 0:
            raise DepthcliError(
                f"{source}: image {index} ({eval_set.names[index]}) has non-finite or non-positive values; "
                f"{options.kind} predictions must be > 0"
            )
        accumulator.add(index, eval_set.load_gt(index), pred, options.kind)
        if progress:
            progress(index + 1, len(eval_set))
    return accumulator.result()


def evaluate_model(
    model: nn.Module,
    eval_set: EvalSet,
    resolutions: Sequence[tuple[int, int]],
    min_depth: float,
    max_depth: float,
    options: EvalOptions | None = None,
    progress: ProgressCallback | None = None,
) -> list[EvalResult]:
    """Run `model` on every image at each resolution (W,H) and score the output at GT size.

    One pass over the data serves all resolutions, so GT and images are loaded once. The net's sigmoid
    disparity becomes monodepth2's scaled disparity via `disp_to_depth(min_depth, max_depth)` and is
    then scored like an external disparity. Returns one EvalResult per resolution, in the given order.
    """
    options = dataclasses.replace(options or EvalOptions(), pred_type="disp")
    if eval_set.load_image is None:
        raise DepthcliError(f"{eval_set.source} has no images; evaluating a model needs the RGB frames")
    if not resolutions:
        raise DepthcliError("no resolutions to evaluate; give e.g. --resolutions 640x192")
    model.eval()
    accumulators = [_Accumulator(format_size(size), options, eval_set, from_model=True) for size in resolutions]
    total, batch_size = len(eval_set), options.batch_size
    for start in range(0, total, batch_size):
        indices = range(start, min(start + batch_size, total))
        images = [eval_set.load_image(i) for i in indices]
        gts = [eval_set.load_gt(i) for i in indices]
        for size, accumulator in zip(resolutions, accumulators, strict=True):
            batch = images_to_batch(images, size, options.image_resize)
            disp = run_depth_net(model, batch, size, post_process=options.post_process)
            scaled_disp, _ = disp_to_depth(disp, min_depth, max_depth)
            scaled_disp = scaled_disp[:, 0].cpu().numpy()
            for offset, index in enumerate(indices):
                accumulator.add(index, gts[offset], scaled_disp[offset], "disp")
        if progress:
            progress(indices[-1] + 1, total)
    return [accumulator.result() for accumulator in accumulators]
