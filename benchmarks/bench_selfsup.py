"""Self-supervised training: throughput per preset, and the quality bar of issue 4.

    python benchmarks/bench_selfsup.py throughput --sizes 640x192,320x96 --batch-size 4
    python benchmarks/bench_selfsup.py quality --steps 1200 --presets radepth,diffnet --small [--amp auto|off]

`throughput`: train steps on a fixed synthetic batch (the recipe's full loss, optimizer step
included) and report images/s (wall clock) and images per CPU-second.
`quality`: render a synthetic KITTI-like training drive and a held-out drive (another seed), train
each preset for a fixed number of steps with `depthcli demo`'s from-scratch schedule (LR warmup,
consistency ramp, LR drop for the last quarter; the minutes taken are reported), and compare
median-scaled abs_rel on the held-out drive with the same net untrained and with a constant "mean
training depth" prediction. The bar: trained <= 0.5 x untrained and clearly better than the
baseline (read as >= 20 % lower abs_rel; an untrained net that is worse than the constant makes the
first half easy, so both are printed). `--small` trains each preset's recipe on its half-width
HRNet-W9 net (`radepth-small`, `diffnet-small`), as `depthcli demo` does on a CPU. `--amp` sets the
networks' precision (default auto: bf16 where the CPU has it natively; off: float32). Training runs at
320x96 by default: at the demo's 192x64 a facade 25 m ahead moves under a pixel per frame, the
photometric loss cannot tell it from the sky, and diffnet-small ended worse than the baseline.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from depthcli.engine.runner import run_recipe
from depthcli.engine.selfsup import SELFSUP_RECIPE, SelfSupTask, from_scratch_schedule, training_transform
from depthcli.geometry import intrinsics_from_normalised
from depthcli.recipe_configs import SELFSUP
from depthcli.sizes import parse_resolutions

KITTI_K = torch.tensor([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _random_batch(config, batch_size: int) -> dict:
    width, height = config.size
    transform = training_transform(config)
    samples = []
    for index in range(batch_size):
        sample = {}
        for frame in config.frame_ids:
            sample[("color", frame, 0)] = torch.rand(3, height, width)
            sample[("color_aug", frame, 0)] = sample[("color", frame, 0)].clone()
        K = intrinsics_from_normalised(KITTI_K, width, height)
        sample[("K", 0)], sample[("inv_K", 0)], sample["index"] = K, torch.linalg.inv(K), index
        samples.append(transform(sample) if transform else sample)
    return default_collate(samples)


def throughput(presets: list[str], sizes: list[tuple[int, int]], batch_size: int, steps: int) -> list[dict]:
    rows = []
    for preset in presets:
        for size in sizes:
            config = SELFSUP.build_config(preset, overrides={"size": size})
            torch.manual_seed(0)
            task = SelfSupTask(config)
            optimizer = torch.optim.Adam(task.parameters(), lr=1e-4)
            batch = _random_batch(config, batch_size)
            timings = []
            for _ in range(steps + 1):  # the first step warms up allocators and kernels
                wall, cpu = time.perf_counter(), time.process_time()
                loss = task(batch)["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                timings.append((time.perf_counter() - wall, time.process_time() - cpu))
            wall_s = sum(t[0] for t in timings[1:]) / steps
            cpu_s = sum(t[1] for t in timings[1:]) / steps
            row = {
                "preset": preset,
                "size": f"{size[0]}x{size[1]}",
                "batch": batch_size,
                "threads": torch.get_num_threads(),
                "images_per_s": round(batch_size / wall_s, 3),
                "images_per_cpu_s": round(batch_size / cpu_s, 3),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def _all_frames_split(root: Path) -> Path:
    lines = []
    for name in ("train_files.txt", "val_files.txt", "test_files.txt"):
        path = root / name
        if path.is_file():
            lines += [line for line in path.read_text().splitlines() if line.strip()]
    split = root / "all_files.txt"
    split.write_text("\n".join(lines) + "\n")
    return split


def quality(
    presets: list[str],
    steps: int,
    frames: int,
    size: tuple[int, int],
    batch_size: int,
    lr: float,
    out: Path,
    world_size: tuple[int, int],
    small: bool = False,
    amp: str = "auto",
):
    from depthcli.evaluation.eval_sets import open_eval_set
    from depthcli.evaluation.evaluate import EvalOptions, evaluate_model, evaluate_predictions
    from depthcli.nets.loading import load_depth_model
    from depthcli.synth import synth_kitti

    train_root, test_root = out / "world_train", out / "world_test"
    if not train_root.is_dir():  # reuse the worlds of an earlier run into the same --out
        synth_kitti(train_root, frames=frames, size=world_size, seed=0)
        synth_kitti(test_root, frames=max(8, frames // 4), size=world_size, seed=1)
    eval_set = open_eval_set(test_root, _all_frames_split(test_root), "kitti-eigen")
    table = {}
    for preset in presets:
        overrides = {"data": str(train_root), "split": str(_all_frames_split(train_root)), "size": size,
                     "batch_size": batch_size, "epochs": 1000, "num_workers": 0, "save_every": 100,
                     "amp": amp, "lr": lr, **from_scratch_schedule(steps)}  # fmt: skip
        if small:
            overrides["net"] = f"{SELFSUP.preset_values(preset)['net']}-small"
        config = SELFSUP.build_config(preset, overrides=overrides)
        start = time.monotonic()
        run_dir = out / f"run_{config.net}_lr{lr:g}_amp{amp}"
        result = run_recipe(SELFSUP_RECIPE, config, run_dir, overwrite=True, progress=True).train
        model = load_depth_model(result.last_checkpoint)
        trained = evaluate_model(model.net, eval_set, [size], model.min_depth, model.max_depth)[0].summary()
        untrained_net = SelfSupTask.from_config(config).networks["depth"]  # the trained net's own initial weights
        untrained = evaluate_model(untrained_net, eval_set, [size], config.min_depth, config.max_depth)[0].summary()
        table[preset] = {"steps": result.steps, "minutes": (time.monotonic() - start) / 60,
                         "trained": trained, "untrained": untrained}  # fmt: skip
    constant = [np.ones(size[::-1], dtype=np.float32) for _ in range(len(eval_set))]
    table["baseline"] = evaluate_predictions(constant, eval_set, EvalOptions(pred_type="depth")).summary()
    print(json.dumps(table, indent=2))
    baseline = table["baseline"]["abs_rel"]
    for preset in presets:
        row = table[preset]
        trained, untrained = row["trained"]["abs_rel"], row["untrained"]["abs_rel"]
        # "clearly better than the baseline" read as at least 20 % lower abs_rel
        verdict = "met" if trained <= 0.5 * untrained and trained <= 0.8 * baseline else "NOT met"
        print(
            f"{preset:10s} steps {row['steps']:5d}  abs_rel trained {trained:.3f}  untrained {untrained:.3f} "
            f"(x{trained / untrained:.2f})  baseline {baseline:.3f} (x{trained / baseline:.2f})  bar {verdict}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    speed = sub.add_parser("throughput")
    speed.add_argument("--presets", default="monodepth2,diffnet,radepth")
    speed.add_argument("--sizes", default="640x192,320x96")
    speed.add_argument("--batch-size", type=int, default=4)
    speed.add_argument("--steps", type=int, default=3)
    good = sub.add_parser("quality")
    good.add_argument("--presets", default="radepth,diffnet")
    good.add_argument("--steps", type=int, default=1200)
    good.add_argument("--frames", type=int, default=120)
    good.add_argument("--size", default="320x96", help="training size (at 192x64 far parallax is sub-pixel)")
    good.add_argument("--world-size", default="416x128", help="rendered frames (and GT) size")
    good.add_argument("--batch-size", type=int, default=4)
    good.add_argument("--lr", type=float, default=5e-4)
    good.add_argument("--small", action="store_true", help="the presets' recipes on the half-width nets")
    good.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"), help="network precision")
    good.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.mode == "throughput":
        throughput(args.presets.split(","), parse_resolutions(args.sizes), args.batch_size, args.steps)
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="bench_selfsup_"))
        print(f"writing into {out}")
        quality(args.presets.split(","), args.steps, args.frames, parse_resolutions(args.size)[0],
                args.batch_size, args.lr, out, parse_resolutions(args.world_size)[0], args.small, args.amp)  # fmt: skip


if __name__ == "__main__":
    main()
