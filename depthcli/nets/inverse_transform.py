"""InverseForm's inverse-transformation network: the affine motion between two edge-map tiles.

InverseForm (Borse et al., CVPR 2021) measures how far a predicted boundary sits from a reference one
by asking a small frozen network for the affine transform between them. The net is defined here,
trained by `depthcli.engine.boundary_net` and used by `depthcli.losses.boundary.BoundaryLoss`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.errors import DepthcliError

BOUNDARY_NET_KIND = "boundary-net"


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
    """(n,2,3) identity transforms: what the net answers for tiles that did not move."""
    return torch.eye(2, 3, dtype=dtype, device=device).expand(n, 2, 3)


def theta_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Frobenius distance `||a - b||_F` of two (N,2,3) transform batches -> (N,)."""
    return (a - b).flatten(1).norm(dim=1)


def save_boundary_net(path: str | os.PathLike, net: InverseTransformNet, config: dict) -> Path:
    """Write the trained net with the config that made it (atomic depthcli checkpoint, kind "boundary-net")."""
    return save_checkpoint(path, {"kind": BOUNDARY_NET_KIND, "config": dict(config), "model": net.state_dict()})


def load_boundary_net(path: str | os.PathLike) -> tuple[InverseTransformNet, dict]:
    """Rebuild a saved boundary net (eval mode) and its config; a wrong or damaged file is a DepthcliError."""
    payload = load_checkpoint(path, expected_kind=BOUNDARY_NET_KIND)
    config = payload["config"]
    try:
        net = InverseTransformNet(int(config["tile"]), int(config["width"]))
        net.load_state_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DepthcliError(
            f"boundary net {path} does not fit its config ({str(exc).splitlines()[0][:160]}); retrain it"
        ) from exc
    return net.eval(), config
