"""Supervised depth losses against hand-computed values; invalid GT (0) must be ignored."""

from __future__ import annotations

import math

import pytest
import torch

from depthcli.losses import (
    DepthGradientLoss,
    InverseDepthSSIMLoss,
    MaskedL1Loss,
    ScaleInvariantLogLoss,
    SupervisedDepthLoss,
)


def _map(rows):
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_masked_l1_by_hand():
    pred = _map([[1.0, 2.0], [3.0, 4.0]])
    gt = _map([[0.0, 2.5], [1.0, 0.0]])
    assert math.isclose(MaskedL1Loss()(pred, gt).item(), (0.5 + 2.0) / 2, rel_tol=1e-6)


def test_losses_without_valid_pixels_are_zero_and_keep_the_graph():
    pred = torch.ones(1, 1, 3, 3, requires_grad=True)
    gt = torch.zeros(1, 1, 3, 3)
    for loss in (MaskedL1Loss(), ScaleInvariantLogLoss(), InverseDepthSSIMLoss(), DepthGradientLoss()):
        value = loss(pred, gt)
        assert value.item() == 0.0
        value.backward()


def test_scale_invariant_log_of_scaled_prediction_has_zero_variance_term():
    gt = _map([[1.0, 2.0, 4.0], [8.0, 0.0, 3.0]])
    c = 1.7
    pred = torch.where(gt > 0, c * gt, torch.tensor(5.0))
    # d = log c everywhere: mean d^2 - 0.85 mean(d)^2 = 0.15 (log c)^2
    expected = 10 * math.sqrt(0.15) * math.log(c)
    assert math.isclose(ScaleInvariantLogLoss()(pred, gt).item(), expected, rel_tol=1e-5)
    assert ScaleInvariantLogLoss(variance_focus=1.0)(pred, gt).item() < 1e-4


def test_scale_invariant_log_by_hand():
    pred = _map([[1.0, math.e, 9.0]])
    gt = _map([[1.0, 1.0, 0.0]])
    # d = [0, 1]: mean d^2 = 0.5, mean d = 0.5 -> 0.5 - 0.85 * 0.25 = 0.2875
    assert math.isclose(ScaleInvariantLogLoss()(pred, gt).item(), 10 * math.sqrt(0.2875), rel_tol=1e-5)


def test_inverse_depth_ssim_on_constant_maps_by_hand():
    pred = torch.full((1, 1, 4, 5), 2.0)
    gt = torch.full((1, 1, 4, 5), 4.0)
    a = (1 / 2.0 - 0.1) / (10 - 0.1)  # depth_to_disp with min 0.1, max 10
    b = (1 / 4.0 - 0.1) / (10 - 0.1)
    c1 = 0.01**2
    ssim = (2 * a * b + c1) / (a * a + b * b + c1)  # zero variances: the contrast term is C2/C2
    expected = (1 - ssim) / 2
    assert math.isclose(InverseDepthSSIMLoss(0.1, 10.0)(pred, gt).item(), expected, rel_tol=1e-4)
    assert InverseDepthSSIMLoss()(gt, gt).item() < 1e-6


def test_gradient_loss_by_hand_with_invalid_pixel():
    gt = _map([[2.0, 2.0, 2.0], [2.0, 0.0, 2.0]])
    pred = gt + _map([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    # x pairs valid: row 0 (both), row 1 none (pixel (1,1) invalid) -> |1|,|1| -> 1
    # y pairs valid: columns 0 and 2 -> diffs 0 -> 0
    assert math.isclose(DepthGradientLoss()(pred, gt).item(), 1.0, rel_tol=1e-6)


def test_supervised_depth_loss_is_the_weighted_sum():
    generator = torch.Generator().manual_seed(0)
    gt = 1 + 5 * torch.rand(2, 1, 8, 8, generator=generator)
    gt[:, :, 0, :3] = 0
    pred = (1 + 5 * torch.rand(2, 1, 8, 8, generator=generator)).requires_grad_()
    out = SupervisedDepthLoss(silog_weight=0.5)(pred, gt)
    expected = (
        0.1 * MaskedL1Loss()(pred, gt)
        + DepthGradientLoss()(pred, gt)
        + InverseDepthSSIMLoss()(pred, gt)
        + 0.5 * ScaleInvariantLogLoss()(pred, gt)
    )
    assert set(out) == {"loss", "l1", "gradient", "ssim", "silog"}
    torch.testing.assert_close(out["loss"], expected)
    out["loss"].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert "silog" not in SupervisedDepthLoss()(pred, gt)


def test_shape_mismatch_is_a_programming_error():
    with pytest.raises(ValueError, match="resize first"):
        MaskedL1Loss()(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 4, 4))
