"""What the claim benchmarks share: synthetic worlds, training runs and evaluations through the `depthcli` CLI.

Every step goes through the command line a user types (`depthcli synth`, `depthcli train --config`,
`depthcli eval --json`, `depthcli sweep`), so the benchmarks measure the product, not private
functions. A finished run leaves `bench_run.json` (command, wall time, CPU share, load) in its folder
and is reused by later invocations into the same `--out`, so a long benchmark can be stopped and started
again without losing finished runs.

`fast=True` is the fast CPU setting (`--amp auto`: bf16 autocast for the networks where the CPU does bf16
natively, loss maths in float32) with channels-last tensors; `fast=False` is float32 with channels-last.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_RECORD = "bench_run.json"


def depthcli(*args: str, capture: bool = False) -> str:
    """Run `depthcli ARGS` in this interpreter's environment; stdout when `capture` (else streamed)."""
    command = [sys.executable, "-m", "depthcli", *map(str, args)]
    result = subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return result.stdout if capture else ""


def load_conditions() -> dict[str, Any]:
    """Load average and thread setting, recorded next to every timing (the cores are shared)."""
    return {"loadavg_1m": round(os.getloadavg()[0], 2), "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset")}


def all_frames_split(root: Path) -> Path:
    """ROOT/all_files.txt: train + val + test lines of a one-drive world (a held-out world is scored whole)."""
    lines = []
    for name in ("train_files.txt", "val_files.txt", "test_files.txt"):
        path = root / name
        if path.is_file():
            lines += [line for line in path.read_text().splitlines() if line.strip()]
    split = root / "all_files.txt"
    if not split.is_file():
        split.write_text("\n".join(lines) + "\n")
    return split


def synth_world(root: Path, frames: int, size: tuple[int, int], seed: int, drives: int = 1) -> Path:
    """`depthcli synth kitti` into ROOT unless an earlier run already rendered it."""
    if not (root / "test_files.txt").is_file():
        depthcli("synth", "kitti", root, "--frames", frames, "--drives", drives, "--size", fmt(size), "--seed", seed)
    return root


def kitti_cache(root: Path, split: Path, out: Path, size: tuple[int, int] | None = None) -> Path:
    """`depthcli cache build` of a world's split (resized for training, full size with GT for evaluation)."""
    if not out.is_file():
        args = ["--size", fmt(size)] if size else []
        depthcli("cache", "build", "--dataset", "kitti", "--root", root, "--split", split, "--out", out, *args)
    return out


@dataclass(frozen=True)
class ClaimWorlds:
    """The synthetic drives the claim benchmarks share: a training drive cached at the training size and a
    held-out test drive (both reused when a benchmark runs again into the same folder)."""

    test_root: Path
    test_split: Path
    train_cache: Path


def claim_worlds(out: Path, train_size: tuple[int, int]) -> ClaimWorlds:
    """120 training frames at 416x128 (seed 0) cached at `train_size`; 30 test frames at 640x192 (seed 1)."""
    train_root = synth_world(out / "world_train", frames=120, size=(416, 128), seed=0)
    test_root = synth_world(out / "world_test", frames=30, size=(640, 192), seed=1)
    train_cache = kitti_cache(train_root, all_frames_split(train_root), out / "train.h5", train_size)
    return ClaimWorlds(test_root, all_frames_split(test_root), train_cache)


def run_summary(records: list[dict]) -> dict[str, Any]:
    """What a table says about how its runs were trained: minutes, CPU share, the first run's command."""
    return {
        "train_minutes": [record["wall_minutes"] for record in records],
        "cpu_share": [record["cpu_share"] for record in records],
        "train_command": records[0]["command"],
    }


