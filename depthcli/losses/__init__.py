"""Loss modules (GUIDE sections 2-3): each an nn.Module without hidden state (the MoCo queue aside).

Self-supervised: `photometric_error` / `SSIM` / `min_reprojection_loss`, `EdgeAwareSmoothness`,
`CrossScaleConsistency` (RA-Depth). Supervised: `SupervisedDepthLoss` and its terms. Contrastive:
`InfoNCELoss`, `MoCoQueue`, `momentum_update`. Boundary: `BoundaryLoss` and its trained net.
"""

from depthcli.losses.boundary import (
    BoundaryLoss,
    InverseTransformNet,
    load_boundary_net,
    save_boundary_net,
    sobel_edges,
    train_inverse_transform_net,
)
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
    "InverseTransformNet",
    "MaskedL1Loss",
    "MoCoQueue",
    "ScaleInvariantLogLoss",
    "SupervisedDepthLoss",
    "load_boundary_net",
    "min_reprojection_loss",
    "momentum_update",
    "photometric_error",
    "save_boundary_net",
    "sobel_edges",
    "train_inverse_transform_net",
]
