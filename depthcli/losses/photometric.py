"""Photometric error (SSIM + L1) and monodepth2's automasked min-reprojection (docs/methods.md).

`photometric_error` dispatches between the PyTorch reference below and the fused Triton kernel in
`depthcli.kernels.photometric_triton` (CUDA tensors, unless switched off by
`set_kernel_enabled(False)` or `DEPTHCLI_DISABLE_TRITON=1`). The reference is the definition; the
kernel is tested against it. On CPU, `compiled_reference()` (the trainer's `--compile`) runs the
reference through torch.compile instead: the same float32 maths fused into a few loops.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from depthcli.errors import DepthcliError
from depthcli.kernels import interpreter_enabled, triton_available
from depthcli.kernels.photometric_constants import KERNEL_DTYPES, L1_WEIGHT, SSIM_C1, SSIM_C2, SSIM_WEIGHT

DISABLE_ENV = "DEPTHCLI_DISABLE_TRITON"

_kernel_switch = True
_use_compiled_reference = False


class SSIM(nn.Module):
    """Per-pixel SSIM dissimilarity `clamp((1 - ssim) / 2, 0, 1)` with 3x3 means after reflection padding.

    Same shape as the (B,C,H,W) inputs; monodepth2's definition (C1 = 0.01^2, C2 = 0.03^2). Each input
    is padded once (padding commutes with the pixelwise products) and the 3x3 means are sums of shifted
    slices (`_window_mean`): 2-3x faster forward and backward on CPU than `avg_pool2d`, with the same
    forward values bit for bit.
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_pad = F.pad(x, (1, 1, 1, 1), mode="reflect")
        y_pad = F.pad(y, (1, 1, 1, 1), mode="reflect")
        mu_x = _mean3x3(x_pad)
        mu_y = _mean3x3(y_pad)
        sigma_x = _mean3x3(x_pad * x_pad) - mu_x * mu_x
        sigma_y = _mean3x3(y_pad * y_pad) - mu_y * mu_y
        sigma_xy = _mean3x3(x_pad * y_pad) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
        denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
        return torch.clamp((1 - numerator / denominator) / 2, 0, 1)


def _window_mean(padded: torch.Tensor) -> torch.Tensor:
    """Mean of every 3x3 window of a (..., H+2, W+2) tensor -> (..., H, W).

    The nine shifted slices are summed in raster order and divided by 9, as `avg_pool2d`'s CPU kernel
    does, so the result is bit-identical to it (selection by the automask's minimum hinges on the last
    bit of near-ties, and the official trainers use `avg_pool2d`); about 3x faster than it on CPU.
    """
    height, width = padded.shape[-2] - 2, padded.shape[-1] - 2
    total = padded[..., :height, :width].clone()
    for row, col in _WINDOW_OFFSETS[1:]:
        total.add_(padded[..., row : row + height, col : col + width])
    return total.div_(9.0)


_WINDOW_OFFSETS = tuple((row, col) for row in range(3) for col in range(3))


class _Mean3x3(torch.autograd.Function):
    """`_window_mean` with its transpose as the backward: every input pixel gathers a ninth of the gradient
    of each window that holds it (raster order, as `avg_pool2d`'s backward adds them). One pass over the
    gradient instead of autograd's nine slice gradients (each a zero fill and a copy)."""

    @staticmethod
    def forward(ctx, padded: torch.Tensor) -> torch.Tensor:
        return _window_mean(padded)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        ninths = F.pad(grad / 9.0, (2, 2, 2, 2))
        height, width = grad.shape[-2] + 2, grad.shape[-1] + 2
        total = ninths[..., :height, :width].clone()
        for row, col in _WINDOW_OFFSETS[1:]:
            total.add_(ninths[..., row : row + height, col : col + width])
        return total


def _mean3x3(padded: torch.Tensor) -> torch.Tensor:
    return _Mean3x3.apply(padded)


_ssim = SSIM()


def set_kernel_enabled(enabled: bool) -> None:
    """Global switch for the fused kernel under `use_kernel="auto"` (the trainer's flag maps onto it).

    `DEPTHCLI_DISABLE_TRITON=1` in the environment disables it regardless.
    """
    global _kernel_switch
    _kernel_switch = bool(enabled)


def kernel_enabled() -> bool:
    """Whether "auto" may pick the kernel at all (switch on and the environment does not veto it)."""
    return _kernel_switch and os.environ.get(DISABLE_ENV, "") != "1"


