"""`depthcli weights import|info`: a monodepth2 release folder imports and reproduces its outputs.

The reference network is re-created here from the facts of monodepth2's parameter layout (a
torchvision-style ResNet-18 stored as `encoder`, a decoder ModuleList filled in the order
upconv(4,0), upconv(4,1), ..., upconv(0,1), dispconv(0..3)), independently of depthcli's nets.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from depthcli.checkpoints import save_checkpoint
from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.nets.loading import load_depth_model
from depthcli.weights_import import import_reference_weights

HEIGHT, WIDTH = 64, 128


class RefBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + shortcut)


class RefResNet18(nn.Module):
    """torchvision's resnet18 attribute names, including the (unused) ImageNet `fc`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for index, (cin, cout, stride) in enumerate(widths, start=1):
            setattr(
                self, f"layer{index}", nn.Sequential(RefBasicBlock(cin, cout, stride), RefBasicBlock(cout, cout, 1))
            )
        self.fc = nn.Linear(512, 1000)


class RefEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = RefResNet18()

    def forward(self, image):
        r = self.encoder
        x = (image - 0.45) / 0.225
        feats = [F.relu(r.bn1(r.conv1(x)))]
        feats.append(r.layer1(r.maxpool(feats[-1])))
        for layer in (r.layer2, r.layer3, r.layer4):
            feats.append(layer(feats[-1]))
        return feats


class RefConv3x3(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3)

    def forward(self, x):
        return self.conv(self.pad(x))


class RefConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = RefConv3x3(cin, cout)
        self.nonlin = nn.ELU()

    def forward(self, x):
        return self.nonlin(self.conv(x))


class RefDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        enc, dec = [64, 64, 128, 256, 512], [16, 32, 64, 128, 256]
        self.blocks = OrderedDict()
        for i in range(4, -1, -1):
            self.blocks[("upconv", i, 0)] = RefConvBlock(enc[-1] if i == 4 else dec[i + 1], dec[i])
            self.blocks[("upconv", i, 1)] = RefConvBlock(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i])
        for s in range(4):
            self.blocks[("dispconv", s)] = RefConv3x3(dec[s], 1)
        self.decoder = nn.ModuleList(self.blocks.values())

    def forward(self, feats):
        out, x = {}, feats[-1]
        for i in range(4, -1, -1):
            x = F.interpolate(self.blocks[("upconv", i, 0)](x), scale_factor=2, mode="nearest")
            x = torch.cat([x] + ([feats[i - 1]] if i > 0 else []), 1)
            x = self.blocks[("upconv", i, 1)](x)
            if i < 4:
                out[("disp", i)] = torch.sigmoid(self.blocks[("dispconv", i)](x))
        return out


def _randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Random weights *and* BatchNorm statistics, so that a wrong mapping cannot go unnoticed."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
            elif name.endswith("weight") and tensor.ndim == 1:
                tensor.copy_(0.8 + 0.4 * torch.rand(tensor.shape, generator=generator))
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (1.0 / fan_in) ** 0.5)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, RefEncoder, RefDecoder]:
    generator = torch.Generator().manual_seed(0)
    encoder, decoder = RefEncoder().eval(), RefDecoder().eval()
    _randomise(encoder, generator)
    _randomise(decoder, generator)
    folder = tmp_path_factory.mktemp("mono_640x192")
    torch.save({**encoder.state_dict(), "height": HEIGHT, "width": WIDTH, "use_stereo": False}, folder / "encoder.pth")
    torch.save(decoder.state_dict(), folder / "depth.pth")
    return folder, encoder, decoder


def test_monodepth2_import_reproduces_outputs(release, tmp_path):
    folder, encoder, decoder = release
    assert "decoder.0.conv.conv.weight" in torch.load(folder / "depth.pth", weights_only=True)
    ckpt = tmp_path / "imported.ckpt"
    result = CliRunner().invoke(app, ["weights", "import", "monodepth2", str(folder), "--out", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert str(ckpt) in result.output

    loaded = load_depth_model(ckpt)
    model, config = loaded.net, loaded.config
    assert config["net"] == "monodepth2" and config["size"] == [WIDTH, HEIGHT]
    assert (config["min_depth"], config["max_depth"]) == (0.1, 100.0)
    image = torch.rand(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = decoder(encoder(image))
        got = model(image)
    assert set(got) == set(expected) == {("disp", s) for s in range(4)}
    for key, reference in expected.items():
        assert reference.std() > 1e-3  # not saturated: the comparison means something
        assert (got[key] - reference).abs().max() < 1e-4, key


def test_import_accepts_files_without_batchnorm_counters(release, tmp_path):
    """Releases saved by PyTorch < 0.4.1 carry no `num_batches_tracked`; inference does not need them."""
    folder, _, _ = release
    old = tmp_path / "old"
    old.mkdir()
    state = torch.load(folder / "encoder.pth", weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, old / "encoder.pth")
    (old / "depth.pth").write_bytes((folder / "depth.pth").read_bytes())
    payload = import_reference_weights("monodepth2", old)
    reference = torch.load(folder / "encoder.pth", weights_only=True)
    assert torch.equal(
        payload["model"]["encoder.layer2.0.downsample.1.running_var"],
        reference["encoder.layer2.0.downsample.1.running_var"],
    )


def test_import_errors(release, tmp_path):
    folder, _, _ = release
    no_depth = tmp_path / "no_depth"
    no_depth.mkdir()
    (no_depth / "encoder.pth").write_bytes((folder / "encoder.pth").read_bytes())
    with pytest.raises(DepthcliError, match="no depth.pth"):
        import_reference_weights("monodepth2", no_depth)

    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "encoder.pth").write_bytes((folder / "encoder.pth").read_bytes())
    state = torch.load(folder / "depth.pth", weights_only=True)
    state["decoder.99.conv.weight"] = state.pop("decoder.13.conv.weight")
    torch.save(state, renamed / "depth.pth")
    with pytest.raises(DepthcliError, match=r"decoder\.99\.conv\.weight.*missing keys \['dispconvs\.3\.conv\.weight'"):
        import_reference_weights("monodepth2", renamed)

    (renamed / "depth.pth").write_bytes((folder / "depth.pth").read_bytes()[:1000])
    with pytest.raises(DepthcliError, match="depth.pth cannot be read"):
        import_reference_weights("monodepth2", renamed)
    with pytest.raises(DepthcliError, match="not supported yet"):
        import_reference_weights("diffnet", folder)
    with pytest.raises(DepthcliError, match="does not exist"):
        import_reference_weights("monodepth2", tmp_path / "absent")


def test_weights_info_shows_what_the_checkpoint_holds(tmp_path):
    from depthcli.nets import build_depth_net

    ckpt = tmp_path / "run.ckpt"
    config = {"net": "monodepth2", "size": [640, 192], "min_depth": 0.1, "max_depth": 100.0}
    payload = {"kind": "depth", "config": config, "model": build_depth_net("monodepth2").state_dict()}
    save_checkpoint(ckpt, {**payload, "step": 1234, "metrics": {"abs_rel": 0.1153}})
    result = CliRunner().invoke(app, ["weights", "info", str(ckpt)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("config.net", "monodepth2", "[640, 192]", "step", "1234", "metrics.abs_rel", "0.1153", "14.3"):
        assert text in result.output, text
