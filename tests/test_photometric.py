"""PyTorch reference of the photometric error, SSIM map, min-reprojection/automasking and dispatch."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from depthcli.errors import DepthcliError
from depthcli.losses import photometric
from depthcli.losses.photometric import (
    SSIM,
    min_reprojection_loss,
    photometric_error,
    reference_photometric_error,
    set_kernel_enabled,
)

C1, C2 = 0.01**2, 0.03**2


def ssim_map_loops(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Independent SSIM dissimilarity: explicit 3x3 windows over np.pad(mode='reflect'), float64."""
    out = np.zeros_like(x, dtype=np.float64)
    batch, channels, height, width = x.shape
    for b in range(batch):
        for c in range(channels):
            xp = np.pad(x[b, c].astype(np.float64), 1, mode="reflect")
            yp = np.pad(y[b, c].astype(np.float64), 1, mode="reflect")
            for i in range(height):
                for j in range(width):
                    wx, wy = xp[i : i + 3, j : j + 3], yp[i : i + 3, j : j + 3]
                    mx, my = wx.mean(), wy.mean()
                    vx, vy = (wx**2).mean() - mx**2, (wy**2).mean() - my**2
                    cxy = (wx * wy).mean() - mx * my
                    ssim = (2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2))
                    out[b, c, i, j] = min(max((1 - ssim) / 2, 0.0), 1.0)
    return out


@pytest.fixture(autouse=True)
def _restore_switch(monkeypatch):
    monkeypatch.delenv("DEPTHCLI_DISABLE_TRITON", raising=False)
    yield
    set_kernel_enabled(True)


@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 1, 5, 6), (1, 2, 2, 3)])
def test_ssim_matches_loop_implementation(shape):
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)
    got = SSIM()(x, y)
    assert got.shape == shape
    np.testing.assert_allclose(got.numpy(), ssim_map_loops(x.numpy(), y.numpy()), atol=2e-6)


def test_ssim_identical_images_is_zero():
    x = torch.rand(2, 3, 6, 5, generator=torch.Generator().manual_seed(2))
    assert SSIM()(x, x).abs().max() < 1e-6


def test_ssim_constant_images_closed_form():
    a, b = 0.8, 0.3
    # float64: in float32 the E[x^2] - mu^2 cancellation leaves ~1e-8 residue, visible next to C2
    got = SSIM()(torch.full((1, 3, 4, 5), a, dtype=torch.float64), torch.full((1, 3, 4, 5), b, dtype=torch.float64))
    # no variance: ssim = (2ab + C1) / (a^2 + b^2 + C1), so (1 - ssim) / 2 = (a - b)^2 / (2 (a^2 + b^2 + C1))
    expected = (a - b) ** 2 / (2 * (a * a + b * b + C1))
    torch.testing.assert_close(got, torch.full_like(got, expected), atol=1e-12, rtol=1e-10)


def test_photometric_error_hand_computed_2x2():
    # x = [[0,0],[0,1]], y = 0. Reflection-padded 3x3 windows of a 2x2 image weigh the pixels
    # (own 1, row neighbour 2, column neighbour 2, diagonal 4) / 9.
    x = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
    y = torch.zeros_like(x)

    def ssim_term(mean, mean_sq):
        var = mean_sq - mean**2
        return (1 - C1 * C2 / ((mean**2 + C1) * (var + C2))) / 2

    at_00 = 0.85 * ssim_term(4 / 9, 4 / 9)  # the 1 is the diagonal neighbour (weight 4); L1 is 0 here
    at_01 = 0.85 * ssim_term(2 / 9, 2 / 9)  # column neighbour
    at_11 = 0.85 * ssim_term(1 / 9, 1 / 9) + 0.15 * 1.0
    expected = torch.tensor([[[[at_00, at_01], [at_01, at_11]]]])
    torch.testing.assert_close(photometric_error(x, y), expected, atol=1e-6, rtol=1e-5)


def test_photometric_error_is_channel_mean_of_ssim_and_l1():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 5, 7, generator=gen), torch.rand(2, 3, 5, 7, generator=gen)
    ssim = ssim_map_loops(x.numpy(), y.numpy()).mean(1, keepdims=True)
    l1 = np.abs(x.numpy() - y.numpy()).mean(1, keepdims=True)
    np.testing.assert_allclose(photometric_error(x, y).numpy(), 0.85 * ssim + 0.15 * l1, atol=2e-6)


