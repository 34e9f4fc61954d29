"""Parameter and multiply-add counts, measured with forward hooks on one batch-1 forward pass."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthcli.errors import out_of_memory_as_error


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements (trainable or not; buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in module.parameters())


def _layer_macs(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> int:
    if isinstance(layer, nn.Conv2d):
        # every output element is a dot product over (in/groups) x kh x kw inputs
        kh, kw = layer.kernel_size
        return output.numel() * (layer.in_channels // layer.groups) * kh * kw
    if isinstance(layer, nn.ConvTranspose2d):
        # every input element is scattered into (out/groups) x kh x kw outputs
        kh, kw = layer.kernel_size
        return inputs[0].numel() * (layer.out_channels // layer.groups) * kh * kw
    if isinstance(layer, nn.Linear):
        return output.numel() * layer.in_features
    return 0


def count_macs(module: nn.Module, input_size: tuple[int, int], num_inputs: int = 1, channels: int = 3) -> int:
    """Multiply-adds of all Conv2d/ConvTranspose2d/Linear layers for batch-1 inputs of (width, height).

    The module gets `num_inputs` tensors of shape (1, channels, height, width) (the pose net: 2).
    Element-wise work (BN, activations, pooling, interpolation) is not counted, as in published tables.
    """
    width, height = input_size
    total = 0

    def hook(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += _layer_macs(layer, inputs, output)

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    was_training = module.training
    try:
        module.eval()
        what = f"measure {type(module).__name__} at {width}x{height}"
        with torch.no_grad(), out_of_memory_as_error(what, "choose a smaller --size"):
            module(*(torch.rand(1, channels, height, width) for _ in range(num_inputs)))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def model_summary(name: str, size: tuple[int, int] = (640, 192)) -> dict:
    """{name, params, macs, scales} of the registered depth net `name` at input (width, height)."""
    from depthcli.nets.registry import build_depth_net

    net = build_depth_net(name)
    return {"name": name, "params": count_parameters(net), "macs": count_macs(net, size), "scales": list(net.scales)}


def pose_summary(name: str = "resnet18", size: tuple[int, int] = (640, 192)) -> dict:
    """Same keys as `model_summary` for the two-frame pose net (named `pose-<encoder>`, no scales)."""
    from depthcli.nets.registry import build_pose_net

    net = build_pose_net(name)
    return {
        "name": f"pose-{name}",
        "params": count_parameters(net),
        "macs": count_macs(net, size, num_inputs=2),
        "scales": [],
    }
