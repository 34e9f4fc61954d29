"""RA-Depth cross-scale consistency: one scene seen at three scales must get one depth map.

RA-Depth (He et al., ECCV 2022) feeds three versions of each frame: *middle* (plain resize to h x w),
*high* (resized to `(W_H, H_H)` with `s_H = W_H / w` in [1.1, 2], then cropped back to h x w at offset
`(x_H, y_H)`) and *low* (resized to `(W_L, H_L)` with `s_L` in [0.7, 0.9] and pasted top-left, the rest
filled). This loss maps the high and low disparities into middle-image coordinates and compares them
with the middle disparity using the photometric error (SSIM + L1 via `photometric_error`), as the
released RA-Depth trainer does:

- high: the crop covers the middle-image box starting at `round(w * x_H / W_H), round(h * y_H / H_H)`
  with size `round(w * w / W_H) x round(h * h / H_H)`; the whole high disparity map is resized (bilinear,
  `align_corners=False`) to that box and compared with the middle disparity inside it.
- low: its top-left `H_L x W_L` block shows the whole middle image; that block is resized to h x w
  and compared with the whole middle disparity.

Disparities are compared as they are, without rescaling by the scale factor: a resized image shows the
same scene at the same metric depth (its intrinsics scale with it), which is exactly the scale
consistency RA-Depth asks of the network. Pixels where the middle frame's automask chose an identity
(unwarped) source are left out; each sample's error is the masked mean, the loss is the mean over the
batch of the high and the low term summed (RA-Depth's weight is 1; the trainer applies any other).

`low_mask="batch"` reproduces a slip of the released trainer: its low term weighs every sample's error
map with the automask of the *whole batch* (the masks summed over the batch, normalised by their total)
instead of the sample's own. For a batch of one both agree; the default is the sample's own mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depthcli.losses.photometric import photometric_error

LOW_MASKS = ("sample", "batch")  # whose automask weighs the low term: the sample's own, or the whole batch's
_MASK_EPS = 1e-7


def _masked_error(middle: torch.Tensor, mapped: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean photometric error of (1,1,h,w) disparity maps weighted by `keep` (1,1,h,w; 1 = use the pixel)."""
    error = photometric_error(middle, mapped)
    return (error * keep).sum() / (keep.sum() + _MASK_EPS)


class CrossScaleConsistency(nn.Module):
    """High->middle plus low->middle disparity consistency (see the module docstring for the mapping)."""

    def __init__(self, low_mask: str = "sample") -> None:
        super().__init__()
        if low_mask not in LOW_MASKS:
            raise ValueError(f"low_mask must be one of {LOW_MASKS}, got {low_mask!r}")
        self.low_mask = low_mask

    def high_term(
        self, disp_middle: torch.Tensor, disp_high: torch.Tensor, high_size, high_offset, keep: torch.Tensor
    ) -> torch.Tensor:
        """Mean over the batch of the high->middle error; sizes/offsets are (B,2) (width, height) / (x, y)."""
        _, _, height, width = disp_middle.shape
        total = disp_middle.new_zeros(())
        for i in range(disp_middle.shape[0]):
            resized_w, resized_h = (int(v) for v in high_size[i])
            offset_x, offset_y = (int(v) for v in high_offset[i])
            x0 = round(width * offset_x / resized_w)
            y0 = round(height * offset_y / resized_h)
            box_w = round(width * width / resized_w)
            box_h = round(height * height / resized_h)
            mapped = F.interpolate(disp_high[i : i + 1], size=(box_h, box_w), mode="bilinear", align_corners=False)
            # rounding may push the box one pixel past the frame: keep the part inside it
            box_w, box_h = min(box_w, width - x0), min(box_h, height - y0)
            region = (slice(i, i + 1), slice(None), slice(y0, y0 + box_h), slice(x0, x0 + box_w))
            total = total + _masked_error(disp_middle[region], mapped[..., :box_h, :box_w], keep[region])
        return total / disp_middle.shape[0]

    def low_term(self, disp_middle: torch.Tensor, disp_low: torch.Tensor, low_size, keep: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the low->middle error; `low_size` is (B,2) (width, height) of the pasted image."""
        _, _, height, width = disp_middle.shape
        total = disp_middle.new_zeros(())
        for i in range(disp_middle.shape[0]):
            pasted_w, pasted_h = (int(v) for v in low_size[i])
            block = disp_low[i : i + 1, :, :pasted_h, :pasted_w]
            mapped = F.interpolate(block, size=(height, width), mode="bilinear", align_corners=False)
            weight = keep.sum(0, keepdim=True) if self.low_mask == "batch" else keep[i : i + 1]
            total = total + _masked_error(disp_middle[i : i + 1], mapped, weight)
        return total / disp_middle.shape[0]

    def forward(
        self,
        disp_middle: torch.Tensor,
        disp_high: torch.Tensor,
        high_size,
        high_offset,
        disp_low: torch.Tensor,
        low_size,
        identity_selected: torch.Tensor,
    ) -> torch.Tensor:
        """All disparities (B,1,h,w); `identity_selected` (B,1,h,w) bool from the middle frame's automask.

        high_size: (B,2) (W_H, H_H) of the resized high image before cropping; high_offset: (B,2) crop
        offset (x, y) in it; low_size: (B,2) (W_L, H_L) of the resized low image pasted top-left.
        Returns a scalar: high term + low term.
        """
        keep = (~identity_selected).to(disp_middle.dtype)
        high = self.high_term(disp_middle, disp_high, high_size, high_offset, keep)
        low = self.low_term(disp_middle, disp_low, low_size, keep)
        return high + low
