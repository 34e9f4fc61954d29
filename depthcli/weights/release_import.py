"""Import released checkpoint folders of the official projects into depthcli checkpoints.

A release folder holds plain state dicts, as the official trainers' `save_model` writes them:
`encoder.pth` (encoder weights plus the training `height`, `width` and `use_stereo`), `depth.pth`
(decoder weights) and, from training runs, `pose_encoder.pth` + `pose.pth` (the pose net) and
`adam.pth` (ignored). The names are translated onto depthcli's nets by `depthcli.weights.release_layouts`; the
result is a "depth" checkpoint laid out like a training checkpoint (`model` = the depth net,
`networks["pose"]` = the pose net), so `depthcli predict/eval` read it and `depthcli train --init`
starts from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from depthcli.checkpoints import save_checkpoint
from depthcli.errors import DepthcliError
from depthcli.paths import refuse_output_overwriting_inputs
from depthcli.weights.release_layouts import (
    diffnet_decoder_names,
    guess_project,
    hrnet_encoder_names,
    monodepth2_decoder_names,
    pose_decoder_names,
    radepth_decoder_names,
    resnet_encoder_names,
)
from depthcli.weights.state_files import load_mapped, load_reference_file

PROJECTS = ("monodepth2", "diffnet", "radepth")
DEPTH_FILES = ("encoder.pth", "depth.pth")
POSE_FILES = ("pose_encoder.pth", "pose.pth")
# Every official project trains monodepth2's separate two-frame ResNet-18 pose net.
POSE_NET = "resnet18"
# monodepth2's defaults for the depth range, used by the official evaluations and ours.
MIN_DEPTH = 0.1
MAX_DEPTH = 100.0


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


def _decoder_names(project: str, state: dict[str, Any], scales: tuple[int, ...], source: Path):
    if project == "monodepth2":
        return monodepth2_decoder_names(state, scales)
    if project == "diffnet":
        return diffnet_decoder_names(state, scales, str(source))
    return radepth_decoder_names(state)


def _check_folder(project: str, src: Path) -> bool:
    """DepthcliError unless `src` holds a complete release; returns whether it holds a pose net too."""
    if not src.is_dir():
        raise DepthcliError(f"release folder {src} does not exist; give the folder holding encoder.pth and depth.pth")
    for name in DEPTH_FILES:
        if not (src / name).is_file():
            raise DepthcliError(
                f"release folder {src} has no {name}; a {project} release holds encoder.pth and depth.pth"
            )
    present = [name for name in POSE_FILES if (src / name).is_file()]
    if len(present) == 1:
        absent = next(name for name in POSE_FILES if name not in present)
        raise DepthcliError(
            f"release folder {src} has {present[0]} but no {absent}; the pose net needs both files "
            f"(move {present[0]} away to import the depth net alone)"
        )
    return bool(present)


def import_pose_net(src: Path) -> nn.Module:
    """monodepth2's pose net from `pose_encoder.pth` + `pose.pth` (the same layout in all three projects)."""
    from depthcli.nets import build_pose_net

    pose = build_pose_net(POSE_NET)
    encoder_file, decoder_file = (src / name for name in POSE_FILES)
    load_mapped(pose.encoder, *resnet_encoder_names(load_reference_file(encoder_file)), encoder_file)
    load_mapped(pose.decoder, *pose_decoder_names(load_reference_file(decoder_file)), decoder_file)
    return pose


def import_reference_weights(project: str, src_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a release folder of `project` and return a depthcli "depth" checkpoint payload.

    The payload holds the depth net under "model" and, when the folder has one, the pose net under
    `networks["pose"]`, as training checkpoints do; "imported_files" lists what was read.
    """
    from depthcli.nets import build_depth_net

    if project not in PROJECTS:
        raise DepthcliError(f"unknown project {project!r}; choose one of {', '.join(PROJECTS)}")
    src = Path(src_dir)
    has_pose = _check_folder(project, src)
    encoder_file, depth_file = (src / name for name in DEPTH_FILES)
    encoder_state, depth_state = load_reference_file(encoder_file), load_reference_file(depth_file)
    found = guess_project(encoder_state, depth_state)
    if found is not None and found != project:
        raise DepthcliError(
            f"release folder {src} holds a {found} release, not {project} (told by the key names of "
            f"encoder.pth and depth.pth); run `depthcli weights import {found} {src}`"
        )
    size = _metadata_size(encoder_state, encoder_file)

    model = build_depth_net(project)
    encoder_names = resnet_encoder_names if project == "monodepth2" else hrnet_encoder_names
    load_mapped(model.encoder, *encoder_names(encoder_state), encoder_file)
    load_mapped(model.decoder, *_decoder_names(project, depth_state, tuple(model.scales), depth_file), depth_file)
    config = {
        "net": project,
        "size": [size[0], size[1]],
        "min_depth": MIN_DEPTH,
        "max_depth": MAX_DEPTH,
        "imported_from": str(src.resolve()),
    }
    if "use_stereo" in encoder_state:
        config["use_stereo"] = bool(encoder_state["use_stereo"])
    payload = {"kind": "depth", "config": config, "model": model.state_dict(), "imported_files": list(DEPTH_FILES)}
    if has_pose:
        config["pose_net"] = POSE_NET
        payload["networks"] = {"pose": import_pose_net(src).state_dict()}
        payload["imported_files"] += list(POSE_FILES)
    return payload


def import_to_checkpoint(
    project: str, src_dir: str | os.PathLike, out: str | os.PathLike
) -> tuple[Path, dict[str, Any]]:
    """`import_reference_weights` + atomic save; returns (checkpoint path, payload)."""
    release = [(f"release file {name}", Path(src_dir) / name) for name in DEPTH_FILES + POSE_FILES]
    refuse_output_overwriting_inputs([("--out", out)], release)
    payload = import_reference_weights(project, src_dir)
    return save_checkpoint(out, payload), payload
