"""Runs a researcher can trust: kept checkpoints (step, epoch, best), provenance in config.json and checkpoints,
and the training device."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from test_train_loop import LineFit, NoisyPoints, _config
from torch import nn

import depthcli
from depthcli.checkpoints import load_checkpoint
from depthcli.config import build_config, load_config_file
from depthcli.engine import distributed
from depthcli.engine.trainer import train
from depthcli.errors import DepthcliError
from depthcli.recipe_configs import TrainConfig


class LineFitWithPose(LineFit):
    """LineFit with a second network, as the self-supervised task has its pose net."""

    def __init__(self) -> None:
        super().__init__()
        self.networks["pose"] = nn.Linear(3, 6)


def _equal_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_step_checkpoints_keep_the_last_n_and_epochs_are_weights_only(tmp_path):
    torch.manual_seed(0)
    seen = {}

    def snapshot(step, losses):  # last.ckpt as it stands after each step's save
        seen[step] = load_checkpoint(tmp_path / "last.ckpt")

    config = _config(save_every=1, keep_last=2, save_epochs=True)  # 3 epochs of 3 steps
    train(LineFitWithPose(), NoisyPoints(), config, tmp_path, progress=False, on_step=snapshot)
    assert sorted(p.name for p in tmp_path.glob("step_*.ckpt")) == ["step_0000008.ckpt", "step_0000009.ckpt"]
    step_8 = load_checkpoint(tmp_path / "step_0000008.ckpt")
    assert step_8["train_state"]["step"] == 8 and _equal_states(step_8["model"], seen[8]["model"])
    assert sorted(p.name for p in tmp_path.glob("epoch_*.ckpt")) == ["epoch_00.ckpt", "epoch_01.ckpt", "epoch_02.ckpt"]
    for epoch in range(3):
        weights = load_checkpoint(tmp_path / f"epoch_{epoch:02d}.ckpt", expected_kind="depth")
        step = 3 * (epoch + 1)
        assert "train_state" not in weights and "networks" not in weights  # the pose net only when asked
        assert weights["trained"] == {"step": step, "epoch": epoch + 1, "best_metric": None}
        assert _equal_states(weights["model"], seen[step]["model"])


def test_keep_all_networks_keeps_the_pose_net_in_weights_only_files(tmp_path):
    torch.manual_seed(0)
    config = _config(save_epochs=True, keep_all_networks=True, max_steps=3)
    train(LineFitWithPose(), NoisyPoints(), config, tmp_path, val_set=NoisyPoints(), progress=False)
    last = load_checkpoint(tmp_path / "last.ckpt")
    for name in ("best.ckpt", "epoch_00.ckpt"):
        weights = load_checkpoint(tmp_path / name)
        assert _equal_states(weights["networks"]["pose"], last["networks"]["pose"]) and "train_state" not in weights


def test_provenance_in_config_json_and_checkpoints_across_a_resume(tmp_path, monkeypatch):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir(), second_dir.mkdir()
    monkeypatch.chdir(first_dir)
    monkeypatch.setattr("sys.argv", ["depthcli", "train", "--out", "run"])
    torch.manual_seed(0)
    train(LineFit(), NoisyPoints(), _config(max_steps=2), "run", progress=False)
    run = first_dir / "run"
    record = json.loads((run / "config.json").read_text())["provenance"][0]
    assert record["command"] == "depthcli train --out run" and record["cwd"] == str(first_dir)
    assert record["depthcli"] == depthcli.__version__ and record["torch"] == str(torch.__version__)
    assert record["run_dir"] == str(run.resolve()) and record["device"] == "cpu"
    head = subprocess.run(["git", "-C", depthcli.__path__[0], "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert record["git_commit"].split("+")[0] == head.stdout.strip()
    assert load_checkpoint(run / "last.ckpt")["provenance"] == record

    monkeypatch.chdir(second_dir)
    monkeypatch.setattr("sys.argv", ["depthcli", "train", "--resume", "--out", "../first/run"])
    train(LineFit(), NoisyPoints(), _config(max_steps=3), run, resume=True, progress=False)
    records = json.loads((run / "config.json").read_text())["provenance"]
    assert [r["cwd"] for r in records] == [str(first_dir), str(second_dir)]
    assert records[0] == record and "--resume" in records[1]["command"]
    assert load_checkpoint(run / "last.ckpt")["provenance"] == records[1]
    # config.json still reads back as a config file: its provenance is not a config key
    assert "provenance" not in load_config_file(run / "config.json")
    assert build_config(TrainConfig, config_file=run / "config.json").max_steps == 3


@pytest.mark.parametrize(
    "device, cuda_count, pattern",
    [("gpu", 0, "choose auto, cpu, cuda or cuda:N"), ("cuda", 0, "no CUDA device"), ("cuda:1", 1, "only 1 CUDA")],
)
def test_training_device_errors(tmp_path, monkeypatch, device, cuda_count, pattern):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_count)
    with pytest.raises(DepthcliError, match=pattern):
        train(LineFit(), NoisyPoints(), _config(device=device), tmp_path, progress=False)
    assert not tmp_path.joinpath("last.ckpt").exists()


def test_cuda_index_under_torchrun_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DepthcliError, match="local rank; give --device cuda"):
        distributed.setup("cuda:1")


def test_training_runs_on_the_configured_cpu_device(tmp_path):
    torch.manual_seed(0)
    train(LineFit(), NoisyPoints(), _config(device="cpu", max_steps=1), tmp_path, progress=False)
    assert json.loads((tmp_path / "config.json").read_text())["provenance"][0]["device"] == "cpu"
