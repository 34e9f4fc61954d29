"""Networks: published parameter counts, output contract at the sweep's extreme sizes, gradients,
size errors, multi-image conv1 expansion, pose scaling, FCRN up-projection and MAC counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from depthcli.errors import DepthcliError
from depthcli.nets import (
    build_depth_net,
    build_encoder,
    build_pose_net,
    count_macs,
    count_parameters,
    expand_input_channels,
    list_depth_nets,
)
from depthcli.nets.fcrn import _unpool_conv5

# Published parameter counts (the papers; docs/protocols.md): the nets must match within 1 %.
PUBLISHED_PARAMS = {
    "monodepth2": 14.33e6,
    "diffnet": 10.87e6,
    "radepth": 9.98e6,
    "nyu-resnet50": 63.6e6,  # FCRN (Laina et al. 2016), ResNet-50 + up-projections
}
ENCODER_OF = {
    "monodepth2": "resnet18",
    "diffnet": "hrnet18",
    "radepth": "hrnet18",
    "nyu-resnet50": "resnet50",
    "diffnet-small": "hrnet9",
    "radepth-small": "hrnet9",
}
SWEEP_EXTREMES = [(416, 128), (1024, 320)]


@pytest.fixture(scope="module", params=list_depth_nets())
def depth_net(request):
    torch.manual_seed(0)
    return request.param, build_depth_net(request.param)


def test_registry_lists_the_depth_nets():
    assert list_depth_nets() == ["monodepth2", "diffnet", "radepth", "nyu-resnet50", "diffnet-small", "radepth-small"]
    with pytest.raises(DepthcliError, match="unknown depth net 'monodepth3'.*monodepth2"):
        build_depth_net("monodepth3")


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMS))
def test_parameter_count_matches_publication(name):
    assert count_parameters(build_depth_net(name)) == pytest.approx(PUBLISHED_PARAMS[name], rel=0.01)


@pytest.mark.parametrize("name", ["diffnet", "radepth"])
def test_small_net_is_the_same_architecture_at_half_hrnet_width(name):
    full, small = build_depth_net(name), build_depth_net(f"{name}-small")
    assert small.encoder.num_ch_enc == [64, 9, 18, 36, 72]  # HRNet-W18: [64, 18, 36, 72, 144]
    full_shapes = {key: tuple(value.shape) for key, value in full.state_dict().items()}
    small_shapes = {key: tuple(value.shape) for key, value in small.state_dict().items()}
    assert small_shapes.keys() == full_shapes.keys()
    # the stem (conv1/conv2/layer1) keeps its width; every tensor after it is no larger, some strictly smaller
    for key in small_shapes:
        if key.startswith(("encoder.conv", "encoder.bn", "encoder.layer1")):
            assert small_shapes[key] == full_shapes[key], key
        else:
            assert all(s <= f for s, f in zip(small_shapes[key], full_shapes[key], strict=True)), key
    assert count_parameters(small) < 0.35 * count_parameters(full)


def test_resnet18_encoder_without_fc_is_11_18m():
    # torchvision's ResNet-18 has 11,689,512 parameters; its fc layer 512*1000 + 1000 of them.
    assert count_parameters(build_encoder("resnet18")) == 11_689_512 - 513_000


def test_encoder_weights_load_into_the_depth_net(depth_net):
    name, net = depth_net
    net.encoder.load_state_dict(build_encoder(ENCODER_OF[name]).state_dict(), strict=True)
    assert net.encoder.num_ch_enc == build_encoder(ENCODER_OF[name]).num_ch_enc


@pytest.mark.parametrize("size", SWEEP_EXTREMES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_backward_at_sweep_extremes(depth_net, size):
    name, net = depth_net
    width, height = size
    net.train()
    net.zero_grad(set_to_none=True)
    outputs = net(torch.rand(1, 3, height, width))
    assert set(outputs) == {("disp", s) for s in net.scales}
    for (_, s), disp in outputs.items():
        assert disp.shape == (1, 1, height // 2**s, width // 2**s)
        assert disp.min() >= 0 and disp.max() <= 1
    sum(disp.mean() for disp in outputs.values()).backward()
    # every parameter takes part in the output, so every one must receive a finite gradient
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert sum(p.grad.abs().sum() for p in net.parameters()) > 0


@pytest.mark.parametrize(
    "height, width, nearest", [(190, 640, "640x192"), (192, 650, "640x192"), (20, 20, "64x64"), (32, 64, "64x64")]
)
def test_size_not_multiple_of_32_or_below_64_is_a_user_error(height, width, nearest):
    net = build_depth_net("monodepth2")
    with pytest.raises(DepthcliError, match=rf"{width}x{height}.*multiples of 32 and at least 64") as info:
        net(torch.rand(1, 3, height, width))
    assert nearest in str(info.value)  # the closest multiples of 32 that are at least 64


def test_scales_option_selects_outputs():
    net = build_depth_net("monodepth2", scales=(0, 2))
    assert net.scales == (0, 2)
    assert set(net(torch.rand(1, 3, 64, 96))) == {("disp", 0), ("disp", 2)}
    with pytest.raises(DepthcliError, match="scales"):
        build_depth_net("monodepth2", scales=(0, 5))
    assert build_depth_net("radepth", scales=(0,)).scales == (0,)
    with pytest.raises(DepthcliError, match="radepth"):
        build_depth_net("radepth", scales=(0, 1))
    with pytest.raises(DepthcliError, match="does not accept options \\['foo'\\]"):
        build_depth_net("monodepth2", foo=1)


def test_diffnet_decoder_sees_every_hrnet_stage_output():
    encoder = build_encoder("hrnet18").eval()
    with torch.no_grad():
        levels = encoder.forward_stages(torch.rand(1, 3, 64, 64))
    # stem (1/2); stem + stages 2,3,4 (1/4); stages 2,3,4 (1/8); stages 3,4 (1/16); stage 4 (1/32)
    assert [[f.shape[1] for f in level] for level in levels] == [[64], [64, 18, 18, 18], [36] * 3, [72] * 2, [144]]
    assert [level[0].shape[-1] for level in levels] == [32, 16, 8, 4, 2]
    assert encoder.stage_channels == [[f.shape[1] for f in level] for level in levels]


def test_expanded_conv1_on_duplicated_image_equals_single_image_net():
    torch.manual_seed(0)
    single = build_encoder("resnet18").eval()
    pair = build_encoder("resnet18", num_input_images=2).eval()
    state = expand_input_channels(single.state_dict(), 2)
    torch.testing.assert_close(state["conv1.weight"][:, 3:], single.conv1.weight.detach() / 2)
    pair.load_state_dict(state)
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = single(image)
        got = pair(torch.cat([image, image], 1))
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_pose_output_is_the_first_of_two_poses_split_and_scaled_by_one_hundredth():
    """monodepth2's decoder has 12 output channels (two poses); the trainer uses channels 0..5."""
    net = build_pose_net("resnet18").eval()
    with torch.no_grad():
        net.decoder.pose2.weight.zero_()
        net.decoder.pose2.bias.copy_(torch.arange(1.0, 13.0))
        axisangle, translation = net(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(axisangle, torch.tensor([[0.01, 0.02, 0.03]] * 2))
    torch.testing.assert_close(translation, torch.tensor([[0.04, 0.05, 0.06]] * 2))


@pytest.mark.parametrize("size", SWEEP_EXTREMES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_pose_forward_backward(size):
    width, height = size
    net = build_pose_net().train()
    axisangle, translation = net(torch.rand(1, 3, height, width), torch.rand(1, 3, height, width))
    assert axisangle.shape == translation.shape == (1, 3)
    (axisangle.sum() + translation.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_up_projection_is_unpooling_then_5x5_conv():
    """FCRN's unpool (value to the top-left of each 2x2 block) + 5x5 conv == our stride-2 transposed conv."""
    torch.manual_seed(0)
    up = _unpool_conv5(3, 2)
    x = torch.rand(1, 3, 4, 5)
    unpooled = torch.zeros(1, 3, 8, 10)
    unpooled[:, :, ::2, ::2] = x
    conv_weight = up.weight.detach().transpose(0, 1).flip(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(up(x), F.conv2d(unpooled, conv_weight, padding=2))


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.grouped = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False)
        self.deconv = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.fc = nn.Linear(4 * 3 * 4, 5)

    def forward(self, x):
        y = self.conv(x)
        z = self.grouped(y)
        return self.fc(z.flatten(1)).sum() + self.deconv(z).sum()


def test_count_macs_by_hand():
    # input 8x6 (WxH); conv: 4x6x8 outputs x 3*9 taps; grouped stride-2 conv: 4x3x4 outputs x (4/2)*9;
    # transposed conv: 4x3x4 inputs x 2*2*2 outputs each; linear: 5 outputs x 48 inputs
    expected = 4 * 6 * 8 * 27 + 4 * 3 * 4 * 18 + 4 * 3 * 4 * 8 + 5 * 48
    assert count_macs(_Tiny(), (8, 6)) == expected
    assert count_parameters(_Tiny()) == (4 * 27 + 4) + 4 * 18 + (4 * 2 * 4 + 2) + (48 * 5 + 5)
