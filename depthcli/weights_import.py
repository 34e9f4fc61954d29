"""Import released checkpoint folders of the reference projects into depthcli checkpoints.

A release folder holds plain state dicts: `encoder.pth` (encoder weights plus the training `height`,
`width` and, for monodepth2, `use_stereo`), `depth.pth` (decoder weights) and optionally
`pose_encoder.pth` / `pose.pth`. We translate their parameter names onto our nets and write a
checkpoint that `depthcli predict/eval` read directly.

monodepth2 naming (networks/resnet_encoder.py, networks/depth_decoder.py):
- encoder: a torchvision ResNet stored as attribute `encoder`, so `encoder.conv1.weight`,
  `encoder.layer1.0.conv1.weight`, ...; its ImageNet classifier `encoder.fc.*` is saved but unused.
- decoder: an `nn.ModuleList` named `decoder` built from an OrderedDict filled in the order
  ("upconv", 4, 0), ("upconv", 4, 1), ..., ("upconv", 0, 1), then ("dispconv", s) for s = 0..3.
  So `decoder.k` for k < 10 is upconv stage 4 - k // 2, block k % 2, and `decoder.(10 + s)` is the
  disparity conv of scale s. A ConvBlock holds `conv` (a Conv3x3 holding `conv`) and an ELU, hence
  `decoder.0.conv.conv.weight` and `decoder.10.conv.weight`.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from depthcli.engine.checkpoint import save_checkpoint
from depthcli.errors import DepthcliError
from depthcli.paths import refuse_output_overwriting_inputs

PROJECTS = ("monodepth2", "diffnet", "radepth")
RELEASE_FILES = ("encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth")  # what `--out` must not replace
# Projects whose released parameter layout has been mapped and verified against a re-creation.
SUPPORTED_PROJECTS = ("monodepth2",)
# Non-tensor entries the reference trainers store next to the encoder weights.
ENCODER_METADATA_KEYS = ("height", "width", "use_stereo")
# monodepth2's defaults for the depth range, used by its evaluation and ours.
MIN_DEPTH = 0.1
MAX_DEPTH = 100.0
_MONODEPTH2_UPCONV_BLOCKS = 10  # 5 stages x 2 ConvBlocks before the dispconvs in `decoder`
_SHOW_KEYS = 5


def load_reference_file(path: Path) -> dict[str, Any]:
    """`torch.load(weights_only=True)` of a release file; anything unreadable -> DepthcliError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DepthcliError(f"{path} cannot be read as a state dict ({reason[:160]}); re-download it") from exc
    if not isinstance(state, dict):
        raise DepthcliError(f"{path} holds a {type(state).__name__}, not a state dict; give the release folder")
    return state


