"""RA-Depth's claim: depth that holds up when the test resolution differs from the training one.

    python benchmarks/bench_resolution.py [--presets monodepth2,diffnet,radepth] [--seeds 0,1]
        [--steps 1200] [--batch-size 4] [--size 320x96] [--ladder 224x64,256x64,320x96,416x128,512x160] [--fast]
        [--full-nets] [--out DIR] [--results benchmarks/results]

Each preset's recipe trains from scratch on the same synthetic KITTI-like drive (seed 0, 120 frames
rendered at 416x128) with the same budget (steps, batch 4, lr 5e-4, the from-scratch schedule of
`depthcli demo`), one run per seed; DIFFNet and RA-Depth on their half-width HRNet-W9 nets
(`diffnet-small`, `radepth-small`) unless `--full-nets`, monodepth2 on its ResNet-18. Then
`depthcli sweep` scores every checkpoint on a held-out drive (seed 1, rendered at 640x192 so that every
rung is a downscale, as KITTI's 1242x375 frames are for the paper's ladder) at each rung of the ladder,
KITTI Eigen protocol (velodyne GT, median scaling), and draws the overlay plot (mean ± std per recipe).

The paper trains at 640x192 and tests 416x128..1024x320 (0.65x..1.6x). At the affordable 320x96 the
same factors are 208x62, 256x77, 416x125, 512x154; sizes must be multiples of 32 and at least 64, so the
default ladder is 224x64, 256x64, 320x96, 416x128, 512x160 (the 0.8x rung keeps its width and takes the
nearest height). Reported per recipe: abs_rel per rung, and the spread (max - min abs_rel over the rungs)
per seed, then mean and std over seeds. RA-Depth's direction is a smaller spread than DIFFNet's and
monodepth2's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from selfsup_runs import (
    add_training_arguments,
    claim_worlds,
    constant_baseline,
    depthcli,
    fmt,
    load_conditions,
    mean_and_spread,
    run_summary,
    train_run,
    write_json,
)

from depthcli.sizes import HALF_RESOLUTION_LADDER, format_size, parse_resolutions

SMALL_NETS = {"monodepth2": "monodepth2", "diffnet": "diffnet-small", "radepth": "radepth-small"}
FULL_NETS = {"monodepth2": "monodepth2", "diffnet": "diffnet", "radepth": "radepth"}
DEFAULT_LADDER = ",".join(format_size(size) for size in HALF_RESOLUTION_LADDER)


def run(args) -> dict:
    out = args.out
    worlds = claim_worlds(out, args.size)
    test_root, test_split = worlds.test_root, worlds.test_split
    nets = FULL_NETS if args.full_nets else SMALL_NETS
    runs: dict[str, list[dict]] = {}
    for seed in args.seeds:  # seed-major: a first full row of recipes comes early
        for preset in args.presets:
            net = nets[preset]
            record = train_run(
                out / "runs" / f"{net}_s{seed}", preset, worlds.train_cache, size=args.size,
                steps=args.steps, seed=seed, fast=args.fast, batch_size=args.batch_size, config={"net": net},
            )  # fmt: skip
            print(f"trained {net} seed {seed}: {record['wall_minutes']:.1f} min, cpu share {record['cpu_share']}")
            runs.setdefault(net, []).append(record)
    sweep_dir = out / "sweep"
    command = ["sweep", "--data", test_root, "--split", test_split, "--out", sweep_dir]
    command += ["--resolutions", ",".join(fmt(size) for size in args.ladder), "--json", sweep_dir / "rows.json"]
    for net, records in runs.items():
        paths = [record["checkpoint"] for record in records]
        command += ["--group", f"{net}=" + ",".join(paths)] if len(paths) > 1 else ["--checkpoint", paths[0]]
    depthcli(*command)
    rows = json.loads((sweep_dir / "rows.json").read_text())
    baseline = constant_baseline(test_root, test_split)
    table = summarise(rows, runs, args, baseline["abs_rel"])
    table["sweep_command"] = "depthcli " + " ".join(map(str, command))
    return table


def summarise(rows: list[dict], runs: dict[str, list[dict]], args, baseline_abs_rel: float) -> dict:
    """abs_rel per rung (mean and std over seeds) and the spread over rungs, per recipe."""
    ladder = [fmt(size) for size in args.ladder]
    by_checkpoint: dict[str, dict[str, float]] = {}
    for row in rows:
        if "group" not in row:
            by_checkpoint.setdefault(row["checkpoint"], {})[row["resolution"]] = row["abs_rel"]
    methods = {}
    for net, records in runs.items():
        labels = [label for label in by_checkpoint if label.startswith(f"{net}: ")]
        per_seed = [[by_checkpoint[label][rung] for rung in ladder] for label in labels]
        spreads = [max(values) - min(values) for values in per_seed]
        methods[net] = {
            "abs_rel_per_rung": {rung: mean_and_spread([s[i] for s in per_seed]) for i, rung in enumerate(ladder)},
            "spread": mean_and_spread(spreads),
            "spread_per_seed": spreads,
            "seeds": args.seeds,
            **run_summary(records),
        }
    return {
        "ladder": ladder,
        "trained_at": fmt(args.size),
        "steps": args.steps,
        "fast_setting": args.fast,
        "constant_baseline_abs_rel": baseline_abs_rel,
        "methods": methods,
        "load": load_conditions(),
    }


def print_table(table: dict) -> None:
    ladder = table["ladder"]
    print(
        f"\nabs_rel on the held-out drive (KITTI Eigen, median scaling), mean ± std over seeds; trained at "
        f"{table['trained_at']} (*) for {table['steps']} steps; constant prediction "
        f"{table['constant_baseline_abs_rel']:.3f}"
    )
    rungs = [rung + ("*" if rung == table["trained_at"] else "") for rung in ladder]
    print(f"{'net':14s} | " + " | ".join(f"{rung:>13s}" for rung in rungs) + " | spread (max-min)")
    for net, method in table["methods"].items():
        cells = [f"{method['abs_rel_per_rung'][rung]['mean']:.3f} ± {method['abs_rel_per_rung'][rung]['std']:.3f}"
                 for rung in ladder]  # fmt: skip
        spread = f"{method['spread']['mean']:.3f} ± {method['spread']['std']:.3f}"
        print(f"{net:14s} | " + " | ".join(f"{cell:>13s}" for cell in cells) + f" | {spread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="monodepth2,diffnet,radepth", type=lambda text: text.split(","))
    add_training_arguments(parser, size_help="training size")
    parser.add_argument("--ladder", type=parse_resolutions, default=parse_resolutions(DEFAULT_LADDER))
    parser.add_argument("--full-nets", action="store_true", help="diffnet/radepth on HRNet-18 instead of HRNet-W9")
    args = parser.parse_args()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="bench_resolution_"))
    print(f"writing into {args.out}")
    table = run(args)
    print_table(table)
    write_json(args.out / "resolution.json", table)
    if args.results:
        write_json(args.results / "resolution.json", table)
        shutil.copyfile(args.out / "sweep" / "sweep.png", args.results / "resolution_sweep.png")


if __name__ == "__main__":
    main()
