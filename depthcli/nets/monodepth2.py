"""monodepth2's depth decoder: U-Net with skip connections, sigmoid disparity at up to 4 scales."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthcli.nets.layers import Conv3x3, ConvBlock, disparity_head, upsample

DECODER_CHANNELS = (16, 32, 64, 128, 256)


class Monodepth2Decoder(nn.Module):
    """Five upsampling stages (1/32 -> 1/1), each `ConvBlock, upsample x2, concat skip, ConvBlock`.

    `upconvs` holds the blocks in monodepth2's order (stage 4 block 0, stage 4 block 1, ..., stage 0
    block 1), so its released `decoder.k` weights map to `upconvs.k` (k < 10) and `dispconvs.(k-10)`.
    """

    def __init__(self, num_ch_enc: list[int], scales: tuple[int, ...] = (0, 1, 2, 3)) -> None:
        super().__init__()
        self.scales = tuple(scales)
        blocks = []
        for i in range(4, -1, -1):
            in_channels = num_ch_enc[-1] if i == 4 else DECODER_CHANNELS[i + 1]
            blocks.append(ConvBlock(in_channels, DECODER_CHANNELS[i]))
            skip_channels = num_ch_enc[i - 1] if i > 0 else 0
            blocks.append(ConvBlock(DECODER_CHANNELS[i] + skip_channels, DECODER_CHANNELS[i]))
        self.upconvs = nn.ModuleList(blocks)
        self.dispconvs = nn.ModuleList(Conv3x3(DECODER_CHANNELS[s], 1) for s in self.scales)

    def forward(self, features: list[Tensor]) -> dict[tuple[str, int], Tensor]:
        outputs = {}
        x = features[-1]
        for step, i in enumerate(range(4, -1, -1)):
            x = [upsample(self.upconvs[2 * step](x))]
            if i > 0:
                x.append(features[i - 1])
            x = self.upconvs[2 * step + 1](torch.cat(x, 1))
            if i in self.scales:
                outputs[("disp", i)] = disparity_head(self.dispconvs[self.scales.index(i)], x)
        return outputs
