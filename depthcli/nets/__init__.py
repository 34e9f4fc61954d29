"""Networks built by name: encoders (ResNet-18/50, HRNet-18), depth nets, the pose net, complexity counts."""

from depthcli.nets.complexity import count_macs, count_parameters, model_summary, pose_summary
from depthcli.nets.depthnet import DepthNet, check_input_size
from depthcli.nets.registry import (
    build_depth_net,
    build_encoder,
    build_pose_net,
    list_depth_nets,
    list_encoders,
    list_pose_nets,
)
from depthcli.nets.resnet import expand_input_channels

__all__ = [
    "DepthNet",
    "build_depth_net",
    "build_encoder",
    "build_pose_net",
    "check_input_size",
    "count_macs",
    "count_parameters",
    "expand_input_channels",
    "list_depth_nets",
    "list_encoders",
    "list_pose_nets",
    "model_summary",
    "pose_summary",
]
