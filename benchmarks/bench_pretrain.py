"""Do encoders pretrained without labels need fewer labels? GrMC vs plain MoCo v2 vs random init (a script).

    python benchmarks/bench_pretrain.py [--frames 48] [--image-size 128x96] [--net monodepth2]
        [--pretrain-steps 50] [--pretrain-size 64x64] [--pretrain-batch 16] [--queue 256]
        [--finetune-steps 20] [--finetune-size 96x64] [--finetune-batch 8] [--finetune-warmup 0]
        [--fractions 0.01,0.1,1.0] [--methods gradient,moco,random] [--seeds 0] [--world-seed 0]
        [--out DIR] [--json FILE] [--plot FILE] [--device cpu|cuda]

On a synthetic NYU-like world (`depthcli.synth.synth_nyu`, seed `--world-seed`; test split = unseen rooms):
1. pretrain the net's encoder twice on the *train-split images only* (no depth): gradient-field key
   (GrMC) and second-RGB-view key (MoCo v2), same steps, batch, queue, seed;
2. fine-tune each encoder and a randomly initialised one on 1 %, 10 % and 100 % of the labelled
   train images (`labelled_subset`, same seed, same number of steps and batch size for everyone);
3. score every model on the test split with the NYU protocol, next to a constant prediction (the mean
   training depth: what a net that learned nothing but the depth range scores), and print the table.
Each training seed repeats 1-3 (pretraining, label subset, fine-tuning); with several seeds the table
gives mean ± std and the plot abs_rel against the label fraction with the seeds' spread. With `--out`,
finished pretraining and fine-tuning runs are reused when the script runs again.
The defaults are sized for a 2-core CPU (about 10-15 minutes); use `--net nyu-resnet50` and larger
`--frames`/steps/sizes on a GPU. Every run is one epoch over a repeated dataset, so checkpoints are
written once per run, not at tiny-epoch boundaries.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset

from depthcli.checkpoints import save_checkpoint
from depthcli.config import build_config
from depthcli.data.cache import build_cache
from depthcli.data.datasets import CachedNyuDataset
from depthcli.engine.pretrain import PretrainTask, build_pretrain_dataset
from depthcli.engine.supervised import (
    SupervisedTask,
    evaluate_nyu,
    labelled_subset,
    open_split,
)
from depthcli.engine.trainer import train
from depthcli.nets import build_depth_net
from depthcli.nets.loading import encoder_name_of
from depthcli.recipe_configs import PRETRAIN, SupervisedConfig
from depthcli.sizes import parse_image_size, parse_size
from depthcli.synth import synth_nyu

METHODS = ("gradient", "moco", "random")


def repeated(dataset: Dataset, length: int) -> Dataset:
    """`dataset` concatenated with itself until it holds at least `length` samples (one long epoch)."""
    copies = max(1, -(-length // len(dataset)))
    return ConcatDataset([dataset] * copies)


def pretrain(args, key: str, cache: Path, run_dir: Path, encoder: str, device: str, seed: int) -> tuple[Path, float]:
    """Pretrain `encoder` with `key` ("gradient"/"rgb"); returns (encoder.ckpt, images per second)."""
    if (run_dir / "encoder.ckpt").is_file():
        return run_dir / "encoder.ckpt", float("nan")
    config = PRETRAIN.build_config(
        "grmc" if key == "gradient" else "moco",
        overrides={
            "encoder": encoder,
            "data": str(cache),
            "dataset": "nyu",
            "size": args.pretrain_size,
            "batch_size": args.pretrain_batch,
            "queue": args.queue,
            "lr": args.pretrain_lr,
            "max_steps": args.pretrain_steps,
            "save_every": 0,
            "num_workers": args.workers,
            "seed": seed,
        },
    )
    dataset = repeated(build_pretrain_dataset(config), args.pretrain_steps * args.pretrain_batch)
    task = PretrainTask.from_config(config)
    start = time.monotonic()
    train(task, dataset, config, run_dir, progress=args.progress, device=device)
    images_per_s = args.pretrain_steps * args.pretrain_batch / (time.monotonic() - start)
    return save_checkpoint(run_dir / "encoder.ckpt", task.encoder_payload()), images_per_s


def finetune(args, cache: Path, fraction: float, init: Path | None, run_dir: Path, device: str, seed: int) -> dict:
    """Fine-tune on `fraction` of the labels and score the test split (reused from RUN_DIR/result.json)."""
    if (run_dir / "result.json").is_file():
        return json.loads((run_dir / "result.json").read_text())
    config = build_config(
        SupervisedConfig,
        {"net": args.net, "preset": "bench"},
        None,
        {
            "data": str(cache),
            "size": args.finetune_size,
            "batch_size": args.finetune_batch,
            "lr": args.finetune_lr,
            "warmup_steps": args.finetune_warmup,
            "max_steps": args.finetune_steps,
            "save_every": 0,
            "num_workers": args.workers,
            "seed": seed,
            "label_fraction": fraction,
            "encoder_init": str(init) if init else None,
        },
    )
    count = len(CachedNyuDataset(cache, split="train"))
    subset = labelled_subset(count, fraction, config.seed)
    labelled = open_split(cache, "train", config, augment=True, indices=subset)
    dataset = repeated(labelled, args.finetune_steps * args.finetune_batch)
    task = SupervisedTask.from_config(config)
    start = time.monotonic()
    train(task, dataset, config, run_dir, progress=args.progress, device=device)
    result = {**evaluate_nyu(task, cache, "test"), "labelled_images": len(subset)}
    result["minutes"] = (time.monotonic() - start) / 60
    (run_dir / "result.json").write_text(json.dumps(result) + "\n")
    return result


def constant_baseline(cache: Path) -> dict[str, float]:
    """NYU-protocol metrics of predicting the mean training depth everywhere on the test split."""
    import numpy as np

    from depthcli.evaluation.eval_sets import open_eval_set
    from depthcli.evaluation.evaluate import EvalOptions, evaluate_predictions

    train_set = CachedNyuDataset(cache, split="train")
    depths = [train_set[i]["depth_gt"].numpy() for i in range(len(train_set))]
    mean_depth = float(np.mean(np.concatenate([d[d > 0] for d in depths])))
    eval_set = open_eval_set(cache, None, "nyu")
    constant = [np.full(eval_set.load_gt(i).shape, mean_depth, np.float32) for i in range(len(eval_set))]
    summary = evaluate_predictions(constant, eval_set, EvalOptions(protocol="nyu", pred_type="depth")).summary()
    return {"abs_rel": summary["abs_rel"], "rmse": summary["rmse"], "a1": summary["a1"], "depth_m": mean_depth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--image-size", type=parse_image_size, default=(128, 96))
    parser.add_argument("--net", default="monodepth2", help="depth net fine-tuned (its encoder is pretrained)")
    parser.add_argument("--pretrain-steps", type=int, default=50)
    parser.add_argument("--pretrain-size", type=parse_size, default=(64, 64))
    parser.add_argument("--pretrain-batch", type=int, default=16)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--queue", type=int, default=256)
    parser.add_argument("--finetune-steps", type=int, default=20)
    parser.add_argument("--finetune-size", type=parse_size, default=(96, 64))
    parser.add_argument("--finetune-batch", type=int, default=8)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument(
        "--finetune-warmup", type=int, default=0, help="LR warmup steps of fine-tuning (names its runs _wuN)"
    )
    parser.add_argument("--fractions", default="0.01,0.1,1.0")
    parser.add_argument("--methods", default=",".join(METHODS), help="any of gradient, moco, random")
    parser.add_argument("--seeds", default="0", help="training seeds (pretraining, label subset, fine-tuning)")
    parser.add_argument("--world-seed", type=int, default=0, help="seed of the synthetic rooms")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--out", type=Path, default=None, help="keep (and reuse) runs here (default: a temporary folder)"
    )
    parser.add_argument("--progress", action="store_true", help="show the training progress bars")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--plot", type=Path, default=None, help="abs_rel vs label fraction (PNG)")
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    methods = [m for m in METHODS if m in args.methods.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = encoder_name_of(build_depth_net(args.net))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        start = time.monotonic()
        if not (out / "nyu.h5").is_file():
            synth_nyu(out / "world", frames=args.frames, size=args.image_size, seed=args.world_seed)
            build_cache("nyu", out / "world", out / "nyu.h5")
        cache = out / "nyu.h5"
        train_count, test_count = (len(CachedNyuDataset(cache, split=s)) for s in ("train", "test"))
        print(
            f"world: {args.frames} synthetic NYU views at {args.image_size[0]}x{args.image_size[1]}, "
            f"{train_count} train / {test_count} test (unseen rooms), seed {args.world_seed}, device {device}"
        )
        baseline = constant_baseline(cache)
        print(f"constant prediction ({baseline['depth_m']:.2f} m): abs_rel {baseline['abs_rel']:.3f}")
        results = []
        warmup_tag = f"_wu{args.finetune_warmup}" if args.finetune_warmup else ""  # runs of another recipe
        for seed in seeds:
            inits: dict[str, Path | None] = {"random": None}
            for method, key in (("gradient", "gradient"), ("moco", "rgb")):
                if method in methods:
                    run_dir = out / f"pretrain_{method}_s{seed}"
                    inits[method], speed = pretrain(args, key, cache, run_dir, encoder, device, seed)
                    print(f"pretrained {encoder} ({method} key, seed {seed}): {args.pretrain_steps} steps x "
                          f"{args.pretrain_batch}, {speed:.1f} images/s")  # fmt: skip
            for fraction in fractions:
                for method in methods:
                    run_dir = out / f"finetune_{method}_{fraction}{warmup_tag}_s{seed}"
                    metrics = finetune(args, cache, fraction, inits[method], run_dir, device, seed)
                    results.append({"method": method, "fraction": fraction, "seed": seed, **metrics})
                    print(f"  seed {seed} {method:8s} {fraction:5.0%}: abs_rel {metrics['abs_rel']:.3f}")
        elapsed = time.monotonic() - start
    summary = summarise(results, methods, fractions)
    print_table(summary, methods, baseline, args, encoder, elapsed, seeds)
    if args.json:
        record = {"args": _plain(vars(args)), "constant": baseline, "summary": summary, "results": results}
        args.json.write_text(json.dumps(record, indent=2))
    if args.plot:
        plot(summary, methods, fractions, baseline, args.plot, f"{args.net} ({encoder}), {len(seeds)} seeds")


def summarise(results: list[dict], methods: list[str], fractions: list[float]) -> list[dict]:
    """Per (fraction, method): mean, std (over seeds), median, min, max and the seeds' values of abs_rel, rmse, a1."""
    import numpy as np

    rows = []
    for fraction in fractions:
        for method in methods:
            runs = [r for r in results if r["method"] == method and r["fraction"] == fraction]
            row = {"method": method, "fraction": fraction, "labelled_images": runs[0]["labelled_images"]}
            for metric in ("abs_rel", "rmse", "a1"):
                values = np.array([r[metric] for r in runs])
                row[metric] = float(values.mean())
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                row[f"{metric}_range"] = [float(values.min()), float(values.max())]
                row[f"{metric}_median"] = float(np.median(values))
                row[f"{metric}_seeds"] = values.tolist()
            rows.append(row)
    return rows


