"""Supervised depth losses for fine-tuning on ground truth (NYU): L1, scale-invariant log, SSIM, gradient.

Ground truth is metric depth with 0 marking invalid pixels (docs/architecture.md); every loss here
averages over valid pixels only, and returns a graph-connected zero when a batch has none.
Predictions and ground truth must have the same shape (the trainer resizes first).

`SupervisedDepthLoss` combines them with DenseDepth's weights (Alhashim & Wonka 2018:
`0.1 * L1 + 1 * gradient + 1 * SSIM`); the scale-invariant log term (BTS: variance focus 0.85, x10)
is available with weight 0 by default.
"""

from __future__ import annotations

import torch
from torch import nn

from depthcli.geometry import depth_to_disp
from depthcli.losses.photometric import SSIM


def _valid(gt: torch.Tensor) -> torch.Tensor:
    return gt > 0


def _check_shapes(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ; resize first")


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` where `mask`; a zero that keeps the graph when nothing is valid."""
    if not mask.any():
        return (values * 0).sum()
    return values[mask].mean()


class MaskedL1Loss(nn.Module):
    """Mean |pred - gt| over pixels with gt > 0 (metres)."""

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes(pred, gt)
        return _masked_mean((pred - gt).abs(), _valid(gt))


class ScaleInvariantLogLoss(nn.Module):
    """Eigen et al.'s scale-invariant log error as BTS trains with it.

    With `d = log(pred) - log(gt)` over the valid pixels of the batch:
    `scale * sqrt(mean(d^2) - variance_focus * mean(d)^2)`. `variance_focus = 1` is fully scale
    invariant; BTS uses 0.85 and `scale = 10`.
    """

    def __init__(self, variance_focus: float = 0.85, scale: float = 10.0, eps: float = 1e-12) -> None:
        super().__init__()
        self.variance_focus = variance_focus
        self.scale = scale
        self.eps = eps  # keeps sqrt differentiable when pred == gt exactly

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes(pred, gt)
        mask = _valid(gt) & (pred > 0)
        if not mask.any():
            return (pred * 0).sum()
        d = torch.log(pred[mask]) - torch.log(gt[mask])
        variance = (d**2).mean() - self.variance_focus * d.mean() ** 2
        return self.scale * torch.sqrt(variance.clamp(min=self.eps))


class InverseDepthSSIMLoss(nn.Module):
    """Mean SSIM dissimilarity `clamp((1 - ssim)/2, 0, 1)` between predicted and GT *inverse* depth.

    Both depths are mapped with `depth_to_disp(., min_depth, max_depth)` to [0, 1] (the networks'
    sigmoid-disparity space), where SSIM's constants C1, C2 are meant to work. Invalid GT pixels are
    set to 0 in both maps before filtering and left out of the mean.
    """

    def __init__(self, min_depth: float = 0.1, max_depth: float = 10.0) -> None:
        super().__init__()
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.ssim = SSIM()

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes(pred, gt)
        mask = _valid(gt)
        lo, hi = self.min_depth, self.max_depth
        pred_disp = depth_to_disp(pred.clamp(lo, hi), lo, hi) * mask
        gt_disp = depth_to_disp(gt.clamp(lo, hi), lo, hi) * mask
        return _masked_mean(self.ssim(pred_disp, gt_disp), mask)


class DepthGradientLoss(nn.Module):
    """DenseDepth's edge term: mean |d_x pred - d_x gt| + mean |d_y pred - d_y gt| over valid pixel pairs."""

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes(pred, gt)
        valid = _valid(gt)
        diff = pred - gt
        valid_x = valid[..., :, 1:] & valid[..., :, :-1]
        valid_y = valid[..., 1:, :] & valid[..., :-1, :]
        grad_x = (diff[..., :, 1:] - diff[..., :, :-1]).abs()
        grad_y = (diff[..., 1:, :] - diff[..., :-1, :]).abs()
        return _masked_mean(grad_x, valid_x) + _masked_mean(grad_y, valid_y)


class SupervisedDepthLoss(nn.Module):
    """Weighted sum of the terms above; defaults are DenseDepth's (0.1 L1 + gradient + SSIM, no silog)."""

    def __init__(
        self,
        l1_weight: float = 0.1,
        gradient_weight: float = 1.0,
        ssim_weight: float = 1.0,
        silog_weight: float = 0.0,
        min_depth: float = 0.1,
        max_depth: float = 10.0,
    ) -> None:
        super().__init__()
        self.weights = {"l1": l1_weight, "gradient": gradient_weight, "ssim": ssim_weight, "silog": silog_weight}
        self.terms = nn.ModuleDict(
            {
                "l1": MaskedL1Loss(),
                "gradient": DepthGradientLoss(),
                "ssim": InverseDepthSSIMLoss(min_depth, max_depth),
                "silog": ScaleInvariantLogLoss(),
            }
        )

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {"loss": weighted total, "<term>": unweighted value of each term with weight != 0}."""
        out: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(())
        for name, weight in self.weights.items():
            if weight == 0:
                continue
            value = self.terms[name](pred, gt)
            out[name] = value
            total = total + weight * value
        out["loss"] = total
        return out
