"""Pose net: a separate ResNet-18 on two stacked frames + monodepth2's pose decoder.

Direction convention (monodepth2's; the trainer follows it). `pose_net(frame_a, frame_b)` takes the
two frames in *temporal order* and predicts the camera motion from a to b: with R = exp(axisangle)
(Rodrigues) and t = translation, the 4x4 `T = [[R, t], [0, 1]]` maps 3-D points in frame_a's camera
coordinates into frame_b's camera coordinates. So, to warp source frames onto target frame 0:
- source +1: `pose_net(frame_0, frame_+1)`, use T as is (points of frame 0 -> camera of frame +1);
- source -1: `pose_net(frame_-1, frame_0)`, use the inverse `[[R^T, -R^T t], [0, 1]]`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from depthcli.nets.layers import in_float32
from depthcli.nets.resnet import ResNetEncoder

# monodepth2 scales the raw pose output so that early training starts near the identity motion.
POSE_SCALE = 0.01
# monodepth2's decoder (and so DIFFNet's and RA-Depth's) predicts two poses per frame pair; its trainer
# uses only the first. We keep the second output so that released pose nets load unchanged.
POSES_PREDICTED = 2
FORWARD_CHANNEL = 5  # the first pose's tz: each pose is axis-angle (0-2) then translation (3-5)


class PoseDecoder(nn.Module):
    """1x1 squeeze to 256, two 3x3 convs (ReLU), 1x1 to 12, spatial mean, x0.01 -> the first of two poses."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, 256, 1)
        self.pose0 = nn.Conv2d(256, 256, 3, padding=1)
        self.pose1 = nn.Conv2d(256, 256, 3, padding=1)
        self.pose2 = nn.Conv2d(256, 6 * POSES_PREDICTED, 1)
        self.relu = nn.ReLU()

    def start_moving_forward(self, distance: float) -> None:
        """Set the first pose's forward-translation bias (drawn at random, within +-6e-4 after scaling) so that
        the untrained net starts at `distance` forward: the pair's later camera `distance` further along +z,
        target points landing that much nearer (tz = -distance, give or take what the weights add)."""
        with torch.no_grad():
            self.pose2.bias[FORWARD_CHANNEL] = -distance / POSE_SCALE

    def starts_moving_forward(self, distance: float) -> bool:
        """Whether the forward bias is still the one `start_moving_forward(distance)` set (weights loaded later,
        e.g. by --init, replace it)."""
        return math.isclose(self.pose2.bias[FORWARD_CHANNEL].item(), -distance / POSE_SCALE, rel_tol=1e-6)

    def forward(self, feature: Tensor) -> tuple[Tensor, Tensor]:
        x = self.relu(self.squeeze(feature))
        x = self.relu(self.pose0(x))
        x = self.relu(self.pose1(x))
        out = POSE_SCALE * in_float32(self.pose2, x).mean(3).mean(2)  # two means, as monodepth2 rounds them
        first = out.view(-1, POSES_PREDICTED, 6)[:, 0]
        return first[:, :3], first[:, 3:]


class PoseNet(nn.Module):
    """`forward(frame_a, frame_b)` -> (axisangle (B,3), translation (B,3)); see the module docstring."""

    def __init__(self, encoder: ResNetEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = PoseDecoder(encoder.num_ch_enc[-1])

    def forward(self, frame_a: Tensor, frame_b: Tensor) -> tuple[Tensor, Tensor]:
        return self.decoder(self.encoder(torch.cat([frame_a, frame_b], 1))[-1])


# The pose head's final conv in a PoseNet state dict; before the decoder kept monodepth2's second pose, depthcli
# checkpoints held 6 output channels here (older training runs).
POSE_HEAD_KEYS = ("decoder.pose2.weight", "decoder.pose2.bias")


def predates_two_poses(state: dict) -> bool:
    """Whether a PoseNet state dict comes from before the decoder predicted two poses (a 6-channel head)."""
    head = state.get(POSE_HEAD_KEYS[0])
    return isinstance(head, torch.Tensor) and head.shape[0] == 6


def widen_to_two_poses(state: dict) -> dict:
    """A 6-channel (one-pose) PoseNet state as this decoder's 12 channels: the first pose, the one training
    uses, keeps its weights, so the net computes exactly what it computed before; the second gets zeros."""
    widened = dict(state)
    for key in POSE_HEAD_KEYS:
        widened[key] = torch.cat([state[key], torch.zeros_like(state[key])])
    return widened