def fmt(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def train_run(
    run_dir: Path,
    preset: str,
    data: Path,
    *,
    split: Path | None = None,
    size: tuple[int, int],
    steps: int,
    seed: int,
    fast: bool,
    lr: float = 5e-4,
    batch_size: int = 4,
    config: dict[str, Any] | None = None,
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`depthcli train` for `steps` steps into RUN_DIR (or the record of a finished earlier run), from scratch
    unless `config` names an `init` checkpoint.

    `config` adds config keys (e.g. `net`); they travel in a JSON `--config` file, as a user would write them.
    Returns the run record: checkpoint, command, wall minutes, CPU share and the load around the run.
    """
    record_path = run_dir / RUN_RECORD
    if record_path.is_file():
        return json.loads(record_path.read_text())
    from depthcli.engine.selfsup import from_scratch_schedule  # torch only once a run trains

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    keys = {
        **from_scratch_schedule(steps),
        "epochs": 100000,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "num_workers": 0,
        "save_every": 200,
        "channels_last": True,
        "amp": "auto" if fast else "off",
        **(config or {}),
    }
    config_file = run_dir.parent / f"{run_dir.name}.config.json"  # beside the run: a new run needs an empty dir
    config_file.write_text(json.dumps(keys, indent=2) + "\n")
    args = ["train", "--preset", preset, "--config", config_file, "--data", data, "--size", fmt(size)]
    args += (["--split", split] if split else []) + ["--out", run_dir, "--no-progress", *flags]
    resume = (run_dir / "last.ckpt").is_file()  # `--resume auto` also starts over a run killed before its first save
    before, cpu_before, start = load_conditions(), _children_cpu_s(), time.monotonic()
    depthcli(*args, "--resume", "auto")
    wall = time.monotonic() - start
    record = {
        "checkpoint": str(run_dir / "last.ckpt"),
        "command": "depthcli " + " ".join(map(str, args)),
        "config": keys,
        "steps": steps,
        "wall_minutes": round(wall / 60, 2),
        "cpu_share": round((_children_cpu_s() - cpu_before) / wall, 2),  # CPUs used on average (2 = both cores)
        "resumed": resume,
        "load_before": before,
        "load_after": load_conditions(),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def eval_rows(checkpoints: list[Path], data: Path, split: Path | None, *args: str) -> list[dict]:
    """`depthcli eval --json -` rows for the checkpoints (each at its training size unless args say otherwise)."""
    command = ["eval", "--data", data, *(["--split", split] if split else []), "--json", "-", *args]
    for checkpoint in checkpoints:
        command += ["--checkpoint", checkpoint]
    return json.loads(depthcli(*command, capture=True))


def constant_baseline(data: Path, split: Path | None, protocol: str = "kitti-eigen", gt: str | None = None) -> dict:
    """Metrics of a constant depth map (median-scaled, so any constant scores the same): the no-learning bar."""
    import numpy as np

    from depthcli.evaluation.eval_sets import open_eval_set
    from depthcli.evaluation.evaluate import EvalOptions, evaluate_predictions
    from depthcli.evaluation.protocols import build_protocol

    options = EvalOptions(protocol=build_protocol(protocol, gt=gt), pred_type="depth", median_scaling=True)
    eval_set = open_eval_set(data, split, options.protocol)
    constant = [np.ones(eval_set.load_gt(i).shape, np.float32) for i in range(len(eval_set))]
    return evaluate_predictions(constant, eval_set, options).summary()


def mean_and_spread(values: list[float]) -> dict[str, float]:
    """Mean, sample std and range of a few seeds' values."""
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "min": float(array.min()), "max": float(array.max())}


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def add_training_arguments(parser, size_help: str) -> None:
    """The training-budget options bench_resolution.py and bench_boundary.py share (every run alike)."""
    from depthcli.sizes import parse_size

    parser.add_argument("--seeds", default="0,1", type=lambda text: [int(s) for s in text.split(",")])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--size", type=parse_size, default=(320, 96), help=size_help)
    parser.add_argument("--batch-size", type=int, default=4, help="training batch (every run alike)")
    parser.add_argument("--fast", action="store_true", help="--amp auto + channels-last (the fast CPU setting)")
    parser.add_argument("--out", type=Path, default=None, help="worlds and runs (reused when run again)")
    parser.add_argument("--results", type=Path, default=None, help="copy the table (JSON) and plot (PNG) here")