def monodepth2_encoder_names(state: dict[str, Any]) -> tuple[dict[str, Tensor], list[str]]:
    """`encoder.X` -> `X` for our ResNet encoder; returns (mapped, keys that do not follow the layout)."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        if key in ENCODER_METADATA_KEYS or key.startswith("encoder.fc."):
            continue
        if key.startswith("encoder.") and isinstance(value, Tensor):
            mapped[key.removeprefix("encoder.")] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


def monodepth2_decoder_names(state: dict[str, Any], scales: tuple[int, ...]) -> tuple[dict[str, Tensor], list[str]]:
    """`decoder.k.REST` -> `upconvs.k.REST` (k < 10) or `dispconvs.i.REST` (scale s = k - 10 = scales[i])."""
    mapped, unmatched = {}, []
    for key, value in state.items():
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "decoder" or not parts[1].isdigit() or not isinstance(value, Tensor):
            unmatched.append(key)
            continue
        index, rest = int(parts[1]), parts[2]
        if index < _MONODEPTH2_UPCONV_BLOCKS:
            mapped[f"upconvs.{index}.{rest}"] = value
        elif index - _MONODEPTH2_UPCONV_BLOCKS in scales:
            mapped[f"dispconvs.{scales.index(index - _MONODEPTH2_UPCONV_BLOCKS)}.{rest}"] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


def _load_mapped(module: nn.Module, mapped: dict[str, Tensor], unmatched: list[str], source: Path) -> None:
    """Strict load with one readable line for every way the names or shapes can disagree.

    BatchNorm's `num_batches_tracked` counters are optional: files saved by PyTorch < 0.4.1 lack them
    and they do not affect inference, so ours are kept.
    """
    own = module.state_dict()
    unexpected = unmatched + [key for key in mapped if key not in own]
    mapped = {**{key: own[key] for key in own if key.endswith(".num_batches_tracked")}, **mapped}
    missing = [key for key in own if key not in mapped]
    if unexpected or missing:
        parts = []
        if unexpected:
            parts.append(f"unmatched keys {unexpected[:_SHOW_KEYS]}" + (" ..." if len(unexpected) > _SHOW_KEYS else ""))
        if missing:
            parts.append(f"missing keys {missing[:_SHOW_KEYS]}" + (" ..." if len(missing) > _SHOW_KEYS else ""))
        raise DepthcliError(
            f"{source} does not follow the expected layout: {'; '.join(parts)}; is it the right project?"
        )
    wrong = [
        f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}"
        for key, value in mapped.items()
        if value.shape != own[key].shape
    ]
    if wrong:
        raise DepthcliError(f"{source} has tensors of the wrong shape: {wrong[:3]}; is it a different network size?")
    module.load_state_dict(mapped)


def _metadata_size(encoder_state: dict[str, Any], path: Path) -> tuple[int, int]:
    try:
        width, height = int(encoder_state["width"]), int(encoder_state["height"])
    except (KeyError, TypeError, ValueError):
        raise DepthcliError(
            f"{path} lacks the integer 'height'/'width' the reference trainers store; is it encoder.pth?"
        ) from None
    if width % 32 or height % 32 or width <= 0 or height <= 0:
        raise DepthcliError(f"{path} says the net was trained at {width}x{height}, not multiples of 32")
    return width, height


def import_reference_weights(project: str, src_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a release folder of `project` and return a depthcli "depth" checkpoint payload."""
    from depthcli.nets import build_depth_net

    if project not in PROJECTS:
        raise DepthcliError(f"unknown project {project!r}; choose one of {', '.join(PROJECTS)}")
    if project not in SUPPORTED_PROJECTS:
        raise DepthcliError(
            f"importing {project} releases is not supported yet (its parameter layout has not been mapped "
            f"onto depthcli's {project} net); supported: {', '.join(SUPPORTED_PROJECTS)}"
        )
    src = Path(src_dir)
    if not src.is_dir():
        raise DepthcliError(f"release folder {src} does not exist; give the folder holding encoder.pth and depth.pth")
    for name in ("encoder.pth", "depth.pth"):
        if not (src / name).is_file():
            raise DepthcliError(
                f"release folder {src} has no {name}; a {project} release holds encoder.pth and depth.pth"
            )
    encoder_state = load_reference_file(src / "encoder.pth")
    depth_state = load_reference_file(src / "depth.pth")
    size = _metadata_size(encoder_state, src / "encoder.pth")

    model = build_depth_net(project)
    _load_mapped(model.encoder, *monodepth2_encoder_names(encoder_state), src / "encoder.pth")
    _load_mapped(model.decoder, *monodepth2_decoder_names(depth_state, tuple(model.scales)), src / "depth.pth")
    config = {
        "net": project,
        "size": [size[0], size[1]],
        "min_depth": MIN_DEPTH,
        "max_depth": MAX_DEPTH,
        "imported_from": str(src.resolve()),
    }
    if "use_stereo" in encoder_state:
        config["use_stereo"] = bool(encoder_state["use_stereo"])
    ignored = [name for name in ("pose_encoder.pth", "pose.pth") if (src / name).is_file()]
    return {"kind": "depth", "config": config, "model": model.state_dict(), "ignored_files": ignored}


def import_to_checkpoint(
    project: str, src_dir: str | os.PathLike, out: str | os.PathLike
) -> tuple[Path, dict[str, Any]]:
    """`import_reference_weights` + atomic save; returns (checkpoint path, payload)."""
    release = [(f"release file {name}", Path(src_dir) / name) for name in RELEASE_FILES]
    refuse_output_overwriting_inputs([("--out", out)], release)
    payload = import_reference_weights(project, src_dir)
    return save_checkpoint(out, payload), payload
