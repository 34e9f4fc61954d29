"""Checkpoints: one atomically written `torch.save` dict, loaded with `weights_only=True`.

Layout (docs/architecture.md): `{"format": "depthcli", "version": 1, "kind": ..., "config": {...},
"model": state_dict, ...}`. Everything inside is tensors and plain Python values so that loading never
unpickles code; every way a file can be wrong becomes one DepthcliError line naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from depthcli.atomic import atomic_path
from depthcli.errors import DepthcliError

FORMAT = "depthcli"
VERSION = 1
DEPTH_CONFIG_KEYS = ("net", "size", "min_depth", "max_depth")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` (which must name its "kind" and hold a plain-dict "config") atomically.

    A failure mid-write (disk full, interrupt) leaves the previous file at `path` untouched.
    """
    if "kind" not in payload or not isinstance(payload.get("config"), dict):
        raise ValueError("checkpoint payload needs a 'kind' and a plain-dict 'config'")
    path = Path(path)
    full = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(full, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, expected_kind: str | None = None) -> dict[str, Any]:
    """Load and validate a depthcli checkpoint; any bad file becomes a one-line DepthcliError."""
    path = Path(path)
    if not path.is_file():
        raise DepthcliError(f"checkpoint {path} does not exist (or is not a file); check the path")
    try:
        with warnings.catch_warnings():  # torch warns about a raw pickle's protocol before refusing it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # foreign or damaged bytes surface as many types (IndexError, UnpicklingError, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DepthcliError(
            f"checkpoint {path} cannot be read ({reason[:160]}); it is truncated, corrupted or not a "
            "depthcli checkpoint"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DepthcliError(
            f"checkpoint {path} is not a depthcli checkpoint (no format marker); give a file written by depthcli"
        )
    if payload.get("version") != VERSION:
        raise DepthcliError(
            f"checkpoint {path} has format version {payload.get('version')!r}, this depthcli reads version "
            f"{VERSION}; use a matching depthcli release"
        )
    if expected_kind is not None and payload.get("kind") != expected_kind:
        raise DepthcliError(
            f"checkpoint {path} holds a {payload.get('kind')!r} model, expected {expected_kind!r}; "
            "give the right checkpoint"
        )
    if not isinstance(payload.get("config"), dict):
        raise DepthcliError(f"checkpoint {path} has no config; it was not written by depthcli")
    return payload


def load_depth_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the depth net stored in a "depth" checkpoint: `(model in eval mode, config dict)`."""
    from depthcli.nets import build_depth_net

    payload = load_checkpoint(path, expected_kind="depth")
    config = payload["config"]
    missing = [key for key in DEPTH_CONFIG_KEYS if key not in config]
    if missing or "model" not in payload:
        raise DepthcliError(
            f"checkpoint {path} lacks {', '.join(missing) or 'model weights'}; it cannot rebuild a depth net"
        )
    model = build_depth_net(config["net"])
    _load_state(model, payload["model"], path, f"depth net {config['net']!r}")
    return model.to(device).eval(), config


def load_encoder_init(model: nn.Module, ckpt_path: str | os.PathLike) -> None:
    """Initialise `model.encoder` from an "encoder" checkpoint (`--encoder-init`) or a depth checkpoint.

    Encoder checkpoints hold `{"encoder_name": str, "model": encoder state dict}`; a name that differs
    from the model's own encoder (e.g. resnet50 weights into an hrnet18) is a DepthcliError.
    """
    payload = load_checkpoint(ckpt_path)
    own_name = encoder_name_of(model)
    kind = payload.get("kind")
    if kind == "encoder":
        stored_name = payload.get("encoder_name")
        state = payload.get("model")
    elif kind == "depth":
        stored_name = _encoder_of_net(payload["config"].get("net"))
        state = {
            key.removeprefix("encoder."): value
            for key, value in payload.get("model", {}).items()
            if key.startswith("encoder.")
        }
    else:
        raise DepthcliError(
            f"checkpoint {ckpt_path} holds a {kind!r} model; --encoder-init needs an encoder or depth checkpoint"
        )
    if own_name is not None and stored_name is not None and stored_name != own_name:
        raise DepthcliError(
            f"checkpoint {ckpt_path} holds {stored_name} encoder weights but the model's encoder is {own_name}; "
            "pretrain (or pick) a matching encoder"
        )
    if not isinstance(state, dict):
        raise DepthcliError(f"checkpoint {ckpt_path} holds no encoder weights")
    _load_state(model.encoder, state, ckpt_path, f"encoder {own_name}")


def _load_state(module: nn.Module, state: dict, path: str | os.PathLike, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DepthcliError(f"checkpoint {path} does not fit the {what}: {first[:200]}") from exc


def encoder_name_of(model: nn.Module) -> str | None:
    """Registry name of `model.encoder` ("resnet18", "resnet50", "hrnet18", "hrnet9"), read off its architecture."""
    from depthcli.nets.hrnet import HRNetEncoder
    from depthcli.nets.resnet import RESNET_LAYOUTS, ResNetEncoder

    encoder = getattr(model, "encoder", model)
    if isinstance(encoder, HRNetEncoder):
        return f"hrnet{encoder.num_ch_enc[1]}"
    if isinstance(encoder, ResNetEncoder):
        layout = tuple(len(getattr(encoder, f"layer{i}")) for i in range(1, 5))
        for depth, (block, blocks) in RESNET_LAYOUTS.items():
            if blocks == layout and isinstance(encoder.layer1[0], block):
                return f"resnet{depth}"
    return None


def _encoder_of_net(net_name: str | None) -> str | None:
    if net_name is None:
        return None
    from depthcli.nets import build_depth_net

    try:
        return encoder_name_of(build_depth_net(net_name))
    except DepthcliError:
        return None
