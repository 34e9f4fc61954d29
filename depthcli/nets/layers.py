"""Small blocks shared by the decoders (monodepth2 conventions: reflection padding, ELU, nearest upsampling)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# monodepth2's input normalisation, applied by the ResNet encoders to their [0, 1] input (HRNet: none).
INPUT_MEAN = 0.45
INPUT_STD = 0.225


class Conv3x3(nn.Module):
    """3x3 convolution (with bias) after 1-pixel reflection padding, so borders do not see zeros.

    The padding runs with autocast off: CPU autocast lists reflection padding as a float32 op, which
    turned every bf16 decoder activation into float32 and back around each conv (1.14x slower
    decoders). Padding only copies values, so it is exact in the input's own dtype.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            padded = self.pad(x)
        return self.conv(padded)


class ConvBlock(nn.Module):
    """Conv3x3 followed by ELU: the unit every monodepth2-family decoder is made of."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.conv(x))


class ConvBlock1x1(nn.Module):
    """1x1 convolution (with bias) followed by ELU: channel matching before a summed fusion."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.conv(x))


def upsample(x: Tensor, factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling by an integer factor (exact for sizes that are multiples of 32)."""
    return F.interpolate(x, scale_factor=factor, mode="nearest")


def in_float32(layer: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """`layer(x)` computed in float32, also under bf16/fp16 autocast: for the output heads.

    Disparities and poses are what the float32 losses and the saved predictions read; bf16 would keep
    8 bits of them (disparity steps of 1/256 around 0.5). A head is one small conv, so this is cheap.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        return layer(x.float())


def disparity_head(conv: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Sigmoid disparity `sigmoid(conv(x))`, in float32 (`in_float32`)."""
    return torch.sigmoid(in_float32(conv, x))
