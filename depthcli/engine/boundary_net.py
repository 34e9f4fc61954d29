"""Training InverseForm's inverse-transformation net, which its released code does not ship.

Synthetic edge maps (anti-aliased line segments and a circle) are warped with random small affine
transforms, and the net (`depthcli.nets.inverse_transform`) regresses `theta` (the 2x3 matrix of
`F.affine_grid`, which maps output to input coordinates) with loss `||theta_hat - theta||_F`. CPU is
enough: the net is small and the data is generated on the fly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from depthcli.errors import DepthcliError
from depthcli.nets.inverse_transform import InverseTransformNet, identity_theta, theta_distance

_LENGTH_EPS = 1e-6


def synthetic_edge_maps(n: int, tile: int, generator: torch.Generator, segments: int = 3) -> torch.Tensor:
    """(n,1,tile,tile) edge maps in [0,1]: `segments` random line segments plus one circle, 1 px wide."""
    coords = torch.arange(tile, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    points = torch.stack([x, y], dim=-1).view(1, 1, tile * tile, 2)  # (1,1,P,2)
    start = torch.rand(n, segments, 1, 2, generator=generator) * tile
    end = torch.rand(n, segments, 1, 2, generator=generator) * tile
    direction = end - start
    along = ((points - start) * direction).sum(-1) / (direction**2).sum(-1).clamp(min=_LENGTH_EPS)
    closest = start + along.clamp(0, 1).unsqueeze(-1) * direction
    segment_distance = (points - closest).norm(dim=-1).min(dim=1).values  # (n,P)
    centre = torch.rand(n, 1, 2, generator=generator) * tile
    radius = tile * (0.1 + 0.3 * torch.rand(n, 1, generator=generator))
    circle_distance = ((points[0] - centre).norm(dim=-1) - radius).abs()
    distance = torch.minimum(segment_distance, circle_distance)
    return (1 - distance).clamp(0, 1).view(n, 1, tile, tile)


def random_affine(
    n: int,
    generator: torch.Generator,
    max_rotation_deg: float = 10.0,
    max_scale: float = 0.1,
    max_translation: float = 0.15,
) -> torch.Tensor:
    """(n,2,3) small random affine transforms: rotation, isotropic scale 1 +- max_scale, translation
    (in normalised units, 2 = tile width)."""
    uniform = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = uniform[:, 0] * math.radians(max_rotation_deg)
    scale = 1 + uniform[:, 1] * max_scale
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    tx, ty = uniform[:, 2] * max_translation, uniform[:, 3] * max_translation
    return torch.stack([torch.stack([cos, -sin, tx], -1), torch.stack([sin, cos, ty], -1)], dim=1)


def warp_tiles(tiles: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(tiles.shape), align_corners=False)
    return F.grid_sample(tiles, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _warp_batch(n: int, config: dict, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    reference = synthetic_edge_maps(n, config["tile"], generator)
    theta = random_affine(n, generator, config["max_rotation_deg"], config["max_scale"], config["max_translation"])
    return reference, warp_tiles(reference, theta), theta


@torch.no_grad()
def evaluate_inverse_transform_net(net: InverseTransformNet, config: dict, n: int = 512, seed: int = 12345) -> dict:
    """Mean `||theta_hat - theta||_F` on `n` fresh warps, next to the error of always answering identity."""
    generator = torch.Generator().manual_seed(seed)
    reference, moved, theta = _warp_batch(n, config, generator)
    was_training = net.training
    net.eval()
    predicted = net(reference, moved)
    net.train(was_training)
    return {
        "net_error": theta_distance(predicted, theta).mean().item(),
        "identity_error": theta_distance(identity_theta(n), theta).mean().item(),
    }


def train_inverse_transform_net(
    steps: int = 2000,
    tile: int = 32,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-3,
    width: int = 16,
    max_rotation_deg: float = 10.0,
    max_scale: float = 0.1,
    max_translation: float = 0.15,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[InverseTransformNet, dict]:
    """Train the inverse-transformation net on random affine warps of synthetic edge maps (CPU is fine).

    Returns `(net in eval mode, config)`; the config holds every argument (enough to rebuild and to
    retrain it) plus the held-out errors measured at the end. `progress(step, loss)` is called after
    each step.
    """
    if steps < 1 or batch_size < 1:
        raise DepthcliError(f"boundary net training needs steps >= 1 and batch size >= 1 (got {steps}, {batch_size})")
    config = {
        "tile": tile,
        "width": width,
        "steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "max_rotation_deg": max_rotation_deg,
        "max_scale": max_scale,
        "max_translation": max_translation,
    }
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = InverseTransformNet(tile, width)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    for step in range(steps):
        reference, moved, theta = _warp_batch(batch_size, config, generator)
        loss = theta_distance(net(reference, moved), theta).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(step + 1, loss.item())
    net.zero_grad(set_to_none=True)
    net.eval()
    config.update(evaluate_inverse_transform_net(net, config))
    return net, config
