"""Fused Triton kernel for the photometric error map (0.85 * SSIM term + 0.15 * L1, channel mean).

Why fused: the PyTorch reference launches ~20 elementwise/pooling kernels and keeps about a dozen
full-size intermediates alive for backward. Here one forward pass reads pred/target once per pixel
(3x3 neighbourhood, reflection padding resolved by index arithmetic) and writes only the (B,1,H,W)
map; backward saves nothing but the two inputs. It runs in two passes: (1) recompute the 3x3
moments and write d loss / d moment (four float32 planes, transient), (2) gather those through the
transposed filter into d pred, d target. The split costs 4 input-sized buffers during backward only,
and reads each neighbourhood once instead of recomputing 9 moment windows per pixel.

Backward of a 3x3 mean filter after reflection padding is the transposed operator: per axis, input
index q receives from output index p = q + e (e in -1, 0, 1, p inside the image) with weight 1, plus
an extra 1 where p's reflected tap also lands on q: p = 0 -> q = 1 and p = size-1 -> q = size-2.
The 2-D weight is the product of the two axis weights, divided by 9.

The reference is `depthcli.losses.photometric.photometric_error(..., use_kernel=False)`; this module
must match it to float32 rounding (forward and gradients), including torch's clamp convention
(gradient passes where the value equals a bound) and abs' zero gradient at 0.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from depthcli.kernels.photometric_constants import KERNEL_DTYPES, L1_WEIGHT, SSIM_C1, SSIM_C2, SSIM_WEIGHT

_FORWARD_BLOCK = 256
_BACKWARD_BLOCK = 256


@triton.jit
def _reflect(index, size):
    """Reflection padding by one pixel (torch's ReflectionPad2d): -1 -> 1, size -> size - 2."""
    index = tl.where(index < 0, -index, index)
    return tl.where(index >= size, 2 * size - 2 - index, index)


@triton.jit
def _moments(x_ptr, y_ptr, base, row, col, H, W, mask, BLOCK: tl.constexpr):
    """3x3 means of x, y, x*x, y*y, x*y centred on (row, col), reflection-padded, in float32."""
    mean_x = tl.zeros([BLOCK], dtype=tl.float32)
    mean_y = tl.zeros([BLOCK], dtype=tl.float32)
    mean_xx = tl.zeros([BLOCK], dtype=tl.float32)
    mean_yy = tl.zeros([BLOCK], dtype=tl.float32)
    mean_xy = tl.zeros([BLOCK], dtype=tl.float32)
    for dr in tl.static_range(3):
        tap_row = _reflect(row + (dr - 1), H)
        for dc in tl.static_range(3):
            offset = base + tap_row * W + _reflect(col + (dc - 1), W)
            x = tl.load(x_ptr + offset, mask=mask, other=0.0).to(tl.float32)
            y = tl.load(y_ptr + offset, mask=mask, other=0.0).to(tl.float32)
            mean_x += x
            mean_y += y
            mean_xx += x * x
            mean_yy += y * y
            mean_xy += x * y
    ninth = 1.0 / 9.0
    return mean_x * ninth, mean_y * ninth, mean_xx * ninth, mean_yy * ninth, mean_xy * ninth


@triton.jit
def _ssim_factors(mean_x, mean_y, mean_xx, mean_yy, mean_xy, C1: tl.constexpr, C2: tl.constexpr):
    """The four factors of SSIM = (num_a * num_b) / (den_a * den_b), as the reference computes them."""
    sigma_x = mean_xx - mean_x * mean_x
    sigma_y = mean_yy - mean_y * mean_y
    sigma_xy = mean_xy - mean_x * mean_y
    num_a = 2 * mean_x * mean_y + C1
    num_b = 2 * sigma_xy + C2
    den_a = mean_x * mean_x + mean_y * mean_y + C1
    den_b = sigma_x + sigma_y + C2
    return num_a, num_b, den_a, den_b


@triton.jit
def _pixel_block(n_pixels, H, W, BLOCK: tl.constexpr):
    """This program's BLOCK output pixels: flat index, in-range mask, batch, index within the image, row, col."""
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    within = pix % (H * W)
    return pix, pix < n_pixels, pix // (H * W), within, within // W, within % W


@triton.jit
def _photometric_forward_kernel(
    x_ptr,
    y_ptr,
    out_ptr,
    n_pixels,
    C,
    H,
    W,
    C1: tl.constexpr,
    C2: tl.constexpr,
    SSIM_W: tl.constexpr,
    L1_W: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pix, mask, batch, within, row, col = _pixel_block(n_pixels, H, W, BLOCK)
    hw = H * W
    ssim_sum = tl.zeros([BLOCK], dtype=tl.float32)
    l1_sum = tl.zeros([BLOCK], dtype=tl.float32)
    for channel in range(C):
        base = (batch * C + channel) * hw
        mean_x, mean_y, mean_xx, mean_yy, mean_xy = _moments(x_ptr, y_ptr, base, row, col, H, W, mask, BLOCK)
        num_a, num_b, den_a, den_b = _ssim_factors(mean_x, mean_y, mean_xx, mean_yy, mean_xy, C1, C2)
        ssim = (num_a * num_b) / (den_a * den_b)
        ssim_sum += tl.minimum(tl.maximum((1 - ssim) * 0.5, 0.0), 1.0)
        x = tl.load(x_ptr + base + within, mask=mask, other=0.0).to(tl.float32)
        y = tl.load(y_ptr + base + within, mask=mask, other=0.0).to(tl.float32)
        l1_sum += tl.abs(x - y)
    error = (SSIM_W * ssim_sum + L1_W * l1_sum) / C
    tl.store(out_ptr + pix, error.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _axis_adjoint_weight(out_index, in_index, size):
    """Weight of output index `out_index` in the transposed reflect-padded 3-tap mean along one axis.

    0 outside the image, 2 where the reflected tap doubles up (0 -> 1, size-1 -> size-2), else 1.
    """
    inside = (out_index >= 0) & (out_index < size)
    doubled = ((out_index == 0) & (in_index == 1)) | ((out_index == size - 1) & (in_index == size - 2))
    return tl.where(inside, tl.where(doubled, 2.0, 1.0), 0.0)


@triton.jit
def _moment_grads_kernel(
    x_ptr,
    y_ptr,
    grad_out_ptr,
    moment_grads_ptr,
    n_pixels,
    C,
    H,
    W,
    C1: tl.constexpr,
    C2: tl.constexpr,
    SSIM_W: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Backward stage 1: d loss / d (mean_x, mean_y, mean_xx (= mean_yy), mean_xy) at every pixel.

    Writes four float32 planes of the input's size: moment_grads[k, b, c, h, w].
    """
    pix, mask, batch, within, row, col = _pixel_block(n_pixels, H, W, BLOCK)
    hw = H * W
    plane = n_pixels * C
    grad_map = tl.load(grad_out_ptr + pix, mask=mask, other=0.0).to(tl.float32)
    for channel in range(C):
        base = (batch * C + channel) * hw
        mean_x, mean_y, mean_xx, mean_yy, mean_xy = _moments(x_ptr, y_ptr, base, row, col, H, W, mask, BLOCK)
        num_a, num_b, den_a, den_b = _ssim_factors(mean_x, mean_y, mean_xx, mean_yy, mean_xy, C1, C2)
        den = den_a * den_b
        ssim = (num_a * num_b) / den
        raw = (1 - ssim) * 0.5
        # d error / d ssim, zero where the clamp was active (the bounds themselves pass, as in torch).
        g = tl.where((raw >= 0.0) & (raw <= 1.0), grad_map * (-0.5 * SSIM_W / C), 0.0)
        d_num_a = num_b / den
        d_num_b = num_a / den
        d_den_a = -ssim / den_a
        d_den_b = -ssim / den_b
        g_mean_x = g * (2 * mean_y * (d_num_a - d_num_b) + 2 * mean_x * (d_den_a - d_den_b))
        g_mean_y = g * (2 * mean_x * (d_num_a - d_num_b) + 2 * mean_y * (d_den_a - d_den_b))
        offset = base + within
        tl.store(moment_grads_ptr + offset, g_mean_x, mask=mask)
        tl.store(moment_grads_ptr + plane + offset, g_mean_y, mask=mask)
        tl.store(moment_grads_ptr + 2 * plane + offset, g * d_den_b, mask=mask)
        tl.store(moment_grads_ptr + 3 * plane + offset, g * 2 * d_num_b, mask=mask)


@triton.jit
def _input_grads_kernel(
    x_ptr,
    y_ptr,
    grad_out_ptr,
    moment_grads_ptr,
    grad_x_ptr,
    grad_y_ptr,
    n_pixels,
    C,
    H,
    W,
    L1_W: tl.constexpr,
    NEED_GRAD_X: tl.constexpr,
    NEED_GRAD_Y: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Backward stage 2: push the moment gradients through the transposed 3x3 mean, add the L1 term.

    With A^T the adjoint of the padded mean filter: dx = A^T[g_mx] + 2x A^T[g_mxx] + y A^T[g_mxy],
    dy = A^T[g_my] + 2y A^T[g_mxx] + x A^T[g_mxy].
    """
    pix, mask, batch, within, row, col = _pixel_block(n_pixels, H, W, BLOCK)
    hw = H * W
    plane = n_pixels * C
    grad_map = tl.load(grad_out_ptr + pix, mask=mask, other=0.0).to(tl.float32)
    for channel in range(C):
        base = (batch * C + channel) * hw
        sum_mx = tl.zeros([BLOCK], dtype=tl.float32)
        sum_my = tl.zeros([BLOCK], dtype=tl.float32)
        sum_mxx = tl.zeros([BLOCK], dtype=tl.float32)
        sum_mxy = tl.zeros([BLOCK], dtype=tl.float32)
        for er in tl.static_range(3):
            out_row = row + (er - 1)
            weight_row = _axis_adjoint_weight(out_row, row, H)
            for ec in tl.static_range(3):
                out_col = col + (ec - 1)
                weight = weight_row * _axis_adjoint_weight(out_col, col, W)
                used = mask & (weight > 0)
                offset = base + out_row * W + out_col
                sum_mx += weight * tl.load(moment_grads_ptr + offset, mask=used, other=0.0)
                sum_my += weight * tl.load(moment_grads_ptr + plane + offset, mask=used, other=0.0)
                sum_mxx += weight * tl.load(moment_grads_ptr + 2 * plane + offset, mask=used, other=0.0)
                sum_mxy += weight * tl.load(moment_grads_ptr + 3 * plane + offset, mask=used, other=0.0)
        x = tl.load(x_ptr + base + within, mask=mask, other=0.0).to(tl.float32)
        y = tl.load(y_ptr + base + within, mask=mask, other=0.0).to(tl.float32)
        # L1 term: d|x - y|/dx = sign(x - y), 0 at x == y (torch's abs convention).
        grad_l1 = grad_map * (L1_W / C) * tl.where(x > y, 1.0, tl.where(x < y, -1.0, 0.0))
        ninth = 1.0 / 9.0
        if NEED_GRAD_X:
            grad_x = grad_l1 + (sum_mx + 2 * x * sum_mxx + y * sum_mxy) * ninth
            tl.store(grad_x_ptr + base + within, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
        if NEED_GRAD_Y:
            grad_y = -grad_l1 + (sum_my + 2 * y * sum_mxx + x * sum_mxy) * ninth
            tl.store(grad_y_ptr + base + within, grad_y.to(grad_y_ptr.dtype.element_ty), mask=mask)


def _launch_args(pred: torch.Tensor) -> tuple[int, int, int, int]:
    batch, channels, height, width = pred.shape
    return batch * height * width, channels, height, width


class _FusedPhotometricError(torch.autograd.Function):
    """Autograd wrapper: saves only pred and target, recomputes moments in backward."""

    @staticmethod
    def forward(ctx, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n_pixels, channels, height, width = _launch_args(pred)
        out = torch.empty((pred.shape[0], 1, height, width), dtype=pred.dtype, device=pred.device)
        grid = (triton.cdiv(n_pixels, _FORWARD_BLOCK),)
        _photometric_forward_kernel[grid](
            pred, target, out, n_pixels, channels, height, width,
            SSIM_C1, SSIM_C2, SSIM_WEIGHT, L1_WEIGHT, BLOCK=_FORWARD_BLOCK,
        )  # fmt: skip
        ctx.save_for_backward(pred, target)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        pred, target = ctx.saved_tensors
        need_grad_pred, need_grad_target = ctx.needs_input_grad[:2]
        n_pixels, channels, height, width = _launch_args(pred)
        grad_pred = torch.empty_like(pred) if need_grad_pred else None
        grad_target = torch.empty_like(target) if need_grad_target else None
        grad_out = grad_out.contiguous()
        # Transient, freed on return: 4 float32 planes of the input's size (never kept across steps).
        moment_grads = torch.empty((4, *pred.shape), dtype=torch.float32, device=pred.device)
        grid = (triton.cdiv(n_pixels, _BACKWARD_BLOCK),)
        _moment_grads_kernel[grid](
            pred, target, grad_out, moment_grads, n_pixels, channels, height, width,
            SSIM_C1, SSIM_C2, SSIM_WEIGHT, BLOCK=_BACKWARD_BLOCK,
        )  # fmt: skip
        _input_grads_kernel[grid](
            pred, target, grad_out, moment_grads,
            grad_pred if need_grad_pred else pred, grad_target if need_grad_target else target,
            n_pixels, channels, height, width, L1_WEIGHT,
            NEED_GRAD_X=need_grad_pred, NEED_GRAD_Y=need_grad_target, BLOCK=_BACKWARD_BLOCK,
        )  # fmt: skip
        return grad_pred, grad_target


def fused_photometric_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) photometric error of (B,C,H,W) pred vs target, differentiable w.r.t. both.

    Inputs in float32, float16 or bfloat16 (math in float32, output in the input dtype); H, W >= 2
    (reflection padding by one needs two pixels). Non-contiguous inputs are copied.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"pred and target must be equal (B,C,H,W) shapes, got {tuple(pred.shape)}, {tuple(target.shape)}"
        )
    if pred.dtype != target.dtype or pred.dtype not in KERNEL_DTYPES:
        raise ValueError(
            f"fused photometric kernel needs matching float32/float16/bfloat16 inputs, got {pred.dtype}, {target.dtype}"
        )
    if pred.shape[2] < 2 or pred.shape[3] < 2:
        raise ValueError(f"reflection padding needs H, W >= 2, got {tuple(pred.shape)}")
    if 4 * pred.numel() >= 2**31:  # 32-bit offsets, also into backward's 4-plane buffer
        raise ValueError(f"fused photometric kernel uses 32-bit offsets; {pred.numel()} elements is too many")
    return _FusedPhotometricError.apply(pred.contiguous(), target.contiguous())
