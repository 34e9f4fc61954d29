"""Edge-aware disparity smoothness (monodepth2): disparity may only change where the image changes."""

from __future__ import annotations

import torch
from torch import nn

_MEAN_EPS = 1e-7  # guards the mean-normalisation against an all-zero disparity map


class EdgeAwareSmoothness(nn.Module):
    """`mean |d_x d*| exp(-mean_c |d_x I|) + mean |d_y d*| exp(-mean_c |d_y I|)` with `d* = d / mean_HW(d)`.

    Normalising by the per-image mean disparity makes the term invariant to the global depth scale,
    which self-supervision cannot pin down (otherwise shrinking the disparity would be a shortcut).
    The module is unweighted on purpose: the trainer multiplies it by `disparity_smoothness`
    (1e-3) and divides by `2**scale` for pyramid level `scale`, as monodepth2 does.
    """

    def forward(self, disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """disp (B,1,H,W), image (B,C,H,W) at the same resolution -> scalar."""
        norm_disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + _MEAN_EPS)
        grad_disp_x = (norm_disp[..., :, 1:] - norm_disp[..., :, :-1]).abs()
        grad_disp_y = (norm_disp[..., 1:, :] - norm_disp[..., :-1, :]).abs()
        grad_image_x = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
        grad_image_y = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
        return (grad_disp_x * torch.exp(-grad_image_x)).mean() + (grad_disp_y * torch.exp(-grad_image_y)).mean()
