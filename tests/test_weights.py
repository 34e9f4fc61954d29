"""`depthcli weights import|info`: what a bad release folder does, and what `info` shows.

Release folders are regenerated from the official key lists (tests/official_release.py); that they
reproduce the official outputs is tests/test_official_releases.py's job.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from official_release import linked_copy, load_fixture
from typer.testing import CliRunner

from depthcli.checkpoints import save_checkpoint
from depthcli.cli.app import app, main
from depthcli.errors import DepthcliError
from depthcli.weights.release_import import import_reference_weights


@pytest.fixture(scope="module")
def releases(official_releases) -> dict[str, Path]:
    return official_releases


def _import_cli(project: str, folder: Path, out: Path):
    return CliRunner().invoke(app, ["weights", "import", project, str(folder), "--out", str(out)])


@pytest.fixture()
def failing_import(monkeypatch, capsys):
    """Run `depthcli weights import` as the console script does; return its one error line (exit 2)."""

    def run(project: str, folder: Path, out: Path) -> str:
        monkeypatch.setattr(sys, "argv", ["depthcli", "weights", "import", project, str(folder), "--out", str(out)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        captured = capsys.readouterr()
        assert exit_info.value.code == 2, captured
        assert captured.err.startswith("error:") and "Traceback" not in captured.err
        return " ".join(captured.err.split())

    return run


@pytest.mark.parametrize(
    ("given", "actual"),
    [("radepth", "diffnet"), ("diffnet", "radepth"), ("monodepth2", "radepth"), ("diffnet", "monodepth2")],
)
def test_a_folder_of_another_project_is_named(releases, failing_import, tmp_path, given, actual):
    out = tmp_path / "out.ckpt"
    message = failing_import(given, releases[actual], out)
    assert f"holds a {actual} release, not {given}" in message
    assert f"depthcli weights import {actual}" in message
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("missing", ["encoder.pth", "depth.pth", "pose.pth", "pose_encoder.pth"])
def test_a_missing_file_is_named(releases, failing_import, tmp_path, missing):
    folder = linked_copy(releases["radepth"], tmp_path / "release")
    (folder / missing).unlink()
    out = tmp_path / "out.ckpt"
    message = failing_import("radepth", folder, out)
    assert missing in message
    assert not out.exists()


@pytest.mark.parametrize("truncated", ["encoder.pth", "depth.pth", "pose.pth"])
def test_a_truncated_file_is_named(releases, failing_import, tmp_path, truncated):
    folder = linked_copy(releases["diffnet"], tmp_path / "release", own=(truncated,))
    data = (folder / truncated).read_bytes()
    (folder / truncated).write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.ckpt"
    previous = b"an earlier checkpoint"
    out.write_bytes(previous)
    message = failing_import("diffnet", folder, out)
    assert f"{truncated} cannot be read" in message
    assert out.read_bytes() == previous  # nothing written, nothing lost


def test_renamed_keys_are_listed(releases, tmp_path):
    folder = linked_copy(releases["radepth"], tmp_path / "release", own=("depth.pth",))
    state = torch.load(folder / "depth.pth", weights_only=True)
    state["decoder.99.conv.weight"] = state.pop("decoder.24.conv.weight")
    torch.save(state, folder / "depth.pth")
    with pytest.raises(DepthcliError, match=r"decoder\.99\.conv\.weight.*missing keys \['dispconv\.conv\.weight'"):
        import_reference_weights("radepth", folder)


def test_files_without_batchnorm_counters_import(releases, tmp_path):
    """Releases saved by PyTorch < 0.4.1 carry no `num_batches_tracked`; inference does not need them."""
    folder = linked_copy(releases["radepth"], tmp_path / "release", own=("encoder.pth",))
    state = torch.load(folder / "encoder.pth", weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, folder / "encoder.pth")
    payload = import_reference_weights("radepth", folder)
    key = "stage4.2.fuse_layers.3.2.0.1.running_var"
    assert torch.equal(payload["model"][f"encoder.{key}"], state[key])


def test_depth_net_alone_imports_without_pose_files(releases, tmp_path):
    folder = linked_copy(releases["diffnet"], tmp_path / "release")
    for name in ("pose.pth", "pose_encoder.pth"):
        (folder / name).unlink()
    result = _import_cli("diffnet", folder, tmp_path / "out.ckpt")
    assert result.exit_code == 0, result.output
    assert "no pose net" in result.output
    payload = torch.load(tmp_path / "out.ckpt", weights_only=True)
    assert "networks" not in payload and "pose_net" not in payload["config"]


@pytest.fixture(scope="module")
def training_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint as a training run writes it: depth and pose nets, optimizer state, step, metrics."""
    from depthcli.nets import build_depth_net, build_pose_net

    path = tmp_path_factory.mktemp("run") / "run.ckpt"
    config = {"net": "monodepth2", "size": [640, 192], "min_depth": 0.1, "max_depth": 100.0, "pose_net": "resnet18"}
    pose = build_pose_net("resnet18")
    optimizer = torch.optim.Adam(pose.parameters())
    pose(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))[0].sum().backward()
    optimizer.step()
    return save_checkpoint(
        path,
        {
            "kind": "depth",
            "config": config,
            "model": build_depth_net("monodepth2").state_dict(),
            "networks": {"pose": pose.state_dict()},
            "step": 1234,
            "metrics": {"abs_rel": 0.1153},
            "train_state": {"step": 1234, "optimizer": optimizer.state_dict()},
        },
    )


def test_weights_info_summarises_the_checkpoint(training_checkpoint):
    ckpt = training_checkpoint
    result = CliRunner().invoke(app, ["weights", "info", str(ckpt)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("monodepth2", "640x192", "0.1", "100", "14,329,236", "12,500,492", "1234", "0.1153"):
        assert text in result.output, text
    assert len(result.output.splitlines()) < 30  # a summary, not one row per optimizer tensor
    assert "exp_avg" not in result.output

    full = CliRunner().invoke(app, ["weights", "info", str(ckpt), "--all"], env={"COLUMNS": "200"})
    assert full.exit_code == 0, full.output
    assert "train_state.optimizer" in full.output


def test_weights_info_json(training_checkpoint, tmp_path, releases):
    ckpt = training_checkpoint
    result = CliRunner().invoke(app, ["weights", "info", str(ckpt), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["net"] == "monodepth2" and summary["size"] == [640, 192] and summary["kind"] == "depth"
    assert summary["depth_range"] == [0.1, 100.0]
    assert summary["parameters"] == {"depth": 14_329_236, "pose": 12_500_492}
    assert summary["source"] == "training run, step 1234"
    assert summary["metrics"] == {"abs_rel": 0.1153}

    imported = tmp_path / "imported.ckpt"
    assert _import_cli("radepth", releases["radepth"], imported).exit_code == 0
    summary = json.loads(CliRunner().invoke(app, ["weights", "info", str(imported), "--json"]).output)
    assert summary["parameters"] == {"depth": 9_978_849, "pose": 12_500_492}
    assert summary["source"] == f"imported radepth release {releases['radepth'].resolve()}"
    assert summary["size"] == load_fixture("radepth")[0]["size"]
