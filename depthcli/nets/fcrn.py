"""FCRN-style supervised head for NYU (Laina et al. 2016): ResNet-50 + up-projection decoder.

FCRN's up-projection unpools x2 (each value to the top-left of a 2x2 block, zeros elsewhere) and
applies a 5x5 conv; that is exactly a stride-2 5x5 transposed convolution, which is how it is built
here (no zero-filled intermediate, 4x fewer multiply-adds).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from depthcli.nets.layers import disparity_head

FCRN_CHANNELS = (1024, 512, 256, 128, 64)


def _unpool_conv5(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """Unpool x2 + 5x5 conv as one transposed conv: output exactly twice the input size."""
    return nn.ConvTranspose2d(in_channels, out_channels, 5, stride=2, padding=2, output_padding=1, bias=False)


class UpProjection(nn.Module):
    """Residual up-projection: (unpool-conv5, BN, ReLU, conv3, BN) + (unpool-conv5, BN), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = _unpool_conv5(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.up_proj = _unpool_conv5(in_channels, out_channels)
        self.bn_proj = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        main = self.bn2(self.conv(F.relu(self.bn1(self.up(x)))))
        return F.relu(main + self.bn_proj(self.up_proj(x)))


class FCRNDecoder(nn.Module):
    """1x1 conv 2048->1024 + BN, four up-projections (1/32 -> 1/2), 3x3 conv, bilinear x2, sigmoid.

    FCRN regresses depth directly at half resolution; here the head ends in sigmoid disparity at full
    input resolution so that every depth net has the same output contract.
    """

    def __init__(self, num_ch_enc: list[int]) -> None:
        super().__init__()
        self.scales = (0,)
        self.reduce = nn.Conv2d(num_ch_enc[-1], FCRN_CHANNELS[0], 1, bias=False)
        self.bn = nn.BatchNorm2d(FCRN_CHANNELS[0])
        self.ups = nn.ModuleList(UpProjection(a, b) for a, b in zip(FCRN_CHANNELS[:-1], FCRN_CHANNELS[1:], strict=True))
        self.dispconv = nn.Conv2d(FCRN_CHANNELS[-1], 1, 3, padding=1)

    def forward(self, features: list[Tensor]) -> dict[tuple[str, int], Tensor]:
        x = self.bn(self.reduce(features[-1]))
        for up in self.ups:
            x = up(x)
        return {("disp", 0): disparity_head(self._full_resolution_logits, x)}

    def _full_resolution_logits(self, x: Tensor) -> Tensor:
        return F.interpolate(self.dispconv(x), scale_factor=2, mode="bilinear", align_corners=False)
