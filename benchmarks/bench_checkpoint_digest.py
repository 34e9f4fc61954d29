"""What the checkpoint digest costs: loading and saving a RA-Depth training checkpoint with and without it.

The checkpoint is what `depthcli train --preset radepth` writes as last.ckpt: the depth net, the pose net and
Adam's two moments for each (random values, the real shapes). Timings alternate between the variants, so that
other jobs on the machine slow both alike; medians and their ratio are printed.

    python benchmarks/bench_checkpoint_digest.py [--repeats 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from depthcli.checkpoints import check_finite_weights, load_checkpoint, payload_digest, save_checkpoint
from depthcli.config import config_to_dict
from depthcli.engine.selfsup import SelfSupTask
from depthcli.recipe_configs import SELFSUP


def training_payload() -> dict:
    config = SELFSUP.build_config("radepth", overrides={"size": (640, 192)})
    task = SelfSupTask(config)
    parameters = [p for p in task.parameters() if p.requires_grad]
    state = {
        index: {"step": torch.tensor(100.0), "exp_avg": torch.randn_like(p), "exp_avg_sq": torch.rand_like(p)}
        for index, p in enumerate(parameters)
    }
    optimizer = {"state": state, "param_groups": [{"lr": 1e-4, "params": list(range(len(parameters)))}]}
    return {
        "kind": "depth",
        "config": config_to_dict(config),
        **task.checkpoint_payload(),
        "train_state": {"step": 100, "epoch": 0, "batch_in_epoch": 100, "best_metric": None, "optimizer": optimizer},
    }


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write the checkpoints (default: a temp dir).")
    args = parser.parse_args()
    payload = training_payload()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        with_digest = save_checkpoint(Path(scratch) / "last.ckpt", payload)
        plain = Path(scratch) / "plain.ckpt"
        torch.save({"format": "depthcli", "version": 1, **payload}, plain)
        size_mb = with_digest.stat().st_size / 1e6
        loaded = torch.load(with_digest, weights_only=True)
        times: dict[str, list[float]] = {name: [] for name in ("torch.load", "load_checkpoint", "digest", "finite",
                                                                "torch.save", "save_checkpoint")}  # fmt: skip
        for _ in range(args.repeats):
            times["torch.load"].append(_timed(lambda: torch.load(plain, map_location="cpu", weights_only=True)))
            times["load_checkpoint"].append(_timed(lambda: load_checkpoint(with_digest)))
            times["digest"].append(_timed(lambda: payload_digest(loaded)))
            times["finite"].append(_timed(lambda: check_finite_weights(loaded, with_digest)))
            times["torch.save"].append(_timed(lambda: torch.save(payload, Path(scratch) / "t.ckpt")))
            times["save_checkpoint"].append(_timed(lambda: save_checkpoint(Path(scratch) / "s.ckpt", payload)))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"RA-Depth training checkpoint: {size_mb:.0f} MB, {args.repeats} repeats, torch {torch.__version__}")
    for name, value in medians.items():
        print(f"  {name:16s} {value * 1000:8.0f} ms")
    print(f"  load:  with digest / plain torch.load = {medians['load_checkpoint'] / medians['torch.load']:.2f}")
    print(f"  save:  save_checkpoint / plain torch.save = {medians['save_checkpoint'] / medians['torch.save']:.2f}")
    print(f"  digest throughput {size_mb / medians['digest']:.0f} MB/s")


if __name__ == "__main__":
    main()
