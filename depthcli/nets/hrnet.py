"""HRNet-W18 encoder (stage channels 18, 36, 72, 144 after a 64-channel stem), as DIFFNet and RA-Depth use it.

Parameter names follow the HRNet ImageNet classification release (conv1, bn1, conv2, bn2, layer1,
transitionN, stageN.k.branches / fuse_layers) so its backbone weights load unchanged; the
classification head (incre/downsample/final layers, classifier) is not built: the depth nets never
use it and the published 10.87 M / 9.98 M counts exclude it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from depthcli.nets.resnet import BasicBlock, Bottleneck, init_weights, make_layer

HRNET18_CHANNELS = (18, 36, 72, 144)
# HRNet-W9: every branch at half the W18 width (stem and layer1 unchanged); the "-small" depth nets use it
HRNET9_CHANNELS = (9, 18, 36, 72)
# modules per stage (stage 2, 3, 4); every branch has 4 BasicBlocks
HRNET18_MODULES = (1, 4, 3)
BLOCKS_PER_BRANCH = 4


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by all-to-all summed fusion across resolutions.

    Fusion into branch i: higher-resolution inputs (j < i) go through i-j stride-2 3x3 convs, lower
    ones (j > i) through a 1x1 conv and bilinear upsampling (align_corners=True, as in DIFFNet's and
    RA-Depth's HRNet, so their released weights behave identically); everything is summed, then ReLU.
    """

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(make_layer(BasicBlock, c, c, BLOCKS_PER_BRANCH) for c in channels)
        self.fuse_layers = nn.ModuleList()
        for i, c_out in enumerate(channels):
            row = nn.ModuleList()
            for j, c_in in enumerate(channels):
                if j > i:
                    row.append(_conv_bn(c_in, c_out, 1, 1, relu=False))
                elif j == i:
                    row.append(None)
                else:
                    steps = [_conv_bn(c_in, c_in, 3, 2, relu=True) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(c_in, c_out, 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        fused = []
        for i, row in enumerate(self.fuse_layers):
            total = None
            for j, layer in enumerate(row):  # summed in branch order, as the official code rounds it
                y = xs[j] if j == i else layer(xs[j])
                if j > i:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=True)
                total = y if total is None else total + y
            fused.append(self.relu(total))
        return fused


def _transition(previous: tuple[int, ...], current: tuple[int, ...]) -> nn.ModuleList:
    """Adapt existing branches (3x3 conv where channels change) and spawn a new stride-2 branch."""
    layers = nn.ModuleList()
    for i, c_out in enumerate(current):
        if i < len(previous):
            layers.append(_conv_bn(previous[i], c_out, 3, 1, relu=True) if previous[i] != c_out else None)
        else:
            layers.append(nn.Sequential(_conv_bn(previous[-1], c_out, 3, 2, relu=True)))
    return layers


class HRNetEncoder(nn.Module):
    """HRNet-W18 trunk. `forward` returns [stem 64@1/2, 18@1/4, 36@1/8, 72@1/16, 144@1/32].

    `channels=HRNET9_CHANNELS` builds HRNet-W9 (branches 9, 18, 36, 72; same stem and depth).

    `forward_stages` additionally keeps every intermediate stage output per resolution (DIFFNet's
    decoder concatenates them). Input normalisation is the identity: DIFFNet and RA-Depth feed the
    [0, 1] image straight into HRNet, and their released weights expect exactly that.
    """

    def __init__(
        self, channels: tuple[int, ...] = HRNET18_CHANNELS, modules: tuple[int, ...] = HRNET18_MODULES
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_layer(Bottleneck, 64, 64, 4)
        previous: tuple[int, ...] = (64 * Bottleneck.expansion,)
        # channels of every map `forward_stages` returns, per level (1/2 ... 1/32)
        self.stage_channels: list[list[int]] = [[64], [64], [], [], []]
        for stage, num_modules in enumerate(modules, start=2):
            current = tuple(channels[:stage])
            for i, c in enumerate(current):
                self.stage_channels[i + 1].append(c)
            setattr(self, f"transition{stage - 1}", _transition(previous, current))
            setattr(self, f"stage{stage}", nn.Sequential(*(HighResolutionModule(current) for _ in range(num_modules))))
            previous = current
        self.num_stages = len(modules)
        self.num_ch_enc = [64, *channels]
        init_weights(self)

    def forward_stages(self, x: Tensor) -> list[list[Tensor]]:
        """Per resolution level (1/2 ... 1/32), every feature map produced there, oldest first.

        Level 1/4 starts with the 64-channel stem output (before layer1); each later stage appends its
        branch outputs, so the last entry of every level is the final HRNet feature.
        """
        stem1 = self.relu(self.bn1(self.conv1(x)))
        stem2 = self.relu(self.bn2(self.conv2(stem1)))
        levels: list[list[Tensor]] = [[stem1], [stem2], [], [], []]
        ys = [self.layer1(stem2)]
        for stage in range(2, self.num_stages + 2):
            transition = getattr(self, f"transition{stage - 1}")
            xs = []
            for i, layer in enumerate(transition):
                source = ys[i] if i < len(ys) else ys[-1]  # a new branch grows from the coarsest one
                xs.append(source if layer is None else layer(source))
            ys = getattr(self, f"stage{stage}")(xs)
            for i, y in enumerate(ys):
                levels[i + 1].append(y)
        return levels

    def forward(self, x: Tensor) -> list[Tensor]:
        return [level[-1] for level in self.forward_stages(x)]
