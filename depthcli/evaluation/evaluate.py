"""Scoring predictions against an evaluation set: external arrays, or a model at several resolutions."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from depthcli.atomic import atomic_write_text
from depthcli.errors import DepthcliError
from depthcli.evaluation.ground_truth import EvalSet
from depthcli.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES, compute_depth_errors, mean_errors
from depthcli.evaluation.protocols import PRED_TYPES, Protocol, get_protocol, prepare_pixels
from depthcli.geometry import disp_to_depth
from depthcli.inference import image_to_tensor, resize_images, run_depth_net
from depthcli.paths import check_input_file
from depthcli.sizes import format_size

# Keys of every JSON row besides the metrics; KITTI rows omit log10/silog (not part of that protocol).
KITTI_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
NYU_METRICS = (*KITTI_METRICS, "log10")

ProgressCallback = Callable[[int, int], None]  # (images done, images total)


@dataclass
class EvalResult:
    """Mean metrics over images for one resolution, with the per-image rows they came from."""

    resolution: str  # "640x192" (network input), or the predictions' "WxH"
    protocol: str
    metrics: dict[str, float]  # mean over images of every METRIC_NAMES entry
    per_image: list[dict] = field(default_factory=list)  # {"index", "name", metrics..., "ratio"?}
    median_ratio: float | None = None  # median of the per-image median-scaling ratios
    median_ratio_std: float | None = None  # std of ratios / median_ratio (monodepth2's spread)

    @property
    def n_images(self) -> int:
        return len(self.per_image)

    def summary(self) -> dict:
        """The JSON object of `depthcli eval --json`: resolution, the protocol's metrics, n_images, ratios."""
        names = NYU_METRICS if self.protocol == "nyu" else KITTI_METRICS
        row: dict = {"resolution": self.resolution, **{name: self.metrics[name] for name in names}}
        row["n_images"] = self.n_images
        if self.median_ratio is not None:
            row["median_ratio"] = self.median_ratio
            row["median_ratio_std"] = self.median_ratio_std
        return row

    def ranked(self, metric: str = "abs_rel") -> list[dict]:
        """Per-image rows from best to worst by `metric`."""
        reverse = metric in HIGHER_IS_BETTER
        return sorted(self.per_image, key=lambda row: row[metric], reverse=reverse)


class _Accumulator:
    """Per-image errors and ratios of one resolution, turned into an EvalResult at the end."""

    def __init__(self, resolution: str, protocol: Protocol, eval_set: EvalSet) -> None:
        self.resolution, self.protocol, self.eval_set = resolution, protocol, eval_set
        self.rows: list[dict] = []
        self.ratios: list[float] = []

    def add(
        self, index: int, gt: np.ndarray, pred: np.ndarray, pred_type: str, median_scaling: bool, scale: float
    ) -> None:
        pixels = prepare_pixels(gt, pred, self.protocol, pred_type, median_scaling, scale)
        name = self.eval_set.names[index]
        if pixels is None:
            raise DepthcliError(
                f"{self.eval_set.source}: image {index} ({name}) has no ground-truth pixel valid under the "
                f"{self.protocol.name} protocol; remove it from the split"
            )
        row = {"index": index, "name": name, **compute_depth_errors(pixels.gt, pixels.pred)}
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
        return EvalResult(self.resolution, self.protocol.name, mean_errors(self.rows), self.rows, median, std)


def _resolve(protocol: str | Protocol, pred_type: str | None, median_scaling: bool | None) -> tuple:
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    pred_type = protocol.pred_type if pred_type is None else pred_type
    if pred_type not in PRED_TYPES:
        raise DepthcliError(f"--pred-type {pred_type!r} is not one of {', '.join(PRED_TYPES)}")
    return protocol, pred_type, protocol.median_scaling if median_scaling is None else median_scaling


