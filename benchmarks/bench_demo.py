"""Does `depthcli demo`'s recipe learn within its budget? The demo at a fixed number of training steps.

    python benchmarks/bench_demo.py --recipes diffnet:diffnet-small:320x96,radepth:radepth-small:192x64
        --steps 450 [--seeds 0] [--out DIR] [--json FILE]
    python benchmarks/bench_demo.py --steps 0 [--budget-minutes 10]   # the demo as a user runs it

Each recipe (PRESET:NET:SIZE) runs `depthcli.demo.run_demo` (same world: 3 drives x 60 frames at 416x128,
the last drive held out; same batch, learning rate and from-scratch schedule) with the step count fixed
instead of derived from the time budget, so that recipes compare at equal steps whatever the load on the
machine; the minutes each run took and the CPU share it got are printed next to it. The demo's bar:
trained abs_rel at most 0.5x the untrained net's and at most 0.6x the constant baseline's. How many steps
a recipe takes in the demo's 10 minutes is a property of the machine when it is otherwise quiet
(`depthcli demo` times its own steps), so read a row together with that step rate. `--steps 0` runs the
demo as `depthcli demo` does: as many steps as its time budget allows (re-planned while it trains).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from selfsup_runs import load_conditions, write_json

from depthcli.demo import DemoSettings, run_demo
from depthcli.sizes import format_size, parse_size


def parse_recipe(text: str) -> tuple[str, str, tuple[int, int]]:
    preset, net, size = text.split(":")
    return preset, net, parse_size(size)


def run_recipe(out: Path, recipe: tuple[str, str, tuple[int, int]], steps: int, seed: int, minutes: float) -> dict:
    """One demo run (steps 0: within `minutes` of training, as `depthcli demo`); reused from bench_demo.json."""
    preset, net, size = recipe
    budget = f"{steps}" if steps else f"{minutes:g}min"
    run_dir = out / f"{preset}_{net}_{size[0]}x{size[1]}_{budget}_s{seed}"  # a recipe per preset and net
    if (run_dir / "bench_demo.json").is_file():
        return json.loads((run_dir / "bench_demo.json").read_text())
    settings = DemoSettings(
        preset=preset, net=net, train_size=size, max_steps=steps, seed=seed,
        budget_minutes=minutes if steps == 0 else 10_000.0,
    )  # fmt: skip
    load, cpu, start = load_conditions(), resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    result = run_demo(run_dir, settings, log=print)
    wall = time.monotonic() - start
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    summary = result.summary
    trained, untrained = summary["trained"]["abs_rel"], summary["untrained"]["abs_rel"]
    baseline = summary["baseline"]["abs_rel"]
    row = {
        "preset": preset, "net": net, "size": f"{size[0]}x{size[1]}", "steps": summary["training"]["steps"],
        "seed": seed, "budget_minutes": minutes if steps == 0 else None, "training": summary["training"],
        "trained": trained, "untrained": untrained, "baseline": baseline,
        "x_untrained": trained / untrained, "x_baseline": trained / baseline,
        "a1": summary["trained"]["a1"], "demo_minutes": wall / 60, "cpu_share": cpu_s / wall,
        "load_before": load, "load_after": load_conditions(),
        "bar_met": trained <= 0.5 * untrained and trained <= 0.6 * baseline,
    }  # fmt: skip
    write_json(run_dir / "bench_demo.json", row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo = DemoSettings()
    parser.add_argument(
        "--recipes", default=f"{demo.preset}:{demo.net}:{format_size(demo.train_size)}",
        help="PRESET:NET:SIZE list (default: the demo's)",
    )  # fmt: skip
    parser.add_argument("--steps", default="450", help="comma list of step counts (0: the time budget)")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="training budget of --steps 0")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="abs_rel bars per run with the bar's limits (PNG)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_demo_"))
    rows = []
    for recipe in map(parse_recipe, args.recipes.split(",")):
        for steps in map(int, args.steps.split(",")):
            for seed in map(int, args.seeds.split(",")):
                rows.append(run_recipe(out, recipe, steps, seed, args.budget_minutes))
    print(f"\n{'recipe':32s} {'steps':>5s} {'seed':>4s} | {'trained':>7s} {'untrained':>9s} {'baseline':>8s} | "
          f"{'x untr':>6s} {'x base':>6s} | {'bar':>7s} | minutes (cpu share)")  # fmt: skip
    for row in rows:
        name = f"{row['preset']}:{row['net']}:{row['size']}"
        print(
            f"{name:32s} {row['steps']:5d} {row['seed']:4d} | {row['trained']:7.3f} {row['untrained']:9.3f} "
            f"{row['baseline']:8.3f} | {row['x_untrained']:6.2f} {row['x_baseline']:6.2f} | "
            f"{'met' if row['bar_met'] else 'NOT met':>7s} | {row['demo_minutes']:.1f} ({row['cpu_share']:.2f})"
        )
    if args.json:
        write_json(args.json, rows)
    if args.plot:
        print(f"plot: {plot(rows, args.plot)}")


def plot(rows: list[dict], path: Path) -> Path:
    """Trained, untrained and constant abs_rel per run; the bar is trained <= both dashed limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(1.6 + 2.2 * len(rows), 3.2))
    width = 0.25
    for index, row in enumerate(rows):
        bars = {"trained": row["trained"], "untrained (max 1)": min(row["untrained"], 1.0), "constant": row["baseline"]}
        for offset, (name, value) in enumerate(bars.items()):
            axis.bar(index + (offset - 1) * width, value, width, color=f"C{offset}", label=name if index == 0 else None)
        limit = min(0.5 * row["untrained"], 0.6 * row["baseline"])
        axis.hlines(limit, index - 1.6 * width, index + 1.6 * width, colors="black", linestyles="--",
                    label="bar (0.5x untrained, 0.6x constant)" if index == 0 else None)  # fmt: skip
    labels = [
        f"{row['net']} {row['size']} seed {row['seed']}\n{row['steps']} steps, {row['demo_minutes']:.0f} min"
        for row in rows
    ]
    axis.set_xticks(range(len(rows)), labels, fontsize="small")
    axis.set_ylabel("abs_rel, held-out drive")
    axis.legend(fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


if __name__ == "__main__":
    main()
