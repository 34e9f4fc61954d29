"""Parameter names of the official release files, translated onto depthcli's nets (docs/released-weights.md).

Every function takes a loaded state dict and returns `(mapped, unmatched)`: the tensors under depthcli's
names, and the keys that do not follow the layout (so that a file of the wrong project is named
instead of half-loaded). The layouts, checked against the official code by the committed fixtures:

- monodepth2 encoder / every pose encoder: a torchvision ResNet stored as attribute `encoder`
  (`encoder.conv1.weight`, `encoder.layer1.0.conv1.weight`, ...); its ImageNet classifier `encoder.fc.*`
  is saved but never used.
- monodepth2 decoder: `decoder.k` is the k-th module of an OrderedDict filled upconv(4,0), upconv(4,1),
  ..., upconv(0,1), then dispconv(0..3): k < 10 is upconv stage 4 - k // 2, block k % 2.
- DIFFNet and RA-Depth encoders: the HRNet-W18 state dict itself (`conv1.weight`, `transition1.0.0.weight`,
  `stage2.0.branches.0.0.conv1.weight`, ...), names that depthcli's HRNetEncoder shares.
- DIFFNet decoder: its modules live in a ModuleDict `convs` (up_x9_0, up_x9_1, attention modules "72",
  "36", "18", "9", dispConvScale0..3) *and* a ModuleList `decoder` of the same modules, so every tensor
  is saved twice (`convs.72.conv_se.weight` is `decoder.2.conv_se.weight`).
- RA-Depth decoder: only the ModuleList `decoder.0` .. `decoder.24` (its `convs` is a plain dict), in
  the order the official code fills it: per fusion round the parallel 3x3 blocks, then the 1x1 blocks
  source by source (coarsest target first), then the two upsampling blocks and the disparity conv.
- every pose decoder (monodepth2's): ModuleList `net` = squeeze 1x1, pose 3x3, pose 3x3, 1x1 to 12
  channels (two poses).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from depthcli.errors import DepthcliError
from depthcli.nets.radepth import FUSION_ROUNDS

# Non-tensor entries the official trainers store next to the encoder weights.
ENCODER_METADATA_KEYS = ("height", "width", "use_stereo")
_MONODEPTH2_UPCONV_BLOCKS = 10  # 5 stages x 2 ConvBlocks before the dispconvs in `decoder`
# DIFFNet's `convs` names in registration order (= `decoder` index) -> depthcli DiffNetDecoder module
_DIFFNET_MODULES = (
    ("up_x9_0", "up_conv0"),
    ("up_x9_1", "up_conv1"),
    ("72", "fusions.0"),
    ("36", "fusions.1"),
    ("18", "fusions.2"),
    ("9", "fusions.3"),
)
_DIFFNET_DISPCONV = "dispConvScale"
_POSE_MODULES = ("squeeze", "pose0", "pose1", "pose2")

Mapped = tuple[dict[str, Tensor], list[str]]


def _split(key: str) -> tuple[str, int | None, str]:
    """`head.<int>.rest` -> (head, int, rest); (key, None, "") when the key has no such shape."""
    parts = key.split(".", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1]), parts[2]
    return key, None, ""


def resnet_encoder_names(state: dict[str, Any]) -> Mapped:
    """monodepth2-style `encoder.X` -> `X` for depthcli's ResNetEncoder (`encoder.fc.*` dropped)."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        if key in ENCODER_METADATA_KEYS or key.startswith("encoder.fc."):
            continue
        if key.startswith("encoder.") and isinstance(value, Tensor):
            mapped[key.removeprefix("encoder.")] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


def hrnet_encoder_names(state: dict[str, Any]) -> Mapped:
    """DIFFNet / RA-Depth `encoder.pth`: the HRNet names are depthcli's; only the size entries go."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        if key in ENCODER_METADATA_KEYS:
            continue
        if isinstance(value, Tensor) and not key.startswith("encoder."):
            mapped[key] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


def monodepth2_decoder_names(state: dict[str, Any], scales: tuple[int, ...]) -> Mapped:
    """`decoder.k.REST` -> `upconvs.k.REST` (k < 10) or `dispconvs.i.REST` (scale k - 10 = scales[i])."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        head, index, rest = _split(key)
        if head != "decoder" or index is None or not isinstance(value, Tensor):
            unmatched.append(key)
        elif index < _MONODEPTH2_UPCONV_BLOCKS:
            mapped[f"upconvs.{index}.{rest}"] = value
        elif index - _MONODEPTH2_UPCONV_BLOCKS in scales:
            mapped[f"dispconvs.{scales.index(index - _MONODEPTH2_UPCONV_BLOCKS)}.{rest}"] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


