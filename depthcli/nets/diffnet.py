"""DIFFNet's decoder: cascaded channel-attention fusion of HRNet stage features, 4 disparity scales.

At each resolution the coarser decoder feature is upsampled x2 and concatenated with *every* HRNet
feature produced at that resolution (all stage outputs, see `HRNetEncoder.forward_stages`); a
squeeze-excitation style channel attention (reduction 16) reweights the concatenation and a 3x3
conv + ReLU fuses it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthcli.nets.layers import Conv3x3, ConvBlock, disparity_head, upsample

ATTENTION_REDUCTION = 16
# decoder feature channels at scales 0 (full) .. 4 (1/16)
DECODER_CHANNELS = (16, 32, 64, 128, 256)


class ChannelAttention(nn.Module):
    """Global average pool -> Linear(C, C/r) -> ReLU -> Linear(C/r, C) -> sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = ATTENTION_REDUCTION) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        return x * gate[:, :, None, None]


class AttentionFusion(nn.Module):
    """upsample(coarse) ++ skips -> channel attention -> 3x3 conv (zero padded, bias) -> ReLU."""

    def __init__(self, coarse_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        in_channels = coarse_channels + skip_channels
        self.ca = ChannelAttention(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, coarse: Tensor, skips: list[Tensor]) -> Tensor:
        x = torch.cat([upsample(coarse), *skips], 1)
        return self.relu(self.conv(self.ca(x)))


class DiffNetDecoder(nn.Module):
    """Fusion at 1/16, 1/8, 1/4, 1/2 then two ConvBlocks to full resolution; disparities at scales 0..3.

    `stage_channels[level]` lists the channels of every encoder feature at that level (1/2 ... 1/32).
    """

    def __init__(self, stage_channels: list[list[int]], scales: tuple[int, ...] = (0, 1, 2, 3)) -> None:
        super().__init__()
        self.scales = tuple(scales)
        coarse = stage_channels[4][-1]
        fusions = []
        for level in (3, 2, 1, 0):
            fusions.append(AttentionFusion(coarse, sum(stage_channels[level]), DECODER_CHANNELS[level + 1]))
            coarse = DECODER_CHANNELS[level + 1]
        self.fusions = nn.ModuleList(fusions)
        self.up_conv0 = ConvBlock(DECODER_CHANNELS[1], DECODER_CHANNELS[0])
        self.up_conv1 = ConvBlock(DECODER_CHANNELS[0], DECODER_CHANNELS[0])
        self.dispconvs = nn.ModuleList(Conv3x3(DECODER_CHANNELS[s], 1) for s in self.scales)

    def forward(self, levels: list[list[Tensor]]) -> dict[tuple[str, int], Tensor]:
        x = levels[4][-1]
        by_scale = {}
        for fusion, level in zip(self.fusions, (3, 2, 1, 0), strict=True):
            x = fusion(x, levels[level])
            by_scale[level + 1] = x  # level L lives at 1/2**(L+1), i.e. decoder scale L+1
        by_scale[0] = self.up_conv1(upsample(self.up_conv0(x)))
        return {
            ("disp", s): disparity_head(conv, by_scale[s]) for s, conv in zip(self.scales, self.dispconvs, strict=True)
        }
