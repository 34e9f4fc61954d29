"""InverseForm's claim: a boundary loss puts depth edges where they belong.

    python benchmarks/bench_boundary.py [--preset diffnet] [--net diffnet-small] [--seeds 0,1]
        [--steps 1200] [--batch-size 4] [--size 320x96] [--fast] [--init CKPT] [--boundary-weight 0.1]
        [--out DIR] [--results benchmarks/results]

The same recipe trains twice per seed on the synthetic KITTI-like drive of bench_resolution.py (seed 0,
120 frames at 416x128; batch 4, lr 5e-4, `depthcli demo`'s schedule: warmup, LR drop and, from scratch,
the boundary weight ramped in over the middle third): once plain, once with `--boundary-loss` (the
inverse-transform net is trained into the run folder first, then frozen; disparity edges are compared
with image edges, weight 0.1, or `--boundary-weight`, which then names its runs
`..._w{weight}`). InverseForm's loss is meant to refine a net that already predicts structure: `--init
CKPT` (a trained depth checkpoint of the same net, e.g. a plain run's last.ckpt) fine-tunes both arms
from it (`depthcli train --init`) instead of starting from random weights, with the boundary loss at full
weight from the first step. Both arms are scored by `depthcli eval --gt dense` on the held-out drive
(seed 1) at the training size: abs_rel (median-scaled, Eigen crop) and the iBims-1 depth-boundary errors
of depthcli.evaluation (Canny edges of the true and of the predicted depth; `dbe_acc`: mean distance in
pixels from predicted edges to the true edges within 10 px, `dbe_comp`: the iBims-1 truncated chamfer
distance between the two edge sets, each distance capped at 10 px; lower is better for all three). Use
the same `--out` as bench_resolution.py and the plain runs from scratch are the ones it trained already;
fine-tuned runs are named after their checkpoint, so runs from different checkpoints do not reuse each
other. InverseForm's direction: lower dbe_acc and dbe_comp with the boundary loss, abs_rel no worse.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from selfsup_runs import (
    add_training_arguments,
    claim_worlds,
    constant_baseline,
    eval_rows,
    load_conditions,
    mean_and_spread,
    run_summary,
    train_run,
    write_json,
)

METRICS = ("abs_rel", "dbe_acc", "dbe_comp", "a1")


def run(args) -> dict:
    out = args.out
    worlds = claim_worlds(out, args.size)
    test_root, test_split = worlds.test_root, worlds.test_split
    # the training config's boundary_weight unless --boundary-weight names another (and the runs with it)
    weight = {} if args.boundary_weight is None else {"boundary_weight": args.boundary_weight}
    weight_tag = "" if args.boundary_weight is None else f"_w{args.boundary_weight:g}"
    arms = {"plain": {}, "boundary loss": {"boundary_loss": True, **weight}}
    # a trained net has structure already: the boundary loss at full weight from the first step, as InverseForm
    start, prefix = {}, args.net
    if args.init:
        start, prefix = {"init": str(args.init), "boundary_ramp": None}, f"{args.net}_from_{init_tag(args.init)}"
    records: dict[str, list[dict]] = {arm: [] for arm in arms}
    for seed in args.seeds:
        for arm, extra in arms.items():
            name = f"{prefix}_s{seed}" if arm == "plain" else f"{prefix}_boundary{weight_tag}_s{seed}"
            record = train_run(
                out / "runs" / name, args.preset, worlds.train_cache, size=args.size, steps=args.steps, seed=seed,
                fast=args.fast, batch_size=args.batch_size, config={"net": args.net, **start, **extra},
            )  # fmt: skip
            print(f"trained {name}: {record['wall_minutes']:.1f} min, cpu share {record['cpu_share']}")
            records[arm].append(record)
    checkpoints = [record["checkpoint"] for arm in arms for record in records[arm]]
    rows = eval_rows(checkpoints, test_root, test_split, "--gt", "dense")
    by_checkpoint = {row["provenance"]["checkpoint"]: row for row in rows}
    table = {"preset": args.preset, "net": args.net, "size": f"{args.size[0]}x{args.size[1]}", "steps": args.steps,
             "seeds": args.seeds, "fast_setting": args.fast, "init": str(args.init) if args.init else None,
             "boundary_weight": args.boundary_weight,
             "arms": {}, "load": load_conditions()}  # fmt: skip
    for arm in arms:
        per_seed = [by_checkpoint[str(Path(record["checkpoint"]).resolve())] for record in records[arm]]
        table["arms"][arm] = {
            **{metric: mean_and_spread([row[metric] for row in per_seed]) for metric in METRICS},
            "per_seed": [{metric: row[metric] for metric in METRICS} for row in per_seed],
            **run_summary(records[arm]),
        }
    constant = constant_baseline(test_root, test_split, gt="dense")
    table["constant"] = {metric: constant[metric] for metric in ("abs_rel", "a1")}
    table["eval_command"] = f"depthcli eval --data {test_root} --split {test_split} --gt dense --checkpoint ..."
    return table


def init_tag(checkpoint: Path) -> str:
    """A run-name part for a starting checkpoint: its folder and file stem (runs/diffnet-small_s0/last.ckpt ->
    diffnet-small_s0-last)."""
    return f"{checkpoint.parent.name}-{checkpoint.stem}"


def start_text(table: dict) -> str:
    """How the table's runs started, for its title: "from scratch" or "fine-tuned from RUN/last.ckpt"."""
    if not table.get("init"):
        return "from scratch"
    checkpoint = Path(table["init"])
    return f"fine-tuned from {checkpoint.parent.name}/{checkpoint.name}"


