"""Monodepth2's training augmentation: horizontal flip and colour jitter, identical for every frame.

Photometric losses compare frames of one sample, so a flip or a jitter must hit all of them the same
way; the un-jittered images stay under ("color", f, 0) because the losses are computed on those.
Randomness comes from a `torch.Generator` (or torch's global RNG, which DataLoader seeds per worker).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

# monodepth2: ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1), each with p=0.5.
JITTER_STRENGTH = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.1}
_GREY_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class JitterParams:
    """Multiplicative factors for brightness/contrast/saturation and a hue shift in turns (fraction of 360°)."""

    brightness: float
    contrast: float
    saturation: float
    hue: float


def sample_jitter_params(generator: torch.Generator | None = None) -> JitterParams:
    """Factors uniform in [1-s, 1+s] (s = 0.2) and hue uniform in [-0.1, 0.1]."""
    u = torch.rand(4, generator=generator, dtype=torch.float64)
    spread = lambda name, x: 1.0 + JITTER_STRENGTH[name] * (2.0 * float(x) - 1.0)  # noqa: E731
    return JitterParams(
        brightness=spread("brightness", u[0]),
        contrast=spread("contrast", u[1]),
        saturation=spread("saturation", u[2]),
        hue=JITTER_STRENGTH["hue"] * (2.0 * float(u[3]) - 1.0),
    )


def _grey(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_GREY_WEIGHTS, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(dim=0, keepdim=True)


def _blend(image: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)


def shift_hue(image: torch.Tensor, hue: float) -> torch.Tensor:
    """Rotate the hue of a (3,H,W) [0,1] image by `hue` turns, keeping saturation and value.

    Done by OpenCV's float HSV conversion (hue in degrees): one C++ pass instead of a dozen
    elementwise torch ops, which matters inside DataLoader workers.
    """
    if hue == 0.0:
        return image
    hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.float32)
    hsv = cv2.cvtColor(hwc, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * hue, 360.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).clamp_(0.0, 1.0).contiguous()


def apply_jitter(image: torch.Tensor, params: JitterParams) -> torch.Tensor:
    """Brightness, contrast (towards the image's mean grey), saturation (towards its grey), then hue."""
    image = (image * params.brightness).clamp(0.0, 1.0)
    image = _blend(image, _grey(image).mean(), params.contrast)
    image = _blend(image, _grey(image), params.saturation)
    return shift_hue(image, params.hue)


def flip_sample(sample: dict) -> dict:
    """Mirror every image and depth map left-right; in pixels the principal point becomes cx' = (W-1) - cx."""
    flipped = dict(sample)
    width = None
    for key, value in sample.items():
        is_image = isinstance(key, tuple) and key[0] in ("color", "color_aug")
        if is_image or key == "depth_gt":
            flipped[key] = torch.flip(value, dims=[-1])
            if is_image:
                width = value.shape[-1]
    if ("K", 0) in sample and width is not None:
        K = sample[("K", 0)].clone()
        K[0, 2] = (width - 1) - K[0, 2]
        flipped[("K", 0)] = K
        flipped[("inv_K", 0)] = torch.linalg.inv(K)
    return flipped


def as_float_image(image: torch.Tensor) -> torch.Tensor:
    """A uint8 image as float in [0, 1]; float images pass through."""
    return image.float().div_(255.0) if image.dtype == torch.uint8 else image


def like_input(result: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """`result` (float in [0, 1]) back in `original`'s dtype: uint8 images are rounded, as 8-bit image
    libraries (and the reference projects' PIL pipelines) store augmented images."""
    if original.dtype == torch.uint8:
        return result.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return result


def augment_sample(
    sample: dict, generator: torch.Generator | None = None, flip_prob: float = 0.5, jitter_prob: float = 0.5
) -> dict:
    """Random flip (all frames) and random colour jitter into ("color_aug", f, 0) (same parameters per frame)."""
    draws = torch.rand(2, generator=generator)
    if draws[0] < flip_prob:
        sample = flip_sample(sample)
    params = sample_jitter_params(generator) if draws[1] < jitter_prob else None
    augmented = dict(sample)
    for key, value in sample.items():
        if isinstance(key, tuple) and key[0] == "color":
            augmented[("color_aug", *key[1:])] = (
                like_input(apply_jitter(as_float_image(value), params), value) if params else value
            )
    return augmented
