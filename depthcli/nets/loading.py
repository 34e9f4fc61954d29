"""Networks from checkpoints: a depth checkpoint as one `DepthModel`, and encoders initialised from others.

A "depth" checkpoint's config names the net and the depth range it was trained with; `DepthModel`
carries both with the rebuilt net, so that callers (predict, eval, sweep, export, demo) never read
config keys themselves.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from depthcli.checkpoints import load_checkpoint, load_state
from depthcli.config import config_from_dict
from depthcli.errors import DepthcliError
from depthcli.nets.hrnet import HRNetEncoder
from depthcli.nets.registry import build_depth_net
from depthcli.nets.resnet import RESNET_LAYOUTS, ResNetEncoder
from depthcli.recipe_configs import DepthModelConfig

DEPTH_CONFIG_KEYS = ("net", "size", "min_depth", "max_depth")


@dataclasses.dataclass
class DepthModel:
    """A depth net rebuilt from a "depth" checkpoint (eval mode), with what running it needs."""

    net: nn.Module
    net_name: str
    min_depth: float  # the depth range its sigmoid disparity maps onto (`disp_to_depth`)
    max_depth: float
    size: tuple[int, int]  # (width, height) it was trained at: the default input size
    config: dict[str, Any]  # the checkpoint's whole resolved config
    path: Path


def load_depth_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> DepthModel:
    """Rebuild the depth net stored in a "depth" checkpoint, on `device`, in eval mode."""
    payload = load_checkpoint(path, expected_kind="depth")
    config = depth_config(payload, path)
    # a run that trained fewer disparity scales (e.g. `--set scales=[0]`) saved only those heads
    net = build_depth_net(config.net, **({} if config.scales is None else {"scales": tuple(config.scales)}))
    load_state(net, payload["model"], path, f"depth net {config.net!r}")
    return DepthModel(
        net=net.to(device).eval(),
        net_name=config.net,
        min_depth=config.min_depth,
        max_depth=config.max_depth,
        size=config.size,
        config=payload["config"],
        path=Path(path),
    )


def depth_config(payload: dict[str, Any], path: str | os.PathLike) -> DepthModelConfig:
    """What a depth checkpoint's config says about its net, checked (`DepthModelConfig`): a missing key,
    a wrong type or an impossible value (e.g. edited by hand) is one line naming the file and the key."""
    config = payload["config"]
    missing = [key for key in DEPTH_CONFIG_KEYS if key not in config]
    if missing or not isinstance(payload.get("model"), dict):
        raise DepthcliError(
            f"checkpoint {path} lacks {', '.join(missing) or 'model weights'}; it cannot rebuild a depth net"
        )
    known = {field.name for field in dataclasses.fields(DepthModelConfig)}
    return config_from_dict(
        DepthModelConfig, {key: value for key, value in config.items() if key in known}, f"checkpoint {path}"
    )


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
        stored_name = _encoder_of_net(depth_config(payload, ckpt_path).net)
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
    load_state(model.encoder, state, ckpt_path, f"encoder {own_name}")


def encoder_name_of(model: nn.Module) -> str | None:
    """Registry name of `model.encoder` ("resnet18", "resnet50", "hrnet18", "hrnet9"), read off its architecture."""
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
    try:
        return encoder_name_of(build_depth_net(net_name))
    except DepthcliError:
        return None
