"""Validation during training: a depth predictor scored with an evaluation protocol, per image, then averaged.

Both depth recipes validate this way (self-supervised: median-scaled disparities under the KITTI
protocol; supervised: metric depth under the NYU protocol); only the predictor and the protocol differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from depthcli.evaluation.metrics import compute_depth_errors, mean_errors
from depthcli.evaluation.protocols import get_protocol, prepare_pixels


@torch.no_grad()
def protocol_metrics(
    batches: Iterable[dict],
    predict: Callable[[Tensor], Tensor],
    size: tuple[int, int],
    protocol_name: str,
    pred_type: str,
    median_scaling: bool,
) -> dict[str, float]:
    """Mean per-image metrics of `predict` over batches that carry "depth_gt" ({} when they carry none).

    Each batch's images are resized to `size` (width, height) for `predict`, which returns (B,1,h,w)
    disparities or depths (`pred_type`); the protocol resizes them to the ground truth and masks it.
    """
    protocol, rows = get_protocol(protocol_name), []
    width, height = size
    for batch in batches:
        if "depth_gt" not in batch:
            return {}
        images = batch[("color", 0, 0)]
        if images.shape[-2:] != (height, width):
            images = F.interpolate(images, (height, width), mode="bilinear", align_corners=False, antialias=True)
        predictions = predict(images)
        for gt, pred in zip(batch["depth_gt"][:, 0].cpu().numpy(), predictions[:, 0].cpu().numpy(), strict=True):
            pixels = prepare_pixels(gt, pred, protocol, pred_type, median_scaling=median_scaling)
            if pixels is not None:
                rows.append(compute_depth_errors(pixels.gt, pixels.pred))
    return mean_errors(rows) if rows else {}
