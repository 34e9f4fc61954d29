"""Fused Triton photometric kernel vs the PyTorch reference: outputs and gradients.

Without a GPU the kernel runs in triton's CPU interpreter, which needs TRITON_INTERPRET=1 before triton
is imported. So that the variable never leaks into other test modules, the `interpreted` tests run in
a child pytest process started by `test_kernel_suite_in_child_process`; in the parent they skip.
CUDA tests run in-process where a GPU exists.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depthcli.losses.photometric import photometric_error

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None
in_child = pytest.mark.skipif(not INTERPRETED, reason="runs in the TRITON_INTERPRET=1 child process")
needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() and HAS_TRITON), reason="needs CUDA and triton")


def kernel_and_reference(pred, target, grad_out):
    """Outputs and input gradients of the kernel and of the reference on the same inputs."""
    results = []
    for use_kernel in (True, False):
        leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in (pred, target)]
        out = photometric_error(*leaves, use_kernel=use_kernel)
        out.backward(grad_out)
        results.append((out.detach(), [leaf.grad for leaf in leaves]))
    return results


def assert_kernel_matches_reference(pred, target, atol=1e-4, rtol=1e-4):
    grad_out = torch.rand(pred.shape[0], 1, *pred.shape[2:], generator=torch.Generator().manual_seed(9))
    (out_k, grads_k), (out_r, grads_r) = kernel_and_reference(pred, target, grad_out.to(pred.device))
    assert out_k.shape == (pred.shape[0], 1, *pred.shape[2:])
    torch.testing.assert_close(out_k, out_r, atol=atol, rtol=rtol)
    for grad_k, grad_r in zip(grads_k, grads_r, strict=True):
        if grad_r is None:
            assert grad_k is None
        else:
            torch.testing.assert_close(grad_k, grad_r, atol=atol, rtol=rtol)


@pytest.mark.skipif(INTERPRETED or not HAS_TRITON, reason="parent process only, needs triton")
def test_kernel_suite_in_child_process():
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "interpreted", __file__],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, result.stdout[-2000:]


@in_child
# (2, 1, 13, 11): 286 pixels, more than one 256-pixel program and a ragged last block
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 1, 5, 6), (1, 2, 2, 3), (2, 1, 3, 2), (2, 1, 13, 11)])
def test_interpreted_matches_reference_both_gradients(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    pred = torch.rand(shape, generator=gen, requires_grad=True)
    target = torch.rand(shape, generator=gen, requires_grad=True)
    assert_kernel_matches_reference(pred, target)


@in_child
def test_interpreted_target_without_grad_and_noncontiguous_pred():
    gen = torch.Generator().manual_seed(11)
    pred = torch.rand(1, 6, 4, 3, generator=gen).transpose(2, 3)[:, ::2].requires_grad_()  # (1,3,3,4), strided
    target = torch.rand(1, 3, 3, 4, generator=gen)
    assert not pred.is_contiguous()
    assert_kernel_matches_reference(pred, target)


@in_child
def test_interpreted_identical_images_zero_error_and_gradient():
    image = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(12), requires_grad=True)
    out = photometric_error(image, image.detach(), use_kernel=True)
    out.sum().backward()
    assert out.abs().max() < 1e-5 and image.grad.abs().max() < 1e-3


@in_child
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_interpreted_half_inputs_compute_in_float32(dtype):
    gen = torch.Generator().manual_seed(13)
    pred, target = torch.rand(1, 3, 4, 5, generator=gen).to(dtype), torch.rand(1, 3, 4, 5, generator=gen).to(dtype)
    out = photometric_error(pred, target, use_kernel=True)
    expected = photometric_error(pred.float(), target.float(), use_kernel=False)
    assert out.dtype == dtype
    tolerance = 2e-3 if dtype == torch.float16 else 1.6e-2  # one rounding of the result to the input dtype
    torch.testing.assert_close(out.float(), expected, atol=tolerance, rtol=0)


@in_child
def test_interpreted_dispatch_auto_stays_on_reference_for_cpu():
    x = torch.rand(1, 1, 3, 3, requires_grad=True)
    assert "Fused" not in type(photometric_error(x, x.detach()).grad_fn).__name__
    assert "Fused" in type(photometric_error(x, x.detach(), use_kernel=True).grad_fn).__name__


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("shape", [(12, 3, 192, 640), (4, 1, 33, 47), (2, 3, 2, 5)])
def test_cuda_kernel_matches_reference(shape):
    gen = torch.Generator(device="cuda").manual_seed(21)
    pred = torch.rand(shape, generator=gen, device="cuda", requires_grad=True)
    target = torch.rand(shape, generator=gen, device="cuda", requires_grad=True)
    assert_kernel_matches_reference(pred, target)


@pytest.mark.cuda
@needs_cuda
def test_cuda_auto_dispatch_and_switch(monkeypatch):
    x = torch.rand(1, 3, 8, 8, device="cuda", requires_grad=True)
    assert "Fused" in type(photometric_error(x, x.detach()).grad_fn).__name__
    monkeypatch.setenv("DEPTHCLI_DISABLE_TRITON", "1")
    assert "Fused" not in type(photometric_error(x, x.detach()).grad_fn).__name__
