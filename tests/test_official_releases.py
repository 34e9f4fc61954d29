"""Released weights of monodepth2, DIFFNet and RA-Depth reproduce the official networks' outputs.

The fixtures (tests/fixtures/official, made by make_fixtures.py from the official code at the
commits it names) hold each release file's official key/shape list and the official outputs for a
seeded image; `official_release` regenerates the release files from the lists, so these tests feed
depthcli exactly the files the official trainers would have written.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from official_release import PROJECTS, depth_image, linked_copy, load_fixture, pose_frames, to_tensor
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint
from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.nets import build_depth_net, build_pose_net, count_parameters
from depthcli.nets.loading import load_depth_model
from depthcli.weights.release_import import import_reference_weights

# Random nets vary by a few 1e-3 around their mean: only a tolerance far below that tells a right
# mapping from a wrong one.
DISP_TOLERANCE = 2e-6
# Poses are ~1e-3 (the decoder's x0.01); 1e-8 is a relative 1e-5.
POSE_TOLERANCE = 1e-8


@pytest.fixture(scope="module", params=PROJECTS)
def release(request, official_releases) -> tuple[str, Path, dict, dict]:
    """(project, release folder written from the official key lists, fixture facts, official outputs)."""
    facts, outputs = load_fixture(request.param)
    return request.param, official_releases[request.param], facts, outputs


@pytest.fixture(scope="module")
def imported(release, tmp_path_factory) -> tuple[str, Path, dict, dict]:
    project, folder, facts, outputs = release
    ckpt = tmp_path_factory.mktemp(f"{project}_ckpt") / f"{project}.ckpt"
    result = CliRunner().invoke(app, ["weights", "import", project, str(folder), "--out", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert "pose" in result.output
    return project, ckpt, facts, outputs


def test_official_disparity_reproduced_by_the_python_api(imported):
    project, ckpt, facts, outputs = imported
    loaded = load_depth_model(ckpt)
    model, config = loaded.net, loaded.config
    assert config["size"] == facts["size"] and config["net"] == project
    with torch.no_grad():
        disp = model(to_tensor(depth_image(facts)))[("disp", 0)]
    official = torch.from_numpy(outputs["disp"])
    assert official.std() > 1e-3 and 0.05 < official.mean() < 0.95  # not saturated: the comparison means something
    assert (disp - official).abs().max() <= DISP_TOLERANCE


def test_official_disparity_reproduced_by_predict(imported, tmp_path):
    """`depthcli predict` on a PNG already at the training size: no resize; its `.npy` holds monodepth2's
    scaled disparity, 1/max_depth + (1/min_depth - 1/max_depth) * the official scale-0 sigmoid output."""
    project, ckpt, facts, outputs = imported
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), cv2.cvtColor(depth_image(facts), cv2.COLOR_RGB2BGR))
    result = CliRunner().invoke(
        app,
        ["predict", str(image), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--save", "npy"]
        + ["--amp", "off"],  # float32, as the official code ran (auto is bf16 on native-bf16 CPUs)
    )
    assert result.exit_code == 0, result.output
    saved = np.load(tmp_path / "out" / "frame_disp.npy").reshape(outputs["disp"].shape)
    min_disp, max_disp = np.float32(1 / 100.0), np.float32(1 / 0.1)
    expected = min_disp + (max_disp - min_disp) * outputs["disp"]
    assert np.abs(saved - expected).max() <= DISP_TOLERANCE * (max_disp - min_disp)


def test_official_pose_reproduced(imported):
    """The pose net travels in the checkpoint like a training run's; its pose is the official first pose."""
    project, ckpt, facts, outputs = imported
    payload = load_checkpoint(ckpt)
    assert payload["config"]["pose_net"] == "resnet18"
    pose = build_pose_net(payload["config"]["pose_net"]).eval()
    pose.load_state_dict(payload["networks"]["pose"])
    frames = to_tensor(pose_frames(facts))
    with torch.no_grad():
        axisangle, translation = pose(frames[:1], frames[1:])
        second = pose.decoder.pose2  # the official second pose, kept so the weights load unchanged
    assert second.out_channels == outputs["axisangle"].shape[1] * 6
    official_axisangle = torch.from_numpy(outputs["axisangle"][:, 0, 0])
    official_translation = torch.from_numpy(outputs["translation"][:, 0, 0])
    assert official_axisangle.abs().max() > 1e-4
    assert (axisangle - official_axisangle).abs().max() <= POSE_TOLERANCE
    assert (translation - official_translation).abs().max() <= POSE_TOLERANCE


@pytest.mark.parametrize("project", PROJECTS)
def test_parameter_counts_match_the_official_nets(project):
    """depthcli's nets are the official architectures: same parameters (the ResNets' unused fc aside)."""
    facts, _ = load_fixture(project)
    official = facts["parameters"]
    fc = 512 * 1000 + 1000  # torchvision's ImageNet classifier, saved but never used by monodepth2's encoders
    encoder_fc = fc if project == "monodepth2" else 0
    assert count_parameters(build_depth_net(project)) == official["encoder.pth"] - encoder_fc + official["depth.pth"]
    assert count_parameters(build_pose_net("resnet18")) == official["pose_encoder.pth"] - fc + official["pose.pth"]


def test_published_parameter_counts():
    """DIFFNet 10.87 M and RA-Depth 9.98 M, as their papers report (the official code agrees)."""
    assert round(count_parameters(build_depth_net("diffnet")) / 1e6, 2) == 10.87
    assert round(count_parameters(build_depth_net("radepth")) / 1e6, 2) == 9.98


def test_diffnet_stores_its_decoder_twice_and_both_copies_must_agree(official_releases, tmp_path):
    full = import_reference_weights("diffnet", official_releases["diffnet"])["model"]
    folder = linked_copy(official_releases["diffnet"], tmp_path / "diffnet", own=("depth.pth",))
    state = torch.load(folder / "depth.pth", weights_only=True)
    assert torch.equal(state["convs.72.conv_se.weight"], state["decoder.2.conv_se.weight"])
    assert len(state) == 2 * len([key for key in state if key.startswith("decoder.")])

    torch.save({k: v for k, v in state.items() if k.startswith("decoder.")}, folder / "depth.pth")
    half = import_reference_weights("diffnet", folder)["model"]  # one copy alone is the same net
    assert all(torch.equal(half[key], full[key]) for key in full)

    state["convs.72.conv_se.weight"] = state["convs.72.conv_se.weight"] + 1
    torch.save(state, folder / "depth.pth")
    with pytest.raises(DepthcliError, match=r"convs\.72\.conv_se\.weight and decoder\.2\.conv_se\.weight"):
        import_reference_weights("diffnet", folder)


def test_cuda_saved_release_files_load_on_cpu(official_releases, tmp_path, monkeypatch):
    """The authors' RA-Depth depth.pth was saved from CUDA: its storages are tagged 'cuda:0'."""
    import torch.serialization

    folder = linked_copy(official_releases["radepth"], tmp_path / "radepth", own=("depth.pth",))
    state = torch.load(folder / "depth.pth", weights_only=True)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, folder / "depth.pth")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(folder / "depth.pth", weights_only=True)
    payload = import_reference_weights("radepth", folder)
    assert torch.equal(payload["model"]["decoder.dispconv.conv.weight"], state["decoder.24.conv.weight"])