def print_table(table: dict) -> None:
    print(
        f"\n{table['net']} ({table['preset']} recipe) at {table['size']}, {table['steps']} steps {start_text(table)}, "
        f"seeds {table['seeds']}: held-out drive, dense GT; mean ± std over seeds (per seed in brackets)"
    )
    print(f"{'':14s} | " + " | ".join(f"{metric:^30s}" for metric in METRICS))
    for arm, values in table["arms"].items():
        cells = []
        for metric in METRICS:
            seeds = ", ".join(f"{row[metric]:.3f}" for row in values["per_seed"])
            cells.append(f"{values[metric]['mean']:.3f} ± {values[metric]['std']:.3f} [{seeds}]")
        print(f"{arm:14s} | " + " | ".join(f"{cell:^30s}" for cell in cells))
    constant = table["constant"]
    print(
        f"a constant depth map scores abs_rel {constant['abs_rel']:.3f}, a1 {constant['a1']:.3f} (no edges: dbe 10 px)"
    )


def plot(table: dict, path: Path) -> Path:
    """One panel per metric: each seed's value as a dot, the mean as a bar, plain vs boundary loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(table["arms"])
    figure, axes = plt.subplots(1, len(METRICS), figsize=(11, 3.2))
    for axis, metric in zip(axes, METRICS, strict=True):
        for position, arm in enumerate(arms):
            values = [row[metric] for row in table["arms"][arm]["per_seed"]]
            axis.bar(position, table["arms"][arm][metric]["mean"], color=f"C{position}", alpha=0.5)
            axis.plot([position] * len(values), values, "o", color=f"C{position}")
        if metric in table["constant"]:
            axis.axhline(table["constant"][metric], color="grey", linestyle="--", label="constant depth")
            axis.legend(fontsize="x-small")
        axis.set_xticks(range(len(arms)), arms)
        better = "higher" if metric == "a1" else "lower"
        axis.set_title(f"{metric} ({better} is better)" + (" [px]" if metric.startswith("dbe") else ""))
        axis.grid(alpha=0.3, axis="y")
    title = f"{table['net']} at {table['size']}, {table['steps']} steps {start_text(table)}: plain vs boundary loss"
    figure.suptitle(title, y=1.0)
    figure.tight_layout()
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="diffnet")
    parser.add_argument("--net", default="diffnet-small")
    add_training_arguments(parser, size_help="training (and evaluation) size")
    parser.add_argument(
        "--init", type=Path, default=None, help="trained depth checkpoint both arms fine-tune from (default: scratch)"
    )
    parser.add_argument(
        "--boundary-weight", type=float, default=None, help="weight of the boundary loss (default: the config's, 0.1)"
    )
    args = parser.parse_args()
    if args.init:
        if not args.init.is_file():
            parser.error(f"--init {args.init}: no such checkpoint; give a trained run's last.ckpt or best.ckpt")
        args.init = args.init.resolve()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="bench_boundary_"))
    print(f"writing into {args.out}")
    table = run(args)
    print_table(table)
    write_json(args.out / "boundary.json", table)
    plot(table, args.out / "boundary.png")
    if args.results:
        write_json(args.results / "boundary.json", table)
        shutil.copyfile(args.out / "boundary.png", args.results / "boundary.png")


if __name__ == "__main__":
    main()
