"""A requeued cluster job: `depthcli train` in a real process is sent SIGTERM mid-run, saves, exits 143 naming
the resume command, and `--resume auto` continues it bit for bit as the run would have gone on uninterrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from depthcli.checkpoints import load_checkpoint
from depthcli.data.cache import build_cache

TIMEOUT_S = 240


@pytest.fixture(scope="module")
def train_cache(tmp_path_factory, kitti_mini):
    """The eight training samples of the real KITTI sample at 64x64 (two steps of batch 2 per epoch... four)."""
    out = tmp_path_factory.mktemp("interrupt") / "train.h5"
    return build_cache("kitti", kitti_mini, out, split=kitti_mini / "train_files.txt", size=(64, 64))


def _command(cache, out, *extra: str) -> list[str]:
    # lr_decay_at 1: no decay inside the run, so a resumed run told to stop earlier keeps the same schedule
    return [sys.executable, "-m", "depthcli", "train", "--preset", "monodepth2", "--data", str(cache),
            "--batch-size", "2", "--num-workers", "0", "--save-every", "0", "--log-every", "1", "--no-progress",
            "--set", "lr_decay_at=1.0", "--out", str(out), *extra]  # fmt: skip


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, env=_environment())


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the same arithmetic in every run


def _logged_steps(run) -> int:
    metrics = run / "metrics.jsonl"
    return len(metrics.read_text().splitlines()) if metrics.is_file() else 0


def test_sigterm_saves_exits_143_and_resume_auto_continues_bit_for_bit(tmp_path, train_cache):
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(train_cache, killed, "--resume", "auto", "--max-steps", "1000"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
    )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while _logged_steps(killed) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    saved = load_checkpoint(killed / "last.ckpt")["train_state"]["step"]
    assert 2 <= saved < 1000
    assert f"stopped by SIGTERM at step {saved} of 1000" in stderr
    assert f"continue it with `depthcli train --resume --out {killed}`" in stderr
    assert "Traceback" not in stderr and not list(killed.glob(".*.tmp")) and not list(killed.glob("*.lock"))

    # the requeued job runs the same command line (told to stop two steps later, to keep the test short)
    resumed = _run(_command(train_cache, killed, "--resume", "auto", "--max-steps", str(saved + 2)))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming monodepth2" in resumed.stdout
    straight = _run(_command(train_cache, tmp_path / "straight", "--max-steps", str(saved + 2)))
    assert straight.returncode == 0, straight.stderr

    a, b = (load_checkpoint(run / "last.ckpt") for run in (killed, tmp_path / "straight"))
    assert a["train_state"]["step"] == b["train_state"]["step"] == saved + 2
    for part in ("model", "networks"):
        flat_a, flat_b = _tensors(a[part]), _tensors(b[part])
        assert flat_a.keys() == flat_b.keys()
        for name, tensor in flat_a.items():
            assert torch.equal(tensor, flat_b[name]), name
    losses = [
        [line for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (killed, tmp_path / "straight")
    ]
    strip = [[_without_speed(line) for line in lines] for lines in losses]
    assert strip[0] == strip[1] and len(strip[0]) == saved + 2


def _tensors(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict):
            flat.update(_tensors(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _without_speed(line: str) -> dict:
    import json

    record = json.loads(line)
    record.pop("images_per_s", None)
    return record
