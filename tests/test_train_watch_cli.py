"""`depthcli train` as a researcher watches it: TensorBoard pictures of a real self-supervised run, resuming
from another working directory, and `depthcli weights slim`."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.nets.loading import load_depth_model

NO_TENSORBOARD = "the tensorboard package is not installed (pip install -e '.[tensorboard]'); its reader is needed"


def _invoke(*args: str):
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def tiny_run(synthetic_kitti, tmp_path_factory):
    """Two monodepth2 steps at 64x64, started in a working directory of its own with relative paths."""
    start = tmp_path_factory.mktemp("start")
    (start / "data").symlink_to(synthetic_kitti)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(start)
        _invoke(
            "train", "--preset", "monodepth2", "--data", "data", "--split", "data/train_files.txt", "--size", "64x64",
            "--max-steps", "2", "--batch-size", "2", "--num-workers", "0", "--log-images-every", "1", "--device",
            "cpu", "--no-progress", "--out", "run",
        )  # fmt: skip
    return start / "run"


def test_selfsup_pictures_in_tensorboard(tiny_run):
    reader = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator", reason=NO_TENSORBOARD)
    accumulator = reader.EventAccumulator(str(tiny_run / "tensorboard"), size_guidance={reader.IMAGES: 0})
    accumulator.Reload()
    names = ("input", "disparity", "source", "warped_source", "automask")
    assert {f"images/{name}" for name in names} <= set(accumulator.Tags()["images"])
    for name in names:
        events = accumulator.Images(f"images/{name}")
        assert [event.step for event in events] == [1, 2]
        assert (events[0].width, events[0].height) == (2 * 64, 64)  # both samples of the batch, side by side
    assert {"train/loss", "lr", "images_per_s"} <= set(accumulator.Tags()["scalars"])


def test_resume_from_another_working_directory(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "moved" / "run"
    shutil.copytree(tiny_run, run)
    stored = json.loads((run / "config.json").read_text())
    assert stored["data"] == str(tiny_run.parent.joinpath("data").resolve())  # given as "data"
    assert stored["split"] == str(tiny_run.parent.joinpath("data", "train_files.txt").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _invoke("train", "--resume", "--out", "../moved/run", "--max-steps", "3", "--no-progress", "--num-workers", "0")
    assert load_checkpoint(run / "last.ckpt")["train_state"]["step"] == 3
    assert [r["cwd"] for r in json.loads((run / "config.json").read_text())["provenance"]] == [
        str(tiny_run.parent),
        str(elsewhere),
    ]


def test_slim_checkpoint_predicts_identically_and_is_smaller(tiny_run, tmp_path):
    last = tiny_run / "last.ckpt"
    slim, depth_only = tmp_path / "slim.ckpt", tmp_path / "depth.ckpt"
    report = _invoke("weights", "slim", last, "--out", slim).output
    _invoke("weights", "slim", last, "--out", depth_only, "--depth-only")
    full_payload, slim_payload = load_checkpoint(last), load_checkpoint(slim)
    assert "train_state" not in slim_payload and "pose" in slim_payload["networks"]
    assert "networks" not in load_checkpoint(depth_only)
    assert slim_payload["trained"]["step"] == 2 and slim_payload["provenance"] == full_payload["provenance"]
    info = json.loads(_invoke("weights", "info", slim, "--json").output)
    assert info["source"] == "training run, step 2, weights only"
    assert info["provenance"]["command"] == full_payload["provenance"]["command"]
    sizes = [path.stat().st_size for path in (last, slim, depth_only)]
    # Adam keeps two moments per parameter: the training state is about twice the weights
    assert sizes[0] > 2.5 * sizes[1] and sizes[1] > sizes[2]
    assert f"{sizes[0] / 1e6:.1f} MB -> {sizes[1] / 1e6:.1f} MB" in report and "train_state" in report
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        predictions = [load_depth_model(path).net(images)[("disp", 0)] for path in (last, slim, depth_only)]
    assert torch.equal(predictions[0], predictions[1]) and torch.equal(predictions[0], predictions[2])


def test_slim_refuses_to_overwrite_its_source_and_depth_only_on_other_kinds(tiny_run, tmp_path):
    last = str(tiny_run / "last.ckpt")
    result = CliRunner().invoke(app, ["weights", "slim", last, "--out", last])
    assert isinstance(result.exception, DepthcliError) and "is the checkpoint itself" in str(result.exception)
    encoder = save_checkpoint(tmp_path / "encoder.ckpt", {"kind": "encoder", "config": {}, "model": {}})
    args = ["weights", "slim", str(encoder), "--out", str(tmp_path / "x.ckpt"), "--depth-only"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, DepthcliError) and "not a depth net" in str(result.exception)
