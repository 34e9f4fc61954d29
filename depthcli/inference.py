"""Running a depth net on images: resize to the network resolution, optional flip post-processing.

Shared by `depthcli eval`, `sweep` and `predict`, so that every command sees the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from depthcli.data.images import resize_rgb_lanczos
from depthcli.errors import out_of_memory_as_error

# How frames reach the network size: "torch" = bilinear with antialiasing on the float tensor (the default);
# "pil-lanczos" = PIL's Lanczos on the uint8 image, then /255, as monodepth2's test_simple.py and its
# evaluation loader (torchvision Resize with ANTIALIAS) do, so that released weights reproduce their outputs.
IMAGE_RESIZES = ("torch", "pil-lanczos")


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (B,3,H,W) batch to `size` = (W,H).

    Bilinear with `align_corners=False` and antialiasing, so that shrinking averages like an area filter
    (close to the PIL resampling the training loaders use) and enlarging interpolates; a no-op at size.
    """
    width, height = size
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def flip_ramp_weights(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """monodepth2's post-processing ramp: weight of the *flipped* prediction, (H,W).

    1 on the leftmost 5 % of columns, falling linearly to 0 at 10 %, where the plain prediction is
    unreliable (disocclusion at the left border); the mirrored ramp weighs the plain prediction.
    """
    columns = torch.linspace(0.0, 1.0, width, device=device, dtype=torch.float64)
    ramp = 1.0 - torch.clamp(20.0 * (columns - 0.05), 0.0, 1.0)
    return ramp.expand(height, width).float()


def post_process_disparity(disp: torch.Tensor, disp_flipped: torch.Tensor) -> torch.Tensor:
    """Blend a prediction with the prediction of the mirrored image (already flipped back).

    Edges come from whichever of the two saw them un-occluded; the middle is their mean.
    """
    height, width = disp.shape[-2:]
    flipped_weight = flip_ramp_weights(height, width, disp.device)
    plain_weight = torch.flip(flipped_weight, dims=[-1])
    mean = 0.5 * (disp + disp_flipped)
    return plain_weight * disp + flipped_weight * disp_flipped + (1.0 - flipped_weight - plain_weight) * mean


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (CPU for a parameter-less module)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


@torch.no_grad()
def run_depth_net(
    model: nn.Module,
    images: torch.Tensor,
    size: tuple[int, int],
    post_process: bool = False,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Sigmoid disparity ``("disp", 0)`` of `model` for `images` at network size `size` = (W,H).

    `images`: (B,3,H,W) float in [0,1] at any resolution; they are resized to `size` and moved to the
    model's device. Returns (B,1,h,w) float32 at `size` on the model's device. `post_process` adds
    monodepth2's flip averaging (two forward passes). `batch_size` splits large inputs into chunks.
    The model must already be in eval mode (`load_depth_model` returns it so).
    """
    device = model_device(model)
    chunk = batch_size or max(len(images), 1)
    outputs = []
    what = f"run the depth net on {min(chunk, len(images))} image(s) at {size[0]}x{size[1]} on {device}"
    with out_of_memory_as_error(what, "use a smaller size or batch size"):
        for start in range(0, len(images), chunk):
            batch = resize_images(images[start : start + chunk].to(device, torch.float32), size)
            if post_process:
                both = model(torch.cat([batch, torch.flip(batch, dims=[-1])]))[("disp", 0)].float()
                disp, disp_flipped = both.split(len(batch))
                outputs.append(post_process_disparity(disp, torch.flip(disp_flipped, dims=[-1])))
            else:
                outputs.append(model(batch)[("disp", 0)].float())
    return torch.cat(outputs)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 RGB -> float32 (3,H,W) in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def images_to_batch(images: Sequence[np.ndarray], size: tuple[int, int], mode: str = "torch") -> torch.Tensor:
    """uint8 HxWx3 RGB frames of any sizes -> one (B,3,h,w) float batch at network `size` = (W,H).

    Resized one by one (KITTI drives differ by a few pixels, so full-size frames do not stack).
    """
    if mode == "pil-lanczos":
        return torch.stack([image_to_tensor(resize_rgb_lanczos(image, size)) for image in images])
    return torch.cat([resize_images(image_to_tensor(image)[None], size) for image in images])