def load_predictions(path: str | os.PathLike) -> np.ndarray:
    """An (N,h,w) or (N,1,h,w) float array from a .npy file (memory-mapped: predictions can be GBs)."""
    path = check_input_file(path, "predictions file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:2] != b"PK" and magic != b"\x93NUMPY":  # .npz archives are zip files, handled below
        raise DepthcliError(f"predictions file {path} is not a .npy file (no NPY header); save it with np.save")
    try:
        preds = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file (click would print "Aborted!")
        raise DepthcliError(
            f"predictions file {path} is not a readable .npy array ({exc}); save it with np.save"
        ) from None
    if not isinstance(preds, np.ndarray):
        raise DepthcliError(f"predictions file {path} holds several arrays; save one (N,H,W) array with np.save")
    return preds


def check_predictions(preds: np.ndarray, expected_count: int, source: str, split: str) -> np.ndarray:
    """Validate the shape and count of external predictions; returns them as (N,h,w)."""
    if preds.ndim == 4 and preds.shape[1] == 1:
        preds = preds[:, 0]
    real = preds.dtype.kind in "iuf"  # not complex, bool, strings or records
    if preds.ndim != 3 or min(preds.shape[1:], default=0) < 1 or not real:
        raise DepthcliError(
            f"predictions {source} have shape {preds.shape} ({preds.dtype}); expected a real-valued (N,H,W) array "
            f"with N = {expected_count} images of {split}"
        )
    if len(preds) != expected_count:
        raise DepthcliError(
            f"predictions {source} hold {len(preds)} images but split {split} has {expected_count}; "
            "predict the split's images in split order"
        )
    return preds


def evaluate_predictions(
    preds: np.ndarray | Sequence[np.ndarray],
    eval_set: EvalSet | Sequence[np.ndarray],
    protocol: str | Protocol = "kitti-eigen",
    pred_type: str | None = None,
    median_scaling: bool | None = None,
    scale_factor: float = 1.0,
    source: str = "predictions",
    progress: ProgressCallback | None = None,
) -> EvalResult:
    """Score external predictions, one per image of `eval_set` in its order.

    `preds` (N,h,w): disparities (`pred_type="disp"`, any positive quantity proportional to 1/depth, such
    as the scaled disparities monodepth2 saves with --save_pred_disps) or metric depths (`"depth"`).
    `eval_set`: an EvalSet or a list of (H,W) GT depth maps in metres (0 = invalid).
    `None` for pred_type / median_scaling means the protocol's default. `source` names the array in errors.
    """
    if not isinstance(eval_set, EvalSet):
        eval_set = EvalSet.from_arrays(eval_set)
    protocol, pred_type, median_scaling = _resolve(protocol, pred_type, median_scaling)
    if isinstance(preds, np.ndarray):
        preds = check_predictions(preds, len(eval_set), source, eval_set.source)
    elif len(preds) != len(eval_set):
        raise DepthcliError(f"{source}: {len(preds)} predictions for {len(eval_set)} images of {eval_set.source}")
    height, width = np.shape(preds[0])[-2:] if len(preds) else (0, 0)
    accumulator = _Accumulator(format_size((width, height)), protocol, eval_set)
    for index in range(len(eval_set)):
        pred = np.asarray(preds[index], dtype=np.float32)
        if not np.all(np.isfinite(pred)) or pred.min() <= 0:
            raise DepthcliError(
                f"{source}: image {index} ({eval_set.names[index]}) has non-finite or non-positive values; "
                f"{pred_type} predictions must be > 0"
            )
        accumulator.add(index, eval_set.load_gt(index), pred, pred_type, median_scaling, scale_factor)
        if progress:
            progress(index + 1, len(eval_set))
    return accumulator.result()


def evaluate_model(
    model: nn.Module,
    eval_set: EvalSet,
    resolutions: Sequence[tuple[int, int]],
    min_depth: float,
    max_depth: float,
    protocol: str | Protocol = "kitti-eigen",
    median_scaling: bool | None = None,
    scale_factor: float = 1.0,
    post_process: bool = False,
    batch_size: int = 4,
    progress: ProgressCallback | None = None,
) -> list[EvalResult]:
    """Run `model` on every image at each resolution (W,H) and score the output at GT size.

    One pass over the data serves all resolutions, so GT and images are loaded once. The net's sigmoid
    disparity becomes monodepth2's scaled disparity via `disp_to_depth(min_depth, max_depth)` and is
    then scored like an external disparity. Returns one EvalResult per resolution, in the given order.
    """
    if eval_set.load_image is None:
        raise DepthcliError(f"{eval_set.source} has no images; evaluating a model needs the RGB frames")
    if not resolutions:
        raise DepthcliError("no resolutions to evaluate; give e.g. --resolutions 640x192")
    protocol, _, median_scaling = _resolve(protocol, "disp", median_scaling)
    model.eval()
    accumulators = [_Accumulator(format_size(size), protocol, eval_set) for size in resolutions]
    total = len(eval_set)
    for start in range(0, total, batch_size):
        indices = range(start, min(start + batch_size, total))
        images = [image_to_tensor(eval_set.load_image(i)).unsqueeze(0) for i in indices]
        gts = [eval_set.load_gt(i) for i in indices]
        for size, accumulator in zip(resolutions, accumulators, strict=True):
            # Resize one by one: KITTI drives differ by a few pixels, so full-size frames do not stack.
            batch = torch.cat([resize_images(image, size) for image in images])
            disp = run_depth_net(model, batch, size, post_process=post_process)
            scaled_disp, _ = disp_to_depth(disp, min_depth, max_depth)
            scaled_disp = scaled_disp[:, 0].cpu().numpy()
            for offset, index in enumerate(indices):
                accumulator.add(index, gts[offset], scaled_disp[offset], "disp", median_scaling, scale_factor)
        if progress:
            progress(indices[-1] + 1, total)
    return [accumulator.result() for accumulator in accumulators]


def write_results_json(results: Sequence[EvalResult], path: str | os.PathLike) -> Path:
    """`--json`: a list of `EvalResult.summary()` objects, one per resolution (atomic write)."""
    text = json.dumps([result.summary() for result in results], indent=2) + "\n"
    atomic_write_text(path, text)
    return Path(path)


def write_per_image_csv(results: Sequence[EvalResult], path: str | os.PathLike) -> Path:
    """`--per-image`: one row per (resolution, image) with every metric and the median-scaling ratio."""
    columns = ["resolution", "index", "name", *METRIC_NAMES, "ratio"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for result in results:
        for row in result.per_image:
            writer.writerow({"resolution": result.resolution, **row})
    atomic_write_text(path, buffer.getvalue())
    return Path(path)
