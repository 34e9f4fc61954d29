"""Where a depth training run's networks start: a checkpoint (`init`), an encoder (`encoder_init`,
`pose_encoder_init`), or random weights.

- `init`: a depthcli "depth" checkpoint (a training run's, or `depthcli weights import`'s): every
  network it holds (the depth net, and the pose net when present) starts from it, as monodepth2's
  `--load_weights_folder` does; the optimizer and the run directory are new.
- `encoder_init`: a depthcli encoder/depth checkpoint (e.g. from `depthcli pretrain`), or an ImageNet
  file as users download it (`depthcli.weights.imagenet`). An ImageNet ResNet-18 also starts the pose
  encoder, as in monodepth2, unless `pose_encoder_init` names another file.
- `pose_encoder_init`: an ImageNet ResNet-18 file for the pose encoder (DIFFNet and RA-Depth start
  their pose net from it while their depth encoder is an HRNet).

`initialise(task, config)` loads, in that order, and returns what it loaded in words; the CLI calls
`describe(config)` first to print those lines (and, for a random start, what the paper started from).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from depthcli.checkpoints import FORMAT, load_checkpoint
from depthcli.errors import DepthcliError
from depthcli.nets.loading import depth_config, encoder_name_of, load_encoder_init
from depthcli.nets.pose import predates_two_poses, widen_to_two_poses
from depthcli.paths import check_input_file
from depthcli.recipe_configs import DepthModelConfig
from depthcli.weights.imagenet import load_into_encoder, paper_start_note, plain_state_dict, recognise
from depthcli.weights.state_files import load_reference_file

# Config entries that must agree between an `init` checkpoint and the run it starts.
_MATCHING_KEYS = ("net", "pose_net")


def _setting(config: Any, name: str) -> str | None:
    return getattr(config, name, None) or None


def _check_init(payload: dict[str, Any], path: str, config: Any, kind: str) -> DepthModelConfig:
    """The checkpoint's checked depth config, once its kind and nets match the run's."""
    if payload.get("kind") != kind:
        hint = "; use --encoder-init for encoder checkpoints" if payload.get("kind") in ("encoder", "pretrain") else ""
        raise DepthcliError(
            f"--init {path} holds a {payload.get('kind')!r} checkpoint; a {kind!r} checkpoint is needed (a training "
            f"run's last/best.ckpt, or `depthcli weights import`){hint}"
        )
    stored = depth_config(payload, path)
    for key in _MATCHING_KEYS:
        ours, theirs = getattr(config, key, None), getattr(stored, key)
        if theirs is not None and ours is not None and theirs != ours:
            raise DepthcliError(
                f"--init {path} holds {key} {theirs!r} but this run trains {ours!r}; pick the matching preset "
                f"(--preset {theirs}) or another checkpoint"
            )
    ours, theirs = getattr(config, "scales", None), stored.scales
    if theirs is not None and ours is not None and sorted(theirs) != sorted(ours):
        listed = "[" + ",".join(str(scale) for scale in sorted(theirs)) + "]"
        raise DepthcliError(
            f"--init {path} holds disparity heads for scales {listed} but this run trains scales "
            f"{sorted(ours)}; add --set scales={listed} or start from another checkpoint"
        )
    return stored


def _load(module: nn.Module, state: dict, path: str, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DepthcliError(f"--init {path} does not fit the {what}: {first[:200]}") from exc


def _init_from_checkpoint(task: nn.Module, path: str) -> str:
    payload = load_checkpoint(path)
    stored = _check_init(payload, path, task.config, task.checkpoint_kind)
    primary = task.primary_network
    _load(task.networks[primary], payload["model"], path, f"{primary} net {stored.net}")
    loaded, notes = [primary], []
    for name, state in (payload.get("networks") or {}).items():
        if name in task.networks:
            if name == "pose" and predates_two_poses(state):
                state = widen_to_two_poses(state)
                notes.append("; its one-pose head is widened to the two-pose decoder, the first pose unchanged")
            _load(task.networks[name], state, path, f"{name} net")
            loaded.append(name)
    nets = f"{' and '.join(loaded)} net" + ("s start" if len(loaded) > 1 else " starts")
    return f"{nets} from {path} ({stored.imported_from or 'a depthcli training run'}{''.join(notes)})"


def _read(path: str, flag: str) -> dict[str, Any]:
    return load_reference_file(check_input_file(path, flag, "check the path"))


def _imagenet(part: str, encoder: nn.Module, state: dict[str, Any], path: str) -> str:
    return f"{part} starts from " + load_into_encoder(encoder, encoder_name_of(encoder), state, Path(path))


def initialise(task: nn.Module, config: Any) -> list[str]:
    """Load what `config.init` / `encoder_init` / `pose_encoder_init` name into `task`'s networks.

    Returns one line per loaded part ("depth encoder starts from ..."); none when all start at random.
    """
    init, encoder_init = _setting(config, "init"), _setting(config, "encoder_init")
    pose_init = _setting(config, "pose_encoder_init")
    if init and (encoder_init or pose_init):
        raise DepthcliError("--init already sets every network; drop --encoder-init / --pose-encoder-init")
    if init:
        return [_init_from_checkpoint(task, init)]
    lines = []
    model, pose = task.networks[task.primary_network], task.networks["pose"] if "pose" in task.networks else None
    if pose_init and pose is None:
        raise DepthcliError("--pose-encoder-init: this task has no pose net (only self-supervised training has one)")
    if encoder_init:
        state = _read(encoder_init, "--encoder-init")
        if state.get("format") == FORMAT:
            load_encoder_init(model, encoder_init)
            lines.append(f"depth encoder starts from depthcli {state.get('kind')} checkpoint {encoder_init}")
        else:
            state = plain_state_dict(state)
            lines.append(_imagenet("depth encoder", model.encoder, state, encoder_init))
            found = recognise(state)
            if pose is not None and not pose_init and found and found[0] == encoder_name_of(pose.encoder):
                lines.append(_imagenet("pose encoder", pose.encoder, state, encoder_init))
    if pose_init:
        state = plain_state_dict(_read(pose_init, "--pose-encoder-init"))
        lines.append(_imagenet("pose encoder", pose.encoder, state, pose_init))
    return lines


def describe(task_class: type, config: Any) -> list[str]:
    """The lines `initialise` reports for `config`, plus notes on what the paper started from.

    Builds the task's networks once (seconds) so that every check runs before any data is read; the
    boundary loss' frozen net, trained later in the run, is not one of them.
    """
    if getattr(config, "boundary_loss", False):
        config = dataclasses.replace(config, boundary_loss=False)
    task = task_class(config)
    lines = initialise(task, config)
    forward = getattr(config, "initial_forward_motion", 0.0)
    pose = task.networks["pose"] if "pose" in task.networks else None
    starts_forward = forward and pose is not None and pose.decoder.starts_moving_forward(forward)
    motion = (
        [f"pose head starts at {forward:g} forward per frame pair (initial_forward_motion)"] if starts_forward else []
    )
    if not lines:
        note = paper_start_note(getattr(config, "net", ""))
        return ([note] if note else []) + motion
    if "pose" in task.networks and not any(line.startswith(("pose", "depth and pose")) for line in lines):
        lines.append(
            "note: the pose net starts from random weights; the papers started its encoder from ImageNet "
            "ResNet-18: add --pose-encoder-init resnet18-f37072fd.pth"
        )
    return lines + motion