def _plain(values: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def print_table(summary: list[dict], methods, baseline: dict, args, encoder: str, elapsed: float, seeds) -> None:
    print()
    print(
        f"NYU protocol on the synthetic test rooms; {args.net} ({encoder}); pretrain {args.pretrain_steps} steps "
        f"x {args.pretrain_batch} at {args.pretrain_size[0]}x{args.pretrain_size[1]}, queue {args.queue}; "
        f"fine-tune {args.finetune_steps} steps x {args.finetune_batch} at "
        f"{args.finetune_size[0]}x{args.finetune_size[1]}; seeds {seeds} (abs_rel: mean ± std, median); "
        f"{elapsed / 60:.1f} min; "
        f"constant prediction abs_rel {baseline['abs_rel']:.3f}"
    )
    print(f"{'labels':>8} {'images':>6} | " + " | ".join(f"{m:^36}" for m in methods))
    print(f"{'':>8} {'':>6} | " + " | ".join(f"{'abs_rel                 rmse    a1':^36}" for _ in methods))
    for fraction in dict.fromkeys(r["fraction"] for r in summary):
        rows = {r["method"]: r for r in summary if r["fraction"] == fraction}
        cells = [f"{rows[m]['abs_rel']:.3f} ± {rows[m]['abs_rel_std']:.3f} ({rows[m]['abs_rel_median']:.3f})  "
                 f"{rows[m]['rmse']:.3f}  {rows[m]['a1']:.3f}" for m in methods]  # fmt: skip
        images = rows[methods[0]]["labelled_images"]
        print(f"{fraction:>8.0%} {images:>6} | " + " | ".join(f"{c:^36}" for c in cells))


def plot(summary: list[dict], methods, fractions, baseline: dict, path: Path, title: str) -> None:
    """abs_rel against the label fraction: each seed a dot, the seeds' median a line (robust to a run that
    diverged), log scale; one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for index, method in enumerate(methods):
        rows = [next(r for r in summary if r["method"] == method and r["fraction"] == f) for f in fractions]
        shift = 1.0 + 0.06 * (index - 1)  # methods side by side at each fraction
        xs = [100 * f * shift for f in fractions]
        axis.plot(xs, [r["abs_rel_median"] for r in rows], marker="o", color=f"C{index}", label=f"{method} (median)")
        for x, row in zip(xs, rows, strict=True):
            axis.plot([x] * len(row["abs_rel_seeds"]), row["abs_rel_seeds"], ".", color=f"C{index}", alpha=0.5)
    axis.axhline(baseline["abs_rel"], color="grey", linestyle="--", label="constant prediction")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("labelled training images (%)")
    axis.set_ylabel("abs_rel (NYU protocol, lower is better)")
    axis.set_title(f"GrMC vs MoCo v2 vs random init: {title}", fontsize="medium")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    main()
