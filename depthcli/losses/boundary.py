"""InverseForm-style boundary loss: how far is the predicted edge map from a pure copy of the reference?

A tile of the reference edge map and the same tile of the predicted edge map go through a small frozen
network (`depthcli.nets.inverse_transform`) that regresses the affine transform between them; the
loss is the distance of that transform from the identity, so misplaced boundaries cost more the
further they are shifted, rotated or scaled. The net is trained once by `depthcli.engine.boundary_net`.

Use: `BoundaryLoss(load_boundary_net(path)[0])`, with `sobel_edges` of the predicted disparity against
image edges (self-supervised) or GT depth edges (supervised).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depthcli.nets.inverse_transform import InverseTransformNet, identity_theta, theta_distance

_EDGE_EPS = 1e-6


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
        # the maximum is part of the graph: scaling the predicted edges must not change the loss, else its
        # gradient keeps asking for stronger edges until the disparity saturates (flat map, dead gradients)
        scaled = edges / edges.amax(dim=(2, 3), keepdim=True).clamp(min=_EDGE_EPS)
        tiles = scaled.unfold(2, tile, tile).unfold(3, tile, tile)  # (B,1,nh,nw,t,t)
        return tiles.reshape(-1, 1, tile, tile)

    def forward(self, predicted_edges: torch.Tensor, reference_edges: torch.Tensor) -> torch.Tensor:
        theta = self.net(self._tiles(reference_edges.detach()), self._tiles(predicted_edges))
        identity = identity_theta(theta.shape[0], theta.dtype, theta.device)
        return theta_distance(theta, identity).mean()
