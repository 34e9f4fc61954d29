"""Build encoders, depth nets and pose nets by name (one builder per architecture, timm-style)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from torch import nn

from depthcli.errors import DepthcliError
from depthcli.nets.depthnet import DepthNet
from depthcli.nets.diffnet import DiffNetDecoder
from depthcli.nets.fcrn import FCRNDecoder
from depthcli.nets.hrnet import HRNET9_CHANNELS, HRNET18_CHANNELS, HRNetEncoder
from depthcli.nets.monodepth2 import Monodepth2Decoder
from depthcli.nets.pose import PoseNet
from depthcli.nets.radepth import RADepthDecoder
from depthcli.nets.resnet import ResNetEncoder

ALL_SCALES = (0, 1, 2, 3)


def _resnet(depth: int) -> Callable[[int], nn.Module]:
    return lambda num_input_images: ResNetEncoder(depth, num_input_images)


def _hrnet(channels: tuple[int, ...]) -> Callable[[int], nn.Module]:
    def build(num_input_images: int) -> nn.Module:
        if num_input_images != 1:
            raise DepthcliError(
                f"encoder 'hrnet{channels[0]}' takes one image; multi-image input exists for resnet18/resnet50"
            )
        return HRNetEncoder(channels)

    return build


_ENCODERS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": _resnet(18),
    "resnet50": _resnet(50),
    "hrnet18": _hrnet(HRNET18_CHANNELS),
    "hrnet9": _hrnet(HRNET9_CHANNELS),
}


def _check_scales(name: str, scales: tuple[int, ...]) -> tuple[int, ...]:
    scales = tuple(sorted(set(int(s) for s in scales)))
    if not scales or not set(scales) <= set(ALL_SCALES):
        raise DepthcliError(
            f"depth net {name!r}: scales {list(scales)} must be a non-empty subset of {list(ALL_SCALES)}"
        )
    return scales


def _monodepth2(scales: tuple[int, ...] = ALL_SCALES) -> DepthNet:
    encoder = build_encoder("resnet18")
    return DepthNet(encoder, Monodepth2Decoder(encoder.num_ch_enc, _check_scales("monodepth2", scales)))


def _diffnet(name: str, encoder_name: str, scales: tuple[int, ...] = ALL_SCALES) -> DepthNet:
    encoder = build_encoder(encoder_name)
    decoder = DiffNetDecoder(encoder.stage_channels, _check_scales(name, scales))
    return DepthNet(encoder, decoder, stage_features=True)


def _single_scale(name: str, scales: tuple[int, ...]) -> None:
    if tuple(scales) != (0,):
        raise DepthcliError(f"depth net {name!r} predicts scale 0 only; got scales {list(scales)}, use (0,)")


def _radepth(name: str, encoder_name: str, scales: tuple[int, ...] = (0,)) -> DepthNet:
    _single_scale(name, scales)
    encoder = build_encoder(encoder_name)
    return DepthNet(encoder, RADepthDecoder(encoder.num_ch_enc))


def _nyu_resnet50(scales: tuple[int, ...] = (0,)) -> DepthNet:
    _single_scale("nyu-resnet50", scales)
    encoder = build_encoder("resnet50")
    return DepthNet(encoder, FCRNDecoder(encoder.num_ch_enc))


_DEPTH_NETS: dict[str, Callable[..., DepthNet]] = {
    "monodepth2": _monodepth2,
    "diffnet": functools.partial(_diffnet, "diffnet", "hrnet18"),
    "radepth": functools.partial(_radepth, "radepth", "hrnet18"),
    "nyu-resnet50": _nyu_resnet50,
    # the same architectures on the half-width HRNet-W9, for CPU budgets (`depthcli demo`)
    "diffnet-small": functools.partial(_diffnet, "diffnet-small", "hrnet9"),
    "radepth-small": functools.partial(_radepth, "radepth-small", "hrnet9"),
}

_POSE_ENCODERS = ("resnet18",)


def _unknown(kind: str, name: str, known: list[str] | tuple[str, ...]) -> DepthcliError:
    return DepthcliError(f"unknown {kind} {name!r}; choose one of: {', '.join(known)}")


def list_encoders() -> list[str]:
    return list(_ENCODERS)


def list_depth_nets() -> list[str]:
    return list(_DEPTH_NETS)


def list_pose_nets() -> list[str]:
    return list(_POSE_ENCODERS)


def build_encoder(name: str, num_input_images: int = 1) -> nn.Module:
    """Encoder taking (B, 3*num_input_images, H, W) in [0,1]; `.num_ch_enc` lists its 5 feature widths."""
    if name not in _ENCODERS:
        raise _unknown("encoder", name, list_encoders())
    return _ENCODERS[name](num_input_images)


def build_depth_net(name: str, **cfg) -> DepthNet:
    """Depth net by name; `cfg` may set `scales`: a subset of 0..3 for monodepth2/diffnet, (0,) for the others."""
    if name not in _DEPTH_NETS:
        raise _unknown("depth net", name, list_depth_nets())
    builder = _DEPTH_NETS[name]
    try:
        inspect.signature(builder).bind(**cfg)
    except TypeError:
        accepted = list(inspect.signature(builder).parameters) or ["none"]
        raise DepthcliError(
            f"depth net {name!r} does not accept options {sorted(cfg)}; it accepts: {', '.join(accepted)}"
        ) from None
    return builder(**cfg)


def build_pose_net(name: str = "resnet18") -> PoseNet:
    """Separate two-frame pose net; see `depthcli.nets.pose` for the direction convention."""
    if name not in _POSE_ENCODERS:
        raise _unknown("pose net", name, list_pose_nets())
    return PoseNet(build_encoder(name, num_input_images=2))
