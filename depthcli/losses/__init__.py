"""Loss modules (docs/methods.md): each an nn.Module without hidden state (the MoCo queue aside).

Self-supervised: `photometric_error` / `SSIM` / `min_reprojection_loss`, `EdgeAwareSmoothness`,
`CrossScaleConsistency` (RA-Depth). Supervised: `SupervisedDepthLoss` and its terms. Contrastive:
`InfoNCELoss`, `MoCoQueue`, `momentum_update`. Boundary: `BoundaryLoss` and `sobel_edges` (its frozen
net is `depthcli.nets.inverse_transform`).
"""

from depthcli.losses.boundary import BoundaryLoss, sobel_edges
from depthcli.losses.consistency import CrossScaleConsistency
from depthcli.losses.contrastive import InfoNCELoss, MoCoQueue, momentum_update
from depthcli.losses.photometric import SSIM, min_reprojection_loss, photometric_error
from depthcli.losses.smoothness import EdgeAwareSmoothness
from depthcli.losses.supervised import (
    DepthGradientLoss,
    InverseDepthSSIMLoss,
    MaskedL1Loss,
    ScaleInvariantLogLoss,
    SupervisedDepthLoss,
)

__all__ = [
    "SSIM",
    "BoundaryLoss",
    "CrossScaleConsistency",
    "DepthGradientLoss",
    "EdgeAwareSmoothness",
    "InfoNCELoss",
    "InverseDepthSSIMLoss",
    "MaskedL1Loss",
    "MoCoQueue",
    "ScaleInvariantLogLoss",
    "SupervisedDepthLoss",
    "min_reprojection_loss",
    "momentum_update",
    "photometric_error",
    "sobel_edges",
]
