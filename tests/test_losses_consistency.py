"""RA-Depth cross-scale consistency: region mapping, masking and closed-form values."""

from __future__ import annotations

import math

import torch

from depthcli.losses import CrossScaleConsistency

H, W = 8, 16
C1 = 0.01**2


def _constant_pair_error(a: float, b: float) -> float:
    """Photometric error of two constant maps: SSIM has zero variances, so only the luminance term is left."""
    ssim = (2 * a * b + C1) / (a * a + b * b + C1)
    return 0.85 * (1 - ssim) / 2 + 0.15 * abs(a - b)


def _no_identity(batch=1):
    return torch.zeros(batch, 1, H, W, dtype=torch.bool)


def test_high_box_placement_for_fractional_scale():
    # s_H = 1.5: resized 24x12, crop offset (6, 3) -> middle box x0 = 4, y0 = 2, size round(10.67) x round(5.33)
    high_size, high_offset = torch.tensor([[24, 12]]), torch.tensor([[6, 3]])
    disp_high = torch.full((1, 1, H, W), 0.3)
    disp_middle = torch.full((1, 1, H, W), 0.9)
    disp_middle[..., 2:7, 4:15] = 0.3
    loss = CrossScaleConsistency().high_term(disp_middle, disp_high, high_size, high_offset, torch.ones(1, 1, H, W))
    assert loss.item() < 1e-4
    shifted = torch.roll(disp_middle, shifts=1, dims=3)  # the same box one pixel right: must not match
    moved = CrossScaleConsistency().high_term(shifted, disp_high, high_size, high_offset, torch.ones(1, 1, H, W))
    assert moved.item() > 0.01


def test_low_block_only_uses_the_pasted_area():
    # s_L = 0.75: pasted 12x6 block; the filler outside it (0.95) must not leak into the comparison
    disp_low = torch.full((1, 1, H, W), 0.95)
    disp_low[..., :6, :12] = 0.4
    consistency = CrossScaleConsistency()
    matching = consistency.low_term(
        torch.full((1, 1, H, W), 0.4), disp_low, torch.tensor([[12, 6]]), torch.ones(1, 1, H, W)
    )
    assert matching.item() < 1e-4  # float32 SSIM noise only; leaking filler would cost ~0.1
    other = consistency.low_term(
        torch.full((1, 1, H, W), 0.6), disp_low, torch.tensor([[12, 6]]), torch.ones(1, 1, H, W)
    )
    assert math.isclose(other.item(), _constant_pair_error(0.6, 0.4), abs_tol=1e-4)


def test_forward_sums_terms_and_masks_identity_pixels():
    disp_middle = torch.full((2, 1, H, W), 0.5)
    disp_high = torch.full((2, 1, H, W), 0.3)
    disp_low = torch.full((2, 1, H, W), 0.5)
    disp_low[1] = 0.2
    high_size = torch.tensor([[32, 16], [20, 10]])
    high_offset = torch.tensor([[8, 4], [2, 1]])
    low_size = torch.tensor([[12, 6], [14, 7]])
    identity = _no_identity(2)
    identity[0, :, :, :8] = True  # half of sample 0 is static: left out, the masked mean is unchanged
    loss = CrossScaleConsistency()(disp_middle, disp_high, high_size, high_offset, disp_low, low_size, identity)
    high = _constant_pair_error(0.5, 0.3)  # both samples
    low = (0.0 + _constant_pair_error(0.5, 0.2)) / 2
    assert math.isclose(loss.item(), high + low, abs_tol=1e-4)
    everything_static = torch.ones(2, 1, H, W, dtype=torch.bool)
    zero = CrossScaleConsistency()(
        disp_middle, disp_high, high_size, high_offset, disp_low, low_size, everything_static
    )
    assert zero.item() == 0.0


def test_rendered_scene_is_consistent_and_gradients_flow():
    # A disparity that is linear in middle-image pixel coordinates, rendered at each scale by where each
    # pixel centre lands in the middle image: high pixel u -> (u + x_H + 0.5) / s_H - 0.5,
    # low pixel u -> (u + 0.5) / s_L - 0.5. Bilinear resampling reproduces linear maps, so both terms
    # (nearly: the low upsampling clamps at its border) vanish; a wrong offset or size does not.
    def field(u, v):
        return 0.2 + 0.02 * u + 0.03 * v

    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    disp_middle = field(u, v)[None, None]
    s_high, offset = 2.0, (6, 4)
    disp_high = field((u + offset[0] + 0.5) / s_high - 0.5, (v + offset[1] + 0.5) / s_high - 0.5)[None, None]
    s_low = 0.75
    inside = (u < W * s_low) & (v < H * s_low)
    disp_low = torch.where(inside, field((u + 0.5) / s_low - 0.5, (v + 0.5) / s_low - 0.5), 0.9)[None, None]
    disp_high.requires_grad_()
    disp_low.requires_grad_()
    consistency, keep = CrossScaleConsistency(), torch.ones(1, 1, H, W)
    high_size = torch.tensor([[32, 16]])

    assert consistency.high_term(disp_middle, disp_high, high_size, torch.tensor([offset]), keep) < 1e-4
    # an offset one middle pixel off: the L1 part alone is 0.15 * 0.02 (the field's x slope)
    assert consistency.high_term(disp_middle, disp_high, high_size, torch.tensor([[4, 4]]), keep) > 0.15 * 0.02
    good_low = consistency.low_term(disp_middle, disp_low, torch.tensor([[12, 6]]), keep)
    for wrong_size in ([[10, 5]], [[14, 7]]):
        assert good_low < 0.1 * consistency.low_term(disp_middle, disp_low, torch.tensor(wrong_size), keep)

    total = consistency(
        disp_middle, disp_high, high_size, torch.tensor([offset]), disp_low, torch.tensor([[12, 6]]), keep < 0
    )
    total.backward()
    assert disp_high.grad.abs().sum() > 0 and disp_low.grad[..., :6, :12].abs().sum() > 0
    assert disp_low.grad[..., 6:, :].abs().sum() == 0  # the filler outside the pasted block gets no gradient
    assert disp_low.grad[..., :, 12:].abs().sum() == 0