@contextlib.contextmanager
def compiled_reference(enabled: bool = True) -> Iterator[None]:
    """Within the block, CPU tensors go through the reference compiled by torch.compile.

    SSIM's ~40 elementwise passes over full-size images become a few fused loops: forward + backward
    3.3x faster on CPU (measured at 4x3x192x640). The first call per shape and autograd mode compiles
    (C++ through the system compiler): 1.5-4.5 minutes on 2 busy cores, cached on disk for later runs,
    so it pays in long trainings, not in a 10-minute demo.
    """
    global _use_compiled_reference
    before, _use_compiled_reference = _use_compiled_reference, bool(enabled)
    try:
        yield
    finally:
        _use_compiled_reference = before


@functools.cache
def _compiled_reference_fn():
    return torch.compile(reference_photometric_error, dynamic=False)


def _kernel_runs_on(tensor: torch.Tensor) -> bool:
    """The kernel can run here: triton importable and a CUDA tensor, or a CPU tensor under the interpreter."""
    if not triton_available():
        return False
    return tensor.is_cuda or (tensor.device.type == "cpu" and interpreter_enabled())


def reference_photometric_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) map `0.85 * mean_c SSIM(pred, target) + 0.15 * mean_c |pred - target|` in plain torch."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    ssim = _ssim(pred, target).mean(1, keepdim=True)
    return SSIM_WEIGHT * ssim + L1_WEIGHT * l1


def photometric_error(
    pred: torch.Tensor, target: torch.Tensor, use_kernel: bool | Literal["auto"] = "auto"
) -> torch.Tensor:
    """(B,1,H,W) photometric error of (B,C,H,W) `pred` vs `target`, differentiable w.r.t. both.

    use_kernel: "auto" picks the fused Triton kernel for CUDA float32/float16/bfloat16 tensors when
    triton is importable and `kernel_enabled()`; True forces it (CUDA, or CPU under
    `TRITON_INTERPRET=1`), raising DepthcliError where it cannot run; False forces the reference.
    """
    if use_kernel == "auto":
        from_kernel = kernel_enabled() and pred.is_cuda and triton_available() and _kernel_dtype_ok(pred, target)
    elif use_kernel is True:
        if not _kernel_runs_on(pred):
            raise DepthcliError(
                f"photometric_error(use_kernel=True): the Triton kernel cannot run on {pred.device} tensors "
                "here (needs triton and CUDA, or TRITON_INTERPRET=1 on CPU); use use_kernel='auto' or False"
            )
        if not _kernel_dtype_ok(pred, target):
            raise DepthcliError(
                f"photometric_error(use_kernel=True): dtypes {pred.dtype}/{target.dtype} unsupported by the kernel; "
                "use float32, float16 or bfloat16, or use_kernel=False"
            )
        from_kernel = True
    elif use_kernel is False:
        from_kernel = False
    else:
        raise ValueError(f"use_kernel must be 'auto', True or False, got {use_kernel!r}")
    if from_kernel:
        from depthcli.kernels.photometric_triton import fused_photometric_error

        return fused_photometric_error(pred, target)
    if _use_compiled_reference and pred.device.type == "cpu":
        return _compiled_reference_fn()(pred, target)
    return reference_photometric_error(pred, target)


def _kernel_dtype_ok(pred: torch.Tensor, target: torch.Tensor) -> bool:
    return pred.dtype == target.dtype and pred.dtype in KERNEL_DTYPES


def min_reprojection_loss(
    reprojection_errors: torch.Tensor,
    identity_errors: torch.Tensor | None,
    tie_noise: float = 1e-5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum over sources with monodepth2's automasking.

    reprojection_errors: (B,S,H,W) errors of the warped sources; identity_errors: (B,S',H,W) errors of
    the unwarped sources, or None for plain min-reprojection. N(0,1) * tie_noise is added to the
    identity errors so that exact ties (static frames) do not always favour one side.
    Returns (loss_map (B,1,H,W), identity_selected (B,1,H,W) bool: the minimum was an identity entry).
    """
    if identity_errors is None:
        loss_map = reprojection_errors.min(dim=1, keepdim=True).values
        return loss_map, torch.zeros_like(loss_map, dtype=torch.bool)
    noise = torch.randn(
        identity_errors.shape, generator=generator, device=identity_errors.device, dtype=identity_errors.dtype
    )
    candidates = torch.cat([identity_errors + noise * tie_noise, reprojection_errors], dim=1)
    loss_map, index = candidates.min(dim=1, keepdim=True)
    return loss_map, index < identity_errors.shape[1]
