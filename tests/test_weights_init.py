"""Where training starts: `--init` checkpoints, ImageNet `--encoder-init` / `--pose-encoder-init` files.

ImageNet files are written in the official layouts (tests/fixtures/official/imagenet.json: torchvision's
ResNet-18/50 and HRNet-Image-Classification's HRNet-W18-C, classifier heads included) with random
values; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from official_release import FIXTURES, release_state
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.cli.app import app
from depthcli.engine.selfsup import SelfSupConfig, SelfSupTask
from depthcli.engine.supervised import SupervisedConfig, SupervisedTask
from depthcli.errors import DepthcliError
from depthcli.nets import build_depth_net
from depthcli.weights.initialise import describe
from depthcli.weights.release_import import import_to_checkpoint

IMAGENET = json.loads((FIXTURES / "imagenet.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def imagenet_files(tmp_path_factory) -> dict[str, Path]:
    """ImageNet files as users download them, one per layout, with random values."""
    root = tmp_path_factory.mktemp("imagenet")
    files = {}
    for seed, (name, filename) in enumerate(
        [
            ("torchvision_resnet18", "resnet18-f37072fd.pth"),
            ("torchvision_resnet50", "resnet50-0676ba61.pth"),
            ("hrnet_w18_imagenet", "hrnetv2_w18_imagenet_pretrained.pth"),
        ]
    ):
        files[name] = root / filename
        torch.save(release_state(IMAGENET[name], seed), files[name])
    return files


def _selfsup(net: str, **settings) -> SelfSupConfig:
    settings.setdefault("scales", (0,) if net.startswith("radepth") else (0, 1, 2, 3))
    return SelfSupConfig(preset=net, net=net, **settings)


def _assert_same(module: torch.nn.Module, reference: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> int:
    own = module.state_dict()
    checked = 0
    for key, value in reference.items():
        if key in own and not key.startswith(skip) and not key.endswith("num_batches_tracked"):
            assert torch.equal(own[key], value), key
            checked += 1
    return checked


def test_imagenet_resnet18_starts_the_depth_and_pose_encoders_as_monodepth2_does(imagenet_files):
    path = imagenet_files["torchvision_resnet18"]
    task = SelfSupTask.from_config(_selfsup("monodepth2", encoder_init=str(path)))
    reference = torch.load(path, weights_only=True)
    assert _assert_same(task.networks["depth"].encoder, reference) == 100  # every tensor but fc and the counters
    pose_encoder = task.networks["pose"].encoder
    assert _assert_same(pose_encoder, reference, skip=("conv1.",)) == 99
    conv1 = reference["conv1.weight"]
    torch.testing.assert_close(pose_encoder.conv1.weight, torch.cat([conv1, conv1], 1) / 2, rtol=0, atol=0)

    lines = describe(SelfSupTask, _selfsup("monodepth2", encoder_init=str(path)))
    assert lines[0].startswith("depth encoder starts from torchvision ImageNet ResNet-18 weights in")
    assert lines[1].startswith("pose encoder starts from torchvision ImageNet ResNet-18")
    assert "conv1 repeated for 2 frames and divided by 2" in lines[1]


def test_imagenet_hrnet_starts_diffnet_and_resnet18_its_pose_encoder(imagenet_files):
    hrnet, resnet = imagenet_files["hrnet_w18_imagenet"], imagenet_files["torchvision_resnet18"]
    alone = describe(SelfSupTask, _selfsup("diffnet", encoder_init=str(hrnet)))
    assert "HRNet-W18-C ImageNet classification weights" in alone[0]
    assert "--pose-encoder-init resnet18-f37072fd.pth" in alone[-1]  # the pose net would start at random

    config = _selfsup("radepth", encoder_init=str(hrnet), pose_encoder_init=str(resnet))
    task = SelfSupTask.from_config(config)
    assert _assert_same(task.networks["depth"].encoder, torch.load(hrnet, weights_only=True)) > 1000
    conv1 = torch.load(resnet, weights_only=True)["conv1.weight"]
    assert torch.equal(task.networks["pose"].encoder.conv1.weight, torch.cat([conv1, conv1], 1) / 2)
    assert len(describe(SelfSupTask, config)) == 2


def test_imagenet_resnet50_starts_the_supervised_net(imagenet_files):
    path = imagenet_files["torchvision_resnet50"]
    task = SupervisedTask.from_config(SupervisedConfig(encoder_init=str(path)))
    assert _assert_same(task.networks["depth"].encoder, torch.load(path, weights_only=True)) == 265


@pytest.mark.parametrize(
    ("net", "layout", "pattern"),
    [
        (
            "monodepth2",
            "torchvision_resnet50",
            "ImageNet ResNet-50 weights but the encoder .* resnet18",
        ),
        ("diffnet", "torchvision_resnet18", "ResNet-18 weights but the encoder to initialise is hrnet18"),
        ("radepth-small", "hrnet_w18_imagenet", "HRNet-W18-C ImageNet classification weights but .* hrnet9"),
    ],
)
def test_an_imagenet_file_of_another_encoder_is_named(imagenet_files, net, layout, pattern):
    with pytest.raises(DepthcliError, match=pattern):
        SelfSupTask.from_config(_selfsup(net, encoder_init=str(imagenet_files[layout])))


def test_an_unknown_file_is_named(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"backbone.conv.weight": torch.zeros(1)}, path)
    with pytest.raises(DepthcliError, match="neither a depthcli checkpoint nor a recognised ImageNet file"):
        SelfSupTask.from_config(_selfsup("monodepth2", encoder_init=str(path)))
    with pytest.raises(DepthcliError, match="does not exist"):
        SelfSupTask.from_config(_selfsup("monodepth2", pose_encoder_init=str(tmp_path / "absent.pth")))


def test_a_random_start_says_what_the_paper_started_from():
    (line,) = describe(SelfSupTask, _selfsup("monodepth2"))
    assert "monodepth2 paper started from ImageNet ResNet-18" in line and "--encoder-init resnet18" in line
    (line,) = describe(SelfSupTask, _selfsup("radepth"))
    assert "--encoder-init hrnetv2_w18_imagenet_pretrained.pth --pose-encoder-init resnet18" in line
    assert describe(SelfSupTask, _selfsup("radepth-small")) == []  # no paper, no ImageNet HRNet-W9
    (line,) = describe(SelfSupTask, _selfsup("radepth-small", initial_forward_motion=0.005))
    assert line == "pose head starts at 0.005 forward per frame pair (initial_forward_motion)"


@pytest.fixture(scope="module")
def imported_radepth(official_releases, tmp_path_factory) -> Path:
    ckpt = tmp_path_factory.mktemp("init") / "radepth.ckpt"
    return import_to_checkpoint("radepth", official_releases["radepth"], ckpt)[0]


def test_init_starts_every_network_the_checkpoint_holds(imported_radepth):
    task = SelfSupTask.from_config(_selfsup("radepth", init=str(imported_radepth)))
    payload = load_checkpoint(imported_radepth)
    counted = sum(not key.endswith("num_batches_tracked") for key in payload["model"])
    assert _assert_same(task.networks["depth"], payload["model"]) == counted
    assert _assert_same(task.networks["pose"], payload["networks"]["pose"]) > 100
    (line,) = describe(SelfSupTask, _selfsup("radepth", init=str(imported_radepth)))
    assert line.startswith(f"depth and pose nets start from {imported_radepth}")


def test_init_refuses_other_nets_kinds_and_a_second_source(imported_radepth, tmp_path, imagenet_files):
    with pytest.raises(DepthcliError, match="holds net 'radepth' but this run trains 'diffnet'"):
        SelfSupTask.from_config(_selfsup("diffnet", init=str(imported_radepth)))
    encoder_ckpt = save_checkpoint(tmp_path / "enc.ckpt", {"kind": "encoder", "config": {}, "model": {}})
    with pytest.raises(DepthcliError, match="holds a 'encoder' checkpoint.*use --encoder-init"):
        SelfSupTask.from_config(_selfsup("radepth", init=str(encoder_ckpt)))
    with pytest.raises(DepthcliError, match="--init already sets every network"):
        SelfSupTask.from_config(
            _selfsup("radepth", init=str(imported_radepth), encoder_init=str(imagenet_files["hrnet_w18_imagenet"]))
        )


def test_train_init_from_cli_is_a_new_run_with_a_fresh_optimizer(imported_radepth, tmp_path, synthetic_kitti):
    run = tmp_path / "finetune"
    result = CliRunner().invoke(
        app,
        ["train", "--preset", "radepth", "--init", str(imported_radepth), "--data", str(synthetic_kitti),
         "--split", str(synthetic_kitti / "train_files.txt"), "--size", "64x64", "--max-steps", "1",
         "--batch-size", "1", "--num-workers", "0", "--no-progress", "--out", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"depth and pose nets start from {imported_radepth}" in result.output
    assert json.loads((run / "config.json").read_text())["init"] == str(imported_radepth)
    state = load_checkpoint(run / "last.ckpt")
    assert state["train_state"]["step"] == 1
    adam_steps = {float(entry["step"]) for entry in state["train_state"]["optimizer"]["state"].values()}
    assert adam_steps == {1.0}  # the optimizer started fresh with this run
    # one Adam step (lr 1e-4) away from the imported weights: every parameter moved by at most the LR
    start = load_checkpoint(imported_radepth)["model"]
    weights = [key for key in start if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    steps = torch.stack([(state["model"][key] - start[key]).abs().max() for key in weights])
    assert 0 < steps.max() <= 1.01e-4


def test_init_from_a_run_whose_pose_head_predates_two_poses_keeps_its_first_pose(tmp_path):
    """Runs saved before the pose decoder kept monodepth2's second pose hold a 6-channel head: --init widens it,
    and the pose net predicts what the old one-pose net predicted."""
    torch.manual_seed(0)
    old = SelfSupTask(_selfsup("radepth-small"))
    pose_state = old.networks["pose"].state_dict()
    one_pose = {key: value[:6] if key.startswith("decoder.pose2.") else value for key, value in pose_state.items()}
    config = {"net": "radepth-small", "pose_net": "resnet18", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0}
    payload = {"kind": "depth", "config": config, "model": old.networks["depth"].state_dict(),
               "networks": {"pose": one_pose}}  # fmt: skip
    path = save_checkpoint(tmp_path / "old_run.ckpt", payload)
    torch.manual_seed(1)
    lines = describe(SelfSupTask, _selfsup("radepth-small", init=str(path), initial_forward_motion=0.005))
    assert "one-pose head is widened to the two-pose decoder, the first pose unchanged" in lines[0]
    assert not any("forward" in line for line in lines)  # the loaded pose net replaces the forward start
    torch.manual_seed(1)
    task = SelfSupTask.from_config(_selfsup("radepth-small", init=str(path)))
    frames = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    old.eval(), task.eval()
    with torch.no_grad():
        expected, got = old.networks["pose"](*frames), task.networks["pose"](*frames)
    for a, b in zip(expected, got, strict=True):
        assert torch.equal(a, b)  # the old head's six channels are the first pose, computed as before
    assert torch.equal(task.networks["pose"].decoder.pose2.weight[6:], torch.zeros(6, 256, 1, 1))


def test_init_from_a_run_on_fewer_scales_names_the_scales_and_loads_with_them(tmp_path):
    """A diffnet run trained on scale 0 only holds one disparity head: --init into a four-scale run is one line
    saying which `--set scales` fits; with it the net starts from those weights."""
    torch.manual_seed(0)
    net = build_depth_net("diffnet-small", scales=(0,))
    config = {"net": "diffnet-small", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0, "scales": [0]}
    path = save_checkpoint(tmp_path / "scale0.ckpt", {"kind": "depth", "config": config, "model": net.state_dict()})
    with pytest.raises(
        DepthcliError, match=r"scales \[0\] but this run trains scales \[0, 1, 2, 3\]; add --set scales=\[0\]"
    ):
        SelfSupTask.from_config(_selfsup("diffnet-small", init=str(path)))
    task = SelfSupTask.from_config(_selfsup("diffnet-small", init=str(path), scales=(0,)))
    weights = [key for key in net.state_dict() if not key.endswith("num_batches_tracked")]
    assert _assert_same(task.networks["depth"], net.state_dict()) == len(weights)