def _diffnet_target(name: str, rest: str, scales: tuple[int, ...]) -> str | None:
    for official, ours in _DIFFNET_MODULES:
        if name == official:
            return f"{ours}.{rest.replace('conv_se.', 'conv.', 1)}"
    if name.startswith(_DIFFNET_DISPCONV) and name.removeprefix(_DIFFNET_DISPCONV).isdigit():
        scale = int(name.removeprefix(_DIFFNET_DISPCONV))
        return f"dispconvs.{scales.index(scale)}.{rest}" if scale in scales else None
    return None


def diffnet_decoder_names(state: dict[str, Any], scales: tuple[int, ...], source: str = "depth.pth") -> Mapped:
    """DIFFNet `depth.pth`: `convs.<name>.*` and `decoder.<i>.*` must agree; either half alone also loads."""
    names = [official for official, _ in _DIFFNET_MODULES] + [f"{_DIFFNET_DISPCONV}{s}" for s in range(4)]
    mapped, unmatched, origin = {}, [], {}
    for key, value in state.items():
        head, rest = key.split(".", 1) if "." in key else (key, "")
        module, _, inner = rest.partition(".")
        if head == "decoder" and module.isdigit() and int(module) < len(names):
            module = names[int(module)]
        target = _diffnet_target(module, inner, scales) if head in ("convs", "decoder") else None
        if target is None or not isinstance(value, Tensor):
            unmatched.append(key)
            continue
        if target in mapped and not torch.equal(mapped[target], value):
            raise DepthcliError(
                f"{source} stores {origin[target]} and {key} (the same DIFFNet module, saved twice) with different "
                "values; the file is inconsistent, re-export it from the official code"
            )
        mapped[target], origin[target] = value, key
    return mapped, unmatched


def radepth_decoder_module_names() -> list[str]:
    """depthcli RADepthDecoder module names in the order of RA-Depth's `decoder` ModuleList."""
    names = []
    for round_index, branches in enumerate(FUSION_ROUNDS):
        names += [f"rounds.{round_index}.convs.{b}" for b in branches]
        names += [
            f"rounds.{round_index}.fuse.{source}_to_{target}"
            for position, source in enumerate(branches)
            for target in reversed(branches[:position])
        ]
    return names + ["up_conv0", "up_conv1", "dispconv"]


def radepth_decoder_names(state: dict[str, Any]) -> Mapped:
    """RA-Depth `depth.pth`: `decoder.k.REST` -> the k-th module; its 1x1 blocks wrap the conv once more."""
    modules = radepth_decoder_module_names()
    mapped, unmatched = {}, []
    for key, value in state.items():
        head, index, rest = _split(key)
        if head != "decoder" or index is None or index >= len(modules) or not isinstance(value, Tensor):
            unmatched.append(key)
            continue
        if ".fuse." in modules[index]:
            rest = rest.replace("conv.conv.", "conv.", 1)
        mapped[f"{modules[index]}.{rest}"] = value
    return mapped, unmatched


def pose_decoder_names(state: dict[str, Any]) -> Mapped:
    """monodepth2's `pose.pth`: `net.0..3` -> squeeze, pose0, pose1, pose2 of depthcli's PoseDecoder."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        head, index, rest = _split(key)
        if head != "net" or index is None or index >= len(_POSE_MODULES) or not isinstance(value, Tensor):
            unmatched.append(key)
        else:
            mapped[f"{_POSE_MODULES[index]}.{rest}"] = value
    return mapped, unmatched


def guess_project(encoder_state: dict[str, Any], depth_state: dict[str, Any]) -> str | None:
    """Which official project wrote these files, read off their key layout (None: none of them)."""
    if any(key.startswith("encoder.layer1.") for key in encoder_state):
        return "monodepth2"
    if "transition1.0.0.weight" not in encoder_state:
        return None
    if any(key.startswith("convs.") for key in depth_state) or "decoder.2.conv_se.weight" in depth_state:
        return "diffnet"
    if "decoder.24.conv.weight" in depth_state:
        return "radepth"
    return None
