"""RA-Depth's arbitrary-scale augmentation as a transform on one sample dict (docs/methods.md, docs/parity.md).

The sample's own images are the *middle* variant (plain resize, the only one with colour jitter).
This adds, for every frame `f`, un-jittered *high* and *low* variants of the same size h x w:

- high: resize by s_H ~ U[1.1, 2.0] to `(W_H, H_H) = (int(w s_H), int(h s_H))`, then crop h x w at a
  random offset `(x_H, y_H)` (one offset for all frames of the sample);
- low: resize by s_L ~ U[0.7, 0.9] to `(W_L, H_L)`, paste top-left, and fill the rest by splicing the
  image's own last `h - H_L` rows and `w - W_L` columns (RA-Depth's filling).

Resizes use Pillow's LANCZOS on the uint8 frames, as RA-Depth's dataset does (`Image.ANTIALIAS`), so
that given the same draws the variants equal the official ones exactly. They start from the middle
frame (the training cache holds frames at the training size), where the official loader starts
from the full-size KITTI frame.

Keys added (beside the middle variant's `("color", f, 0)`, `("color_aug", f, 0)`, `("K", 0)`):
`("color", f, v)` for v in ("high", "low"), `("K", v)`, `("inv_K", v)` (pixel intrinsics of that image,
crop included), `("size", "high")` = (W_H, H_H), `("offset", "high")` = (x_H, y_H), `("size", "low")` =
(W_L, H_L), as float tensors (2,) - what `depthcli.losses.consistency.CrossScaleConsistency` takes.
Random draws use torch's global RNG (the trainer seeds it per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from depthcli.data.augment import as_float_image
from depthcli.data.images import resize_rgb_lanczos
from depthcli.geometry import crop_intrinsics, scale_intrinsics

VARIANTS = ("high", "low")


@dataclass(frozen=True)
class ScaleDraw:
    """The random choices of one sample: high-variant size and crop offset, low-variant size (all pixels)."""

    high_size: tuple[int, int]  # (W_H, H_H) before cropping
    high_offset: tuple[int, int]  # (x_H, y_H) of the crop in the resized image
    low_size: tuple[int, int]  # (W_L, H_L) of the image pasted top-left


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(3,H,W) uint8, or float in [0,1] holding uint8 levels -> (3,h,w) at `size` (width, height), Pillow
    LANCZOS, in the input's dtype (training caches hand frames over as uint8: no conversion then)."""
    pixels = image if image.dtype == torch.uint8 else (image * 255.0).round().clamp(0, 255).to(torch.uint8)
    resized = resize_rgb_lanczos(np.ascontiguousarray(pixels.permute(1, 2, 0).numpy()), size)
    resized = torch.from_numpy(resized.copy()).permute(2, 0, 1).contiguous()
    return resized if image.dtype == torch.uint8 else as_float_image(resized)


def splice_fill(pasted: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Place `pasted` (C,h',w') top-left on an (C,height,width) canvas; fill the rest with its own edge bands.

    Rows below repeat the pasted image's last `height - h'` rows, columns to the right its last
    `width - w'` columns, the corner its bottom-right block (needs h' >= height/2, w' >= width/2).
    """
    _, pasted_h, pasted_w = pasted.shape
    fill_h, fill_w = height - pasted_h, width - pasted_w
    if fill_h > pasted_h or fill_w > pasted_w:
        raise ValueError("splice_fill needs the pasted image to cover at least half of each side")
    canvas = pasted.new_empty(pasted.shape[0], height, width)
    canvas[:, :pasted_h, :pasted_w] = pasted
    canvas[:, pasted_h:, :pasted_w] = pasted[:, pasted_h - fill_h :, :]
    canvas[:, :pasted_h, pasted_w:] = pasted[:, :, pasted_w - fill_w :]
    canvas[:, pasted_h:, pasted_w:] = pasted[:, pasted_h - fill_h :, pasted_w - fill_w :]
    return canvas


class ArbitraryScaleAugment:
    """Callable `sample -> sample` adding RA-Depth's high and low variants (see the module docstring)."""

    def __init__(
        self,
        frame_ids: tuple[int, ...] = (0, -1, 1),
        high_range: tuple[float, float] = (1.1, 2.0),
        low_range: tuple[float, float] = (0.7, 0.9),
    ) -> None:
        if not (1.0 <= high_range[0] <= high_range[1]) or not (0.5 <= low_range[0] <= low_range[1] <= 1.0):
            raise ValueError(f"scale ranges high {high_range} (>= 1) and low {low_range} (0.5..1) are invalid")
        self.frame_ids, self.high_range, self.low_range = tuple(frame_ids), high_range, low_range

    def draw(self, width: int, height: int) -> ScaleDraw:
        """RA-Depth's draws in its order: s_H, x_H, y_H, s_L (sizes truncated to pixels, as it does)."""
        high_scale = _uniform(*self.high_range)
        high_w, high_h = int(width * high_scale), int(height * high_scale)
        offset_x = int((high_w - width) * float(torch.rand(())))
        offset_y = int((high_h - height) * float(torch.rand(())))
        low_scale = _uniform(*self.low_range)
        return ScaleDraw((high_w, high_h), (offset_x, offset_y), (int(width * low_scale), int(height * low_scale)))

    def __call__(self, sample: dict) -> dict:
        _, height, width = sample[("color", self.frame_ids[0], 0)].shape
        return self.apply(sample, self.draw(width, height))

    def apply(self, sample: dict, draw: ScaleDraw) -> dict:
        """Add the high and low variants that `draw` describes to `sample` (in place; returned)."""
        _, height, width = sample[("color", self.frame_ids[0], 0)].shape
        (high_w, high_h), (offset_x, offset_y), (low_w, low_h) = draw.high_size, draw.high_offset, draw.low_size
        for frame in self.frame_ids:
            color = sample[("color", frame, 0)]
            high = _resize(color, (high_w, high_h))
            sample[("color", frame, "high")] = high[:, offset_y : offset_y + height, offset_x : offset_x + width]
            sample[("color", frame, "low")] = splice_fill(_resize(color, (low_w, low_h)), height, width)

        K = sample[("K", 0)]
        K_high = crop_intrinsics(scale_intrinsics(K, high_w / width, high_h / height), offset_x, offset_y)
        K_low = scale_intrinsics(K, low_w / width, low_h / height)
        for variant, K_variant in (("high", K_high), ("low", K_low)):
            sample[("K", variant)] = K_variant
            sample[("inv_K", variant)] = torch.linalg.inv(K_variant)
        sample[("size", "high")] = torch.tensor([high_w, high_h], dtype=torch.float32)
        sample[("offset", "high")] = torch.tensor([offset_x, offset_y], dtype=torch.float32)
        sample[("size", "low")] = torch.tensor([low_w, low_h], dtype=torch.float32)
        return sample
