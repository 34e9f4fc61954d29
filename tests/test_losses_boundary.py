"""InverseForm boundary loss: the trained net beats the identity guess; the loss tracks a known shift."""

from __future__ import annotations

import pytest
import torch

from depthcli.checkpoints import save_checkpoint
from depthcli.engine.boundary_net import (
    evaluate_inverse_transform_net,
    synthetic_edge_maps,
    train_inverse_transform_net,
)
from depthcli.errors import DepthcliError
from depthcli.losses import BoundaryLoss, sobel_edges
from depthcli.nets.inverse_transform import load_boundary_net, save_boundary_net


@pytest.fixture(scope="module")
def trained():
    """A short training run (300 steps of 32 tiles, ~10 s) shared by the tests below.

    One thread: these tiny convolutions gain nothing from more, and lose a lot on a busy machine.
    """
    steps_seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net, config = train_inverse_transform_net(
            steps=300, batch_size=32, seed=0, progress=lambda step, _: steps_seen.append(step)
        )
    finally:
        torch.set_num_threads(threads)
    assert steps_seen == list(range(1, 301))
    return net, config


def test_trained_net_beats_identity_on_held_out_warps(trained):
    net, config = trained
    errors = evaluate_inverse_transform_net(net, config, n=256, seed=777)  # a seed never used in training
    assert errors["net_error"] < 0.7 * errors["identity_error"]
    assert config["net_error"] < 0.7 * config["identity_error"]
    assert {"tile", "width", "steps", "seed", "lr", "max_translation"} <= set(config)


def _shift_right(edges: torch.Tensor, pixels: int) -> torch.Tensor:
    shifted = torch.zeros_like(edges)
    shifted[..., pixels:] = edges[..., : edges.shape[-1] - pixels]
    return shifted


def test_loss_is_small_for_identical_edges_and_grows_with_shift(trained):
    net, _ = trained
    loss = BoundaryLoss(net)
    reference = synthetic_edge_maps(4, 64, torch.Generator().manual_seed(5), segments=6)
    values = [loss(_shift_right(reference, pixels), reference).item() for pixels in (0, 2, 4)]
    assert values[0] < values[1] < values[2]
    assert values[0] < 0.5 * values[2]
    # a 4-pixel shift of a 32-pixel tile is a translation of 0.25 in affine_grid units
    assert 0.08 < values[2] < 0.5


def test_gradients_reach_the_prediction_not_the_frozen_net(trained):
    net, _ = trained
    loss = BoundaryLoss(net)
    loss.train()
    assert not loss.net.training
    disp = torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(2), requires_grad=True)
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    value = loss(sobel_edges(disp), sobel_edges(image))
    value.backward()
    assert disp.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.net.parameters())


def test_scaling_the_predicted_edges_changes_nothing_so_the_gradient_never_asks_for_it(trained):
    """The loss sees each edge map divided by its maximum, so it is the same for `c * edges` (c > 0), and its
    gradient is orthogonal to `edges` (Euler: d/dc L(c e) = <grad, e> = 0). When the maximum was detached
    the gradient kept a component along `edges`: descending it grew disparity contrast until the sigmoid
    saturated and training collapsed to a flat map (boundary term 0.75 -> 4.7 in 30 steps)."""
    net, _ = trained
    loss = BoundaryLoss(net)
    generator = torch.Generator().manual_seed(4)
    reference = synthetic_edge_maps(2, 64, generator, segments=6)
    predicted = _shift_right(reference, 2) + 0.05 * torch.rand(reference.shape, generator=generator)
    predicted.requires_grad_(True)
    value = loss(predicted, reference)
    value.backward()
    assert loss(3.0 * predicted.detach(), reference).item() == pytest.approx(value.item(), rel=1e-5)
    radial = (predicted.grad * predicted.detach()).sum() / (predicted.grad.norm() * predicted.detach().norm())
    assert abs(radial.item()) < 1e-4  # cosine between the gradient and the edges themselves


def test_sobel_edges_of_a_step_by_hand():
    image = torch.zeros(1, 3, 4, 6)
    image[..., 3:] = 1.0  # a vertical step between columns 2 and 3
    edges = sobel_edges(image)[0, 0]
    # columns 2 and 3 see (1 + 2 + 1) * 1 horizontal difference, the rest none
    torch.testing.assert_close(edges[:, 2:4], torch.full((4, 2), 4.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(edges[:, [0, 1, 4, 5]], torch.zeros(4, 4), atol=1e-2, rtol=0)


def test_save_load_round_trip_and_errors(trained, tmp_path):
    net, config = trained
    path = save_boundary_net(tmp_path / "boundary.pt", net, config)
    loaded, loaded_config = load_boundary_net(path)
    assert loaded_config == config
    reference = synthetic_edge_maps(2, 32, torch.Generator().manual_seed(9))
    torch.testing.assert_close(loaded(reference, reference), net(reference, reference))
    assert list(tmp_path.iterdir()) == [path]  # atomic write leaves no temp file behind

    other = save_checkpoint(tmp_path / "depth.pt", {"kind": "depth", "config": {}, "model": {}})
    with pytest.raises(DepthcliError, match="boundary-net"):
        load_boundary_net(other)
    with pytest.raises(DepthcliError, match="does not exist"):
        load_boundary_net(tmp_path / "missing.pt")
    broken = dict(config, width=8)
    mismatched = save_boundary_net(tmp_path / "mismatch.pt", net, broken)
    with pytest.raises(DepthcliError, match="does not fit"):
        load_boundary_net(mismatched)
