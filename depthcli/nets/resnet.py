"""ResNet-18/50 encoders in plain torch, with torchvision's parameter names (conv1, bn1, layer1..4).

Keeping the names lets ImageNet/monodepth2 weights load by a plain prefix mapping. The ImageNet
classifier (avgpool + fc) is left out: depth nets never use it, and the published parameter counts
(monodepth2's 14.33 M) exclude it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthcli.nets.layers import INPUT_MEAN, INPUT_STD


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """1x1 conv + BN shortcut where the residual changes shape (torchvision's `downsample`)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34, HRNet branches)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_channels, channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) residual block (ResNet-50, HRNet stage 1); stride on the 3x3."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_layer(block: type[nn.Module], in_channels: int, channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """`blocks` residual blocks; the first one changes stride/channels."""
    out_channels = channels * block.expansion
    layers = [block(in_channels, channels, stride)]
    layers += [block(out_channels, channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def init_weights(module: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming (fan_out) convs, BN to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# depth -> (block, blocks per layer)
RESNET_LAYOUTS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNetEncoder(nn.Module):
    """ResNet trunk returning the 5 feature maps at strides 2, 4, 8, 16, 32 (monodepth2's encoder).

    `num_input_images` > 1 widens conv1 to `3 * num_input_images` channels (pose net input: frames
    concatenated along channels); see `expand_input_channels` for converting 3-channel weights.
    """

    def __init__(self, depth: int, num_input_images: int = 1) -> None:
        super().__init__()
        block, blocks = RESNET_LAYOUTS[depth]
        self.num_input_images = num_input_images
        self.conv1 = nn.Conv2d(3 * num_input_images, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = make_layer(block, 64, 64, blocks[0])
        self.layer2 = make_layer(block, 64 * block.expansion, 128, blocks[1], stride=2)
        self.layer3 = make_layer(block, 128 * block.expansion, 256, blocks[2], stride=2)
        self.layer4 = make_layer(block, 256 * block.expansion, 512, blocks[3], stride=2)
        self.num_ch_enc = [64] + [c * block.expansion for c in (64, 128, 256, 512)]
        init_weights(self)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = (x - INPUT_MEAN) / INPUT_STD
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [stem, f1, f2, f3, self.layer4(f3)]


def expand_input_channels(
    state_dict: dict[str, Tensor], num_input_images: int, key: str = "conv1.weight"
) -> dict[str, Tensor]:
    """Return a copy of a 3-channel encoder state dict whose `key` takes `num_input_images` stacked frames.

    monodepth2's trick: repeat the RGB filters once per frame and divide by the number of frames, so
    feeding the same image `n` times gives exactly the 3-channel network's response.
    """
    expanded = dict(state_dict)
    weight = state_dict[key]
    if weight.shape[1] != 3:
        raise ValueError(f"{key} has {weight.shape[1]} input channels; expected 3-channel weights")
    expanded[key] = torch.cat([weight] * num_input_images, dim=1) / num_input_images
    return expanded
