"""EdgeAwareSmoothness against hand-computed values on 2x3 maps."""

from __future__ import annotations

import math

import torch

from depthcli.losses import EdgeAwareSmoothness

DISP = torch.tensor([[[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]]])  # mean 2 -> normalised [[.5,1,1.5],[1.5,1,.5]]


def test_constant_image_by_hand():
    image = torch.full((1, 3, 2, 3), 0.7)
    # x: four differences of 0.5 -> mean 0.5; y: |1|, 0, |1| -> mean 2/3; image weights all exp(0) = 1
    assert math.isclose(EdgeAwareSmoothness()(DISP, image).item(), 0.5 + 2 / 3, rel_tol=1e-6)


def test_image_edges_downweight_disparity_changes():
    image = torch.zeros(1, 3, 2, 3)
    image[:, 0, :, 1:] = 3.0  # channel mean of |d_x I| = 1 between columns 0 and 1, 0 elsewhere
    expected_x = (0.5 * math.exp(-1) + 0.5 + 0.5 * math.exp(-1) + 0.5) / 4
    assert math.isclose(EdgeAwareSmoothness()(DISP, image).item(), expected_x + 2 / 3, rel_tol=1e-6)


def test_invariant_to_disparity_scale_and_zero_for_constant_disparity():
    image = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    disp = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) + 0.1
    loss = EdgeAwareSmoothness()
    assert math.isclose(loss(disp, image).item(), loss(7 * disp, image).item(), rel_tol=1e-5)
    assert loss(torch.full_like(disp, 0.3), image).item() == 0.0