def test_reference_gradcheck_float64():
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: photometric_error(a, b, use_kernel=False), (x, y))


def test_min_reprojection_automask_hand_case():
    reprojection = torch.tensor([[[[0.5, 0.2, 0.9, 0.4]], [[0.3, 0.6, 0.8, 0.1]]]], requires_grad=True)
    identity = torch.tensor([[[[0.1, 0.7, 0.95, 0.9]], [[0.9, 0.9, 0.2, 0.9]]]])
    loss, selected = min_reprojection_loss(reprojection, identity, generator=torch.Generator().manual_seed(0))
    assert loss.shape == selected.shape == (1, 1, 1, 4) and selected.dtype == torch.bool
    torch.testing.assert_close(loss, torch.tensor([[[[0.1, 0.2, 0.2, 0.1]]]]), atol=1e-4, rtol=0)
    assert selected.flatten().tolist() == [True, False, True, False]
    loss.sum().backward()
    # gradient reaches exactly the reprojection entries that won: source 0 at pixel 1, source 1 at pixel 3
    expected_grad = torch.tensor([[[[0.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 1.0]]]])
    torch.testing.assert_close(reprojection.grad, expected_grad)


def test_min_reprojection_without_identity_is_plain_min():
    reprojection = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(5))
    loss, selected = min_reprojection_loss(reprojection, None)
    torch.testing.assert_close(loss, reprojection.amin(1, keepdim=True))
    assert not selected.any()


def test_tie_noise_breaks_ties_both_ways_and_is_reproducible():
    errors = torch.full((1, 2, 40, 50), 0.5)
    _, selected = min_reprojection_loss(errors, errors.clone(), generator=torch.Generator().manual_seed(6))
    _, again = min_reprojection_loss(errors, errors.clone(), generator=torch.Generator().manual_seed(6))
    # identity wins where min of its 2 noise draws is negative: probability 3/4
    assert 0.65 < selected.float().mean().item() < 0.85
    assert torch.equal(selected, again)


def test_identity_count_may_differ_from_reprojection_count():
    reprojection = torch.tensor([[[[0.4]], [[0.3]], [[0.2]]]])
    identity = torch.tensor([[[[0.25]], [[0.1]]]])
    loss, selected = min_reprojection_loss(reprojection, identity, tie_noise=0.0)
    assert loss.item() == pytest.approx(0.1) and selected.item()


@pytest.fixture
def fake_kernel(monkeypatch):
    """Stand-in kernel module (keeps triton out of this process) recording that dispatch chose it."""
    calls = []

    def fused(pred, target):
        calls.append(pred.shape)
        return reference_photometric_error(pred, target)

    module = types.ModuleType("depthcli.kernels.photometric_triton")
    module.fused_photometric_error = fused
    monkeypatch.setitem(sys.modules, "depthcli.kernels.photometric_triton", module)
    monkeypatch.setattr(photometric, "triton_available", lambda: True)
    return calls


def test_auto_uses_reference_on_cpu(fake_kernel, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.rand(1, 3, 4, 4)
    photometric_error(x, x)
    assert fake_kernel == []


def test_forced_kernel_on_cpu_needs_interpreter(fake_kernel, monkeypatch):
    x = torch.rand(1, 3, 4, 4)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(DepthcliError, match="use_kernel=True"):
        photometric_error(x, x, use_kernel=True)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    photometric_error(x, x, use_kernel=True)
    assert len(fake_kernel) == 1
    with pytest.raises(DepthcliError, match="dtypes"):
        photometric_error(x.double(), x.double(), use_kernel=True)


def test_forced_kernel_without_triton_errors(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(photometric, "triton_available", lambda: False)
    with pytest.raises(DepthcliError, match="triton"):
        photometric_error(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 3, 3), use_kernel=True)


def test_global_switch_and_environment(monkeypatch):
    assert photometric.kernel_enabled()
    set_kernel_enabled(False)
    assert not photometric.kernel_enabled()
    set_kernel_enabled(True)
    monkeypatch.setenv("DEPTHCLI_DISABLE_TRITON", "1")
    assert not photometric.kernel_enabled()
    monkeypatch.setenv("DEPTHCLI_DISABLE_TRITON", "0")
    assert photometric.kernel_enabled()


def test_bad_use_kernel_value():
    with pytest.raises(ValueError, match="use_kernel"):
        photometric_error(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 3, 3), use_kernel="yes")
