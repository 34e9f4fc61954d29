"""`depthcli train` end to end on a synthetic KITTI drive: raw root -> cache -> run dir -> resume."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.nets import build_depth_net
from depthcli.nets.loading import load_depth_model


def test_train_from_raw_root_then_resume_with_config_precedence(tmp_path, synthetic_kitti):
    run = tmp_path / "run"
    config_file = tmp_path / "mine.toml"
    config_file.write_text("lr = 0.002\nbatch_size = 4\nsmoothness_weight = 0.01\n")
    init = tmp_path / "init.ckpt"
    torch.manual_seed(0)
    init_config = {"net": "radepth", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0}
    save_checkpoint(init, {"kind": "depth", "config": init_config, "model": build_depth_net("radepth").state_dict()})
    common = ["--num-workers", "0", "--no-progress", "--out", str(run)]
    first = CliRunner().invoke(
        app,
        ["train", "--preset", "radepth", "--config", str(config_file), "--data", str(synthetic_kitti),
         "--init", str(init), "--size", "64x64", "--max-steps", "2", "--batch-size", "2", "--no-augment",
         "--log-every", "1", *common],
    )  # fmt: skip
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert str(run) in first.output
    # no --split: the raw root's own training list, said so (its test drives stay out)
    assert f"split: {synthetic_kitti / 'train_files.txt'} (the raw root's own" in first.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["split"] == str(synthetic_kitti / "train_files.txt")
    # preset (radepth) < file (lr, batch 4, smoothness) < flags (batch 2, size, steps)
    assert (saved["net"], saved["lr"], saved["batch_size"], saved["smoothness_weight"]) == ("radepth", 0.002, 2, 0.01)
    assert saved["size"] == [64, 64] and saved["max_steps"] == 2
    assert (saved["augment"], saved["log_every"]) == (False, 1)  # the switches an official-parity run needs
    assert (run / "train_cache.h5").is_file() and (run / "loss.png").is_file()
    assert load_checkpoint(run / "last.ckpt")["train_state"]["step"] == 2

    init.unlink()  # the file the run started from is gone: the checkpoint holds what resuming needs
    second = CliRunner().invoke(app, ["train", "--resume", "--max-steps", "3", *common])
    assert second.exit_code == 0, second.output + repr(second.exception)
    state = load_checkpoint(run / "last.ckpt")
    assert state["train_state"]["step"] == 3 and state["config"]["lr"] == 0.002
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert steps == [1, 2, 3]  # logged at every step, before and after the resume
    loaded = load_depth_model(run / "last.ckpt")
    model, config = loaded.net, loaded.config
    assert config["net"] == "radepth" and config["size"] == [64, 64]
    assert (loaded.net_name, loaded.size, loaded.min_depth, loaded.max_depth) == ("radepth", (64, 64), 0.1, 100.0)
    with torch.no_grad():
        disp = model(torch.rand(1, 3, 64, 64))[("disp", 0)]
    assert disp.shape == (1, 1, 64, 64)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--preset", "radepth", "--data", "nowhere.h5"], "does not exist"),
        (["--preset", "monodepth3", "--data", "x"], "unknown preset"),
        (["--preset", "radepth", "--data", "x", "--size", "100x64"], "multiples of 32"),
        (["--preset", "radepth", "--data", "x", "--amp", "fp8"], "--amp 'fp8'"),
        (["--data", "x"], "--preset is required"),
        (["--resume"], "--resume: no checkpoint"),
    ],
)
def test_bad_train_arguments_are_one_line_errors(tmp_path, args, pattern):
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), "--no-progress", *args])
    assert isinstance(result.exception, DepthcliError), result.output
    assert pattern in str(result.exception)


def test_train_from_raw_root_caches_the_neighbours_its_frame_ids_name(tmp_path, synthetic_kitti):
    import h5py

    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["train", "--preset", "monodepth2", "--set", "net=radepth-small", "--set", "scales=[0]",
         "--set", "frame_ids=[0,2,-2]", "--data", str(synthetic_kitti), "--size", "64x64", "--max-steps", "1",
         "--batch-size", "2", "--num-workers", "0", "--no-progress", "--out", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    with h5py.File(run / "train_cache.h5") as handle:
        assert list(handle["samples/frames"].attrs["offsets"]) == [0, -2, 2]
        assert all(index >= 2 for index in handle["samples/frame_index"][()])  # frames 0 and 1 lack frame -2
    assert json.loads((run / "config.json").read_text())["frame_ids"] == [0, 2, -2]
