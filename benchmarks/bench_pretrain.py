"""Do encoders pretrained without labels need fewer labels? GrMC vs plain MoCo v2 vs random init (a script).

    python benchmarks/bench_pretrain.py [--frames 48] [--image-size 128x96] [--net monodepth2]
        [--pretrain-steps 50] [--pretrain-size 64x64] [--pretrain-batch 16] [--queue 256]
        [--finetune-steps 20] [--finetune-size 96x64] [--finetune-batch 8]
        [--fractions 0.01,0.1,1.0] [--seed 0] [--out DIR] [--device cpu|cuda]

On a synthetic NYU-like world (`depthcli.synth.synth_nyu`; test split = unseen rooms):
1. pretrain the net's encoder twice on the *train-split images only* (no depth): gradient-field key
   (GrMC) and second-RGB-view key (MoCo v2), same steps, batch, queue, seed;
2. fine-tune each encoder and a randomly initialised one on 1 %, 10 % and 100 % of the labelled
   train images (`labelled_subset`, same seed, same number of steps and batch size for everyone);
3. score every model on the test split with the NYU protocol and print the table.
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


def pretrain(args, key: str, cache: Path, run_dir: Path, encoder: str, device: str) -> tuple[Path, float]:
    """Pretrain `encoder` with `key` ("gradient"/"rgb"); returns (encoder.ckpt, images per second)."""
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
            "seed": args.seed,
        },
    )
    dataset = repeated(build_pretrain_dataset(config), args.pretrain_steps * args.pretrain_batch)
    task = PretrainTask.from_config(config)
    start = time.monotonic()
    train(task, dataset, config, run_dir, progress=args.progress, device=device)
    images_per_s = args.pretrain_steps * args.pretrain_batch / (time.monotonic() - start)
    return save_checkpoint(run_dir / "encoder.ckpt", task.encoder_payload()), images_per_s


def finetune(args, cache: Path, fraction: float, init: Path | None, run_dir: Path, device: str) -> dict[str, float]:
    config = build_config(
        SupervisedConfig,
        {"net": args.net, "preset": "bench"},
        None,
        {
            "data": str(cache),
            "size": args.finetune_size,
            "batch_size": args.finetune_batch,
            "lr": args.finetune_lr,
            "max_steps": args.finetune_steps,
            "save_every": 0,
            "num_workers": args.workers,
            "seed": args.seed,
            "label_fraction": fraction,
            "encoder_init": str(init) if init else None,
        },
    )
    count = len(CachedNyuDataset(cache, split="train"))
    subset = labelled_subset(count, fraction, config.seed)
    labelled = open_split(cache, "train", config, augment=True, indices=subset)
    dataset = repeated(labelled, args.finetune_steps * args.finetune_batch)
    task = SupervisedTask.from_config(config)
    train(task, dataset, config, run_dir, progress=args.progress, device=device)
    return {**evaluate_nyu(task, cache, "test"), "labelled_images": len(subset)}


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
    parser.add_argument("--fractions", default="0.01,0.1,1.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", type=Path, default=None, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--progress", action="store_true", help="show the training progress bars")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = encoder_name_of(build_depth_net(args.net))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        start = time.monotonic()
        synth_nyu(out / "world", frames=args.frames, size=args.image_size, seed=args.seed)
        cache = build_cache("nyu", out / "world", out / "nyu.h5")
        train_count, test_count = (len(CachedNyuDataset(cache, split=s)) for s in ("train", "test"))
        print(
            f"world: {args.frames} synthetic NYU views at {args.image_size[0]}x{args.image_size[1]}, "
            f"{train_count} train / {test_count} test (unseen rooms), seed {args.seed}, device {device}"
        )
        inits: dict[str, Path | None] = {"random": None}
        for method, key in (("gradient", "gradient"), ("moco", "rgb")):
            inits[method], speed = pretrain(args, key, cache, out / f"pretrain_{method}", encoder, device)
            print(
                f"pretrained {encoder} ({method} key): {args.pretrain_steps} steps x {args.pretrain_batch}, "
                f"{speed:.1f} images/s"
            )
        results = []
        for fraction in fractions:
            for method in METHODS:
                run_dir = out / f"finetune_{method}_{fraction}"
                metrics = finetune(args, cache, fraction, inits[method], run_dir, device)
                results.append({"method": method, "fraction": fraction, **metrics})
                print(f"  {method:8s} {fraction:5.0%}: abs_rel {metrics['abs_rel']:.3f}")
        elapsed = time.monotonic() - start
    print_table(results, args, encoder, elapsed)
    if args.json:
        args.json.write_text(json.dumps({"args": _plain(vars(args)), "results": results}, indent=2))


def _plain(values: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def print_table(results: list[dict], args, encoder: str, elapsed: float) -> None:
    print()
    print(
        f"NYU protocol on the synthetic test rooms; {args.net} ({encoder}); pretrain {args.pretrain_steps} steps "
        f"x {args.pretrain_batch} at {args.pretrain_size[0]}x{args.pretrain_size[1]}, queue {args.queue}; "
        f"fine-tune {args.finetune_steps} steps x {args.finetune_batch} at "
        f"{args.finetune_size[0]}x{args.finetune_size[1]}; seed {args.seed}; {elapsed / 60:.1f} min"
    )
    print(f"{'labels':>8} {'images':>6} | " + " | ".join(f"{m:^23}" for m in METHODS))
    print(f"{'':>8} {'':>6} | " + " | ".join(f"{'abs_rel  rmse     a1':^23}" for _ in METHODS))
    for fraction in dict.fromkeys(r["fraction"] for r in results):
        rows = {r["method"]: r for r in results if r["fraction"] == fraction}
        cells = [f"{rows[m]['abs_rel']:.3f}  {rows[m]['rmse']:.3f}  {rows[m]['a1']:.3f}" for m in METHODS]
        images = rows[METHODS[0]]["labelled_images"]
        print(f"{fraction:>8.0%} {images:>6} | " + " | ".join(f"{c:^23}" for c in cells))


if __name__ == "__main__":
    main()
