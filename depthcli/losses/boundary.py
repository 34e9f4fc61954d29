"""InverseForm-style boundary loss: how far is the predicted edge map from a pure copy of the reference?

InverseForm (Borse et al., CVPR 2021) feeds a tile of the reference edge map and the same tile of the
predicted edge map to a small frozen network that regresses the affine transform between them; the
loss is the distance of that transform from the identity, so misplaced boundaries cost more the
further they are shifted, rotated or scaled. The released code ships no training for that network,
so we train it here: synthetic edge maps (anti-aliased line segments and circles), warped with random
small affine transforms, regressing `theta` (the 2x3 matrix of `F.affine_grid`, which maps output
to input coordinates) with loss `||theta_hat - theta||_F`.

Use: `train_inverse_transform_net` -> `save_boundary_net` once; `load_boundary_net` ->
`BoundaryLoss(net)` in the trainer, with `sobel_edges` of the predicted disparity against image edges
(self-supervised) or GT depth edges (supervised).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.errors import DepthcliError

KIND = "boundary-net"
_EDGE_EPS = 1e-6


class InverseTransformNet(nn.Module):
    """Regress the 2x3 affine `theta` that maps a reference edge tile onto a moved one (both (N,1,t,t)).

    Three stride-2 convolutions and a two-layer head; the last layer starts at zero weights and the
    identity bias, so an untrained net predicts "no motion".
    """

    def __init__(self, tile: int = 32, width: int = 16) -> None:
        super().__init__()
        if tile % 8 != 0 or tile < 8:
            raise DepthcliError(f"boundary tile size {tile} must be a positive multiple of 8; use e.g. 32")
        self.tile = tile
        self.features = nn.Sequential(
            nn.Conv2d(2, width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(4 * width * (tile // 8) ** 2, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 6),
        )
        nn.init.zeros_(self.head[-1].weight)
        with torch.no_grad():
            self.head[-1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, reference: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(torch.cat([reference, moved], dim=1))).view(-1, 2, 3)


def identity_theta(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    return torch.eye(2, 3, dtype=dtype, device=device).expand(n, 2, 3)


def synthetic_edge_maps(n: int, tile: int, generator: torch.Generator, segments: int = 3) -> torch.Tensor:
    """(n,1,tile,tile) edge maps in [0,1]: `segments` random line segments plus one circle, 1 px wide."""
    coords = torch.arange(tile, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    points = torch.stack([x, y], dim=-1).view(1, 1, tile * tile, 2)  # (1,1,P,2)
    start = torch.rand(n, segments, 1, 2, generator=generator) * tile
    end = torch.rand(n, segments, 1, 2, generator=generator) * tile
    direction = end - start
    along = ((points - start) * direction).sum(-1) / (direction**2).sum(-1).clamp(min=_EDGE_EPS)
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


def _frobenius(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).norm(dim=1)


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
        "net_error": _frobenius(predicted, theta).mean().item(),
        "identity_error": _frobenius(identity_theta(n), theta).mean().item(),
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
        loss = _frobenius(net(reference, moved), theta).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(step + 1, loss.item())
    net.zero_grad(set_to_none=True)
    net.eval()
    config.update(evaluate_inverse_transform_net(net, config))
    return net, config


def save_boundary_net(path: str | os.PathLike, net: InverseTransformNet, config: dict) -> Path:
    """Write the trained net with the config that made it (atomic depthcli checkpoint, kind "boundary-net")."""
    return save_checkpoint(path, {"kind": KIND, "config": dict(config), "model": net.state_dict()})


def load_boundary_net(path: str | os.PathLike) -> tuple[InverseTransformNet, dict]:
    """Rebuild a saved boundary net (eval mode) and its config; a wrong or damaged file is a DepthcliError."""
    payload = load_checkpoint(path, expected_kind=KIND)
    config = payload["config"]
    try:
        net = InverseTransformNet(int(config["tile"]), int(config["width"]))
        net.load_state_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DepthcliError(
            f"boundary net {path} does not fit its config ({str(exc).splitlines()[0][:160]}); retrain it"
        ) from exc
    return net.eval(), config


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Differentiable Sobel gradient magnitude (B,1,H,W) of the channel mean of `x` (B,C,H,W)."""
    grey = x.mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2,1,3,3)
    gradients = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return torch.sqrt((gradients**2).sum(dim=1, keepdim=True) + _EDGE_EPS)


class BoundaryLoss(nn.Module):
    """Mean over tiles of `||theta_hat - I||_F`, theta_hat from the frozen net on (reference, predicted) tiles.

    Edge maps (B,1,H,W) are scaled per image to a maximum of 1 (the range the net was trained on) and
    cut into non-overlapping tiles; a remainder narrower than a tile at the right/bottom is ignored.
    Gradients flow into the predicted edge map only; the net's weights stay fixed (the given net is
    frozen in place: `requires_grad=False`, eval mode).
    """

    def __init__(self, net: InverseTransformNet) -> None:
        super().__init__()
        self.net = net.eval()
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> BoundaryLoss:
        super().train(mode)
        self.net.eval()  # frozen: never back to training mode with its parent
        return self

    def _tiles(self, edges: torch.Tensor) -> torch.Tensor:
        tile = self.net.tile
        height, width = edges.shape[-2:]
        if height < tile or width < tile:
            raise ValueError(f"edge maps {height}x{width} are smaller than the {tile}-pixel boundary tile")
        scaled = edges / edges.amax(dim=(2, 3), keepdim=True).detach().clamp(min=_EDGE_EPS)
        tiles = scaled.unfold(2, tile, tile).unfold(3, tile, tile)  # (B,1,nh,nw,t,t)
        return tiles.reshape(-1, 1, tile, tile)

    def forward(self, predicted_edges: torch.Tensor, reference_edges: torch.Tensor) -> torch.Tensor:
        theta = self.net(self._tiles(reference_edges.detach()), self._tiles(predicted_edges))
        identity = identity_theta(theta.shape[0], theta.dtype, theta.device)
        return _frobenius(theta, identity).mean()
