"""ImageNet classification weights as users download them, recognised by their keys, onto depthcli's encoders.

Every preset's paper started from ImageNet: monodepth2 from torchvision's ResNet-18 (depth and pose
encoders), DIFFNet and RA-Depth from the HRNet-W18-C file of HRNet-Image-Classification (depth
encoder) and torchvision's ResNet-18 (pose encoder), FCRN from ResNet-50. Nothing is downloaded here:
users bring the files. Layouts (docs/released-weights.md):

- torchvision ResNet (`resnet18-f37072fd.pth`, `resnet50-*.pth`): `conv1.weight`, `bn1.*`,
  `layer1.0.conv1.weight`, ..., and the classifier `fc.*`, which depth nets do not use.
- HRNet-W18-C: the HRNet names depthcli's encoder shares (`conv1`, `bn1`, `conv2`, `bn2`, `layer1`,
  `transitionN`, `stageN`), plus a classification head (`incre_modules`, `downsamp_modules`,
  `final_layer`, `classifier`) that depth nets do not use.

The pose encoder takes two stacked frames: its first conv gets the ImageNet RGB filters repeated per
frame and divided by two, as monodepth2 does, so a frame pair of identical images sees the ImageNet
response.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from depthcli.errors import DepthcliError
from depthcli.nets.resnet import expand_input_channels
from depthcli.weights.state_files import load_mapped

# Keys of the classification heads: loaded files may hold them, depth nets have no use for them.
CLASSIFIER_PREFIXES = ("fc.", "incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
# (blocks per ResNet stage, bottleneck) -> depth, to name what a file holds
_RESNET_DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
LAYOUT_NAMES = {
    "resnet": "torchvision ImageNet ResNet-{depth}",
    "hrnet": "HRNet-W{width}-C ImageNet classification",
}
# What each depth net's paper started from, and the file to give (the name it is published under).
PAPER_STARTS = {
    "monodepth2": ("ImageNet ResNet-18", "--encoder-init resnet18-f37072fd.pth (it also initialises the pose net)"),
    "diffnet": (
        "ImageNet HRNet-W18-C and ResNet-18",
        "--encoder-init hrnetv2_w18_imagenet_pretrained.pth --pose-encoder-init resnet18-f37072fd.pth",
    ),
    "radepth": (
        "ImageNet HRNet-W18-C and ResNet-18",
        "--encoder-init hrnetv2_w18_imagenet_pretrained.pth --pose-encoder-init resnet18-f37072fd.pth",
    ),
    "nyu-resnet50": ("ImageNet ResNet-50", "--encoder-init resnet50-0676ba61.pth"),
}


def plain_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Unwrap `{"state_dict": ...}` training checkpoints and strip DataParallel's `module.` prefix."""
    inner = state.get("state_dict")
    if isinstance(inner, dict) and inner and all(isinstance(value, Tensor) for value in inner.values()):
        state = inner
    if state and all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def recognise(state: dict[str, Any]) -> tuple[str, str] | None:
    """(depthcli encoder name, human name) of an ImageNet file, read off its keys; None if unrecognised."""
    transition = state.get("transition1.0.0.weight")
    if isinstance(transition, Tensor) and "stage2.0.branches.0.0.conv1.weight" in state:
        width = int(transition.shape[0])
        return f"hrnet{width}", LAYOUT_NAMES["hrnet"].format(width=width)
    if "conv1.weight" in state and "layer4.0.conv1.weight" in state:
        blocks = tuple(len({key.split(".")[1] for key in state if key.startswith(f"layer{i}.")}) for i in range(1, 5))
        depth = _RESNET_DEPTHS.get((blocks, "layer1.0.conv3.weight" in state))
        if depth is not None:
            return f"resnet{depth}", LAYOUT_NAMES["resnet"].format(depth=depth)
    return None


def encoder_state(state: dict[str, Any]) -> tuple[dict[str, Tensor], list[str]]:
    """(the encoder's tensors, keys of no known part) of an ImageNet file, classifier heads dropped."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            continue
        if isinstance(value, Tensor):
            mapped[key] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


def load_into_encoder(encoder: nn.Module, own_name: str, state: dict[str, Any], source: Path) -> str:
    """Load an ImageNet file into `encoder` (registry name `own_name`); returns what was loaded, in words.

    A pose encoder (6 input channels) gets conv1 repeated per frame and halved, as monodepth2 does.
    """
    found = recognise(state)
    if found is None:
        raise DepthcliError(
            f"{source} is neither a depthcli checkpoint nor a recognised ImageNet file (torchvision ResNet-18/50, "
            "HRNet-W18-C); give one of those"
        )
    name, description = found
    if name != own_name:
        raise DepthcliError(
            f"{source} holds {description} weights but the encoder to initialise is {own_name}; give the "
            f"ImageNet file of {own_name}"
        )
    mapped, unmatched = encoder_state(state)
    frames = getattr(encoder, "num_input_images", 1)
    note = ""
    if frames > 1:
        mapped = expand_input_channels(mapped, frames)
        note = f", conv1 repeated for {frames} frames and divided by {frames}"
    load_mapped(encoder, mapped, unmatched, source)
    return f"{description} weights in {source} ({len(mapped)} tensors; classifier ignored{note})"


def paper_start_note(net: str) -> str | None:
    """One line for a run of `net` from random weights whose paper started from ImageNet (None: no such paper)."""
    if net not in PAPER_STARTS:
        return None
    weights, flags = PAPER_STARTS[net]
    return (
        f"note: the {net} paper started from {weights} weights; this run starts from random weights. To start as "
        f"the paper did, download the file(s) and add {flags}"
    )
