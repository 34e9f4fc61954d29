"""`depthcli train`: self-supervised training (monodepth2 / DIFFNet / RA-Depth recipes) into a run dir.

Thin: flags -> config overrides (only the flags given, so preset < --config file < flags holds),
then `depthcli.engine.selfsup.run_selfsup`. Under `torchrun` only rank 0 prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from depthcli.errors import DepthcliError
from depthcli.sizes import parse_size


def train(
    task: str = typer.Option("selfsup", "--task", help="selfsup (KITTI-style) or supervised (NYU ground truth)."),
    preset: str = typer.Option(None, "--preset", help="Recipe: monodepth2, diffnet, radepth; nyu-resnet50."),
    config_file: Path = typer.Option(None, "--config", help="TOML/JSON(/YAML) file of config keys (flat table)."),
    data: str = typer.Option(None, "--data", help="Training cache (.h5) or KITTI/NYU raw root (cached into --out)."),
    dataset: str = typer.Option(None, "--dataset", help="Supervised task: the dataset (nyu)."),
    label_fraction: float = typer.Option(None, "--label-fraction", help="Supervised: labelled share, 0.01..1.0."),
    split: str = typer.Option(None, "--split", help="KITTI split file, when --data is a raw root."),
    out: Path = typer.Option(..., "--out", help="Run directory: config, last/best.ckpt, metrics.jsonl, loss.png."),
    size: str = typer.Option(None, "--size", help="Training size WxH (multiples of 32); default: the cache's."),
    epochs: int = typer.Option(None, "--epochs", help="Number of epochs (preset: 20)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after N optimizer steps instead of --epochs."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Stop (and save) after this many minutes."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step and process (preset: 12)."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate (preset: 1e-4)."),
    num_workers: int = typer.Option(None, "--num-workers", help="DataLoader workers (default: 0 on CPU, 4 on CUDA)."),
    init: str = typer.Option(
        None, "--init", help="Depth checkpoint (a run's or `weights import`'s): every net it holds starts from it."
    ),
    encoder_init: str = typer.Option(
        None, "--encoder-init", help="Encoder checkpoint (e.g. pretrain's) or ImageNet file (torchvision, HRNet-W18-C)."
    ),
    pose_encoder_init: str = typer.Option(
        None, "--pose-encoder-init", help="ImageNet ResNet-18 file for the pose encoder (selfsup)."
    ),
    boundary_loss: bool = typer.Option(None, "--boundary-loss/--no-boundary-loss", help="InverseForm boundary loss."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly where OUT/last.ckpt left off."),
    seed: int = typer.Option(None, "--seed", help="Random seed (default 0)."),
    amp: str = typer.Option(None, "--amp", help="Mixed precision: bf16, fp16 or off."),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last", help="NHWC memory format."),
    compile_nets: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile the nets (CUDA only)."),
    val_data: str = typer.Option(None, "--val-data", help="Eval cache with GT: validation abs_rel picks best.ckpt."),
    save_every: int = typer.Option(None, "--save-every", help="Steps between checkpoints (default 200)."),
    log_every: int = typer.Option(None, "--log-every", help="Steps between metrics.jsonl records (default 10)."),
    augment: bool = typer.Option(
        None, "--augment/--no-augment", help="Flip + colour jitter (preset: on; off for official-parity checks)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Train a depth model (self-supervised, or supervised on NYU); prints the run directory at start and end."""
    from depthcli.engine.trainer import resolve_run_config

    if task == "supervised":
        from depthcli.engine.supervised import SupervisedConfig as TaskConfig
        from depthcli.engine.supervised import SupervisedTask as task_class
        from depthcli.engine.supervised import preset_values
        from depthcli.engine.supervised import run_supervised as run_task
    elif task == "selfsup":
        from depthcli.engine.selfsup import SelfSupConfig as TaskConfig
        from depthcli.engine.selfsup import SelfSupTask as task_class
        from depthcli.engine.selfsup import preset_values
        from depthcli.engine.selfsup import run_selfsup as run_task
    else:
        raise DepthcliError(f"--task {task!r} is not one of selfsup, supervised")

    if amp is not None and amp not in ("bf16", "fp16", "off"):
        raise DepthcliError(f"--amp {amp!r} is not one of bf16, fp16, off")
    flags: dict[str, Any] = {
        "data": data,
        "dataset": dataset,
        "label_fraction": label_fraction,
        "split": split,
        "size": parse_size(size) if size is not None else None,
        "epochs": epochs,
        "max_steps": max_steps,
        "max_minutes": max_minutes,
        "batch_size": batch_size,
        "lr": lr,
        "num_workers": num_workers,
        "init": init,
        "encoder_init": encoder_init,
        "pose_encoder_init": pose_encoder_init,
        "boundary_loss": boundary_loss,
        "seed": seed,
        "amp": amp,
        "channels_last": channels_last,
        "compile": compile_nets,
        "val_data": val_data,
        "save_every": save_every,
        "log_every": log_every,
        "augment": augment,
    }
    if not resume and preset is None:
        raise DepthcliError("--preset is required (monodepth2, diffnet, radepth; nyu-resnet50) unless --resume")
    config = resolve_run_config(
        TaskConfig,
        out,
        resume=resume,
        checkpoint_kind="depth",
        preset=None if resume else preset_values(preset),
        config_file=config_file,
        flags=flags,
    )
    if not config.data:
        raise DepthcliError("--data is required: a training cache (.h5) or a KITTI / NYU raw root")
    is_main = int(os.environ.get("RANK", "0")) == 0
    console = Console(soft_wrap=True)
    if is_main:
        console.print(f"training {config.preset} ({config.net}) into {out}")
        if not resume:
            from depthcli.weights_init import describe

            for line in describe(task_class, config):
                console.print(f"  {line}")
    result = run_task(config, out, resume=resume, progress=progress)
    if is_main:
        best = f", best {result.best_checkpoint}" if result.best_checkpoint else ""
        console.print(f"{result.steps} steps, last loss {result.last_loss:.4f} ({result.stop_reason})")
        console.print(f"wrote {result.last_checkpoint}{best} in {result.run_dir}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
