"""A stand-in for `torchvision.models`' ResNets, built from depthcli's plain-torch ResNet blocks.

monodepth2's encoder subclasses torchvision's `ResNet`, calls its `_make_layer` and builds the ResNets
through `resnet18(pretrained)` etc. torchvision has no wheel for every torch build (this CPU torch
among them), so `install()` registers this module as `torchvision`, `torchvision.models` and
`torchvision.models.resnet` before monodepth2 is imported. The blocks are depthcli's, whose parameter
names (conv1, bn1, conv2, bn2, downsample.0/1) are torchvision's, so state dicts are interchangeable.
Same layout and initialisation as torchvision's ResNet; no pretrained weights (nothing is downloaded).
"""

from __future__ import annotations

import sys
import types

from torch import Tensor, nn

from depthcli.nets.resnet import BasicBlock, Bottleneck, init_weights, make_layer

model_urls: dict[str, str] = {}  # read by monodepth2 only when asked for ImageNet weights


class ResNet(nn.Module):
    """torchvision's ResNet attributes (conv1, bn1, relu, maxpool, layer1..4, avgpool, fc, inplanes)."""

    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_weights(self)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layer = make_layer(block, self.inplanes, planes, blocks, stride)
        self.inplanes = planes * block.expansion
        return layer

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _builder(block: type[nn.Module], layers: list[int]):
    def build(pretrained: bool = False, **kwargs) -> ResNet:
        if pretrained:
            raise RuntimeError("the torchvision stand-in has no pretrained weights; use weights_init 'scratch'")
        return ResNet(block, layers, **kwargs)

    return build


resnet18 = _builder(BasicBlock, [2, 2, 2, 2])
resnet34 = _builder(BasicBlock, [3, 4, 6, 3])
resnet50 = _builder(Bottleneck, [3, 4, 6, 3])
resnet101 = _builder(Bottleneck, [3, 4, 23, 3])
resnet152 = _builder(Bottleneck, [3, 8, 36, 3])


def install() -> None:
    """Register the stand-in as torchvision (only where the real torchvision cannot be imported)."""
    try:
        import torchvision.models  # noqa: F401

        return
    except ImportError:
        pass
    this = sys.modules[__name__]
    package = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    for name in ("ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        setattr(models, name, getattr(this, name))
    models.resnet = this
    package.models = models
    sys.modules.update({"torchvision": package, "torchvision.models": models, "torchvision.models.resnet": this})
