"""`depthcli pretrain`: contrastive encoder pretraining (GrMC gradient-field key, or plain MoCo v2 with --key rgb).

Thin: flags -> config overrides (only the flags given, so preset < --config file < flags holds), then
`depthcli.engine.pretrain.run_pretrain`. Under `torchrun` only rank 0 prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from depthcli.errors import DepthcliError
from depthcli.sizes import parse_size


def pretrain(
    data: str = typer.Option(None, "--data", help="NYU/KITTI cache (.h5) or root, or a folder of images."),
    dataset: str = typer.Option(None, "--dataset", help="nyu, kitti or folder (default nyu)."),
    encoder: str = typer.Option(None, "--encoder", help="resnet50 (NYU head), resnet18 (monodepth2), hrnet18, hrnet9."),
    out: Path = typer.Option(..., "--out", help="Run directory: encoder.ckpt, last.ckpt, metrics.jsonl, loss.png."),
    preset: str = typer.Option(None, "--preset", help="grmc (default) or moco."),
    config_file: Path = typer.Option(None, "--config", help="TOML/JSON(/YAML) file of config keys (flat table)."),
    key: str = typer.Option(None, "--key", help="Key view: gradient (GrMC) or rgb (plain MoCo v2)."),
    epochs: int = typer.Option(None, "--epochs", help="Number of epochs (preset: 200)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after N optimizer steps instead of --epochs."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Stop (and save) after this many minutes."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step and process (preset: 32)."),
    queue: int = typer.Option(None, "--queue", help="Negatives in the queue; a multiple of the batch size."),
    temperature: float = typer.Option(None, "--temperature", help="InfoNCE temperature (default 0.2)."),
    momentum: float = typer.Option(None, "--momentum", help="Key encoder momentum (default 0.999)."),
    dim: int = typer.Option(None, "--dim", help="Embedding size of the MLP head (default 128)."),
    size: str = typer.Option(None, "--size", help="Crop size WxH, multiples of 32 (default 224x224)."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate (preset: 3e-4)."),
    num_workers: int = typer.Option(None, "--num-workers", help="DataLoader worker processes (default 2)."),
    seed: int = typer.Option(None, "--seed", help="Random seed (default 0)."),
    amp: str = typer.Option(None, "--amp", help="Mixed precision: bf16, fp16 or off."),
    save_every: int = typer.Option(None, "--save-every", help="Steps between checkpoints (default 200)."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly where OUT/last.ckpt left off."),
    save_gradient_fields: Path = typer.Option(
        None, "--save-gradient-fields", help="Also write a few images and their gradient fields (PNG) here."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Pretrain an encoder without labels; writes OUT/encoder.ckpt for `depthcli train --encoder-init`."""
    from depthcli.engine.pretrain import DOWNSTREAM_NETS
    from depthcli.engine.recipes import get_recipe
    from depthcli.engine.runner import resolve_run_config, run_recipe

    recipe = get_recipe("pretrain")
    if amp is not None and amp not in ("bf16", "fp16", "off"):
        raise DepthcliError(f"--amp {amp!r} is not one of bf16, fp16, off")
    flags: dict[str, Any] = {
        "data": data,
        "dataset": dataset,
        "encoder": encoder,
        "key": key,
        "epochs": epochs,
        "max_steps": max_steps,
        "max_minutes": max_minutes,
        "batch_size": batch_size,
        "queue": queue,
        "temperature": temperature,
        "momentum": momentum,
        "dim": dim,
        "size": parse_size(size) if size is not None else None,
        "lr": lr,
        "num_workers": num_workers,
        "seed": seed,
        "amp": amp,
        "save_every": save_every,
    }
    config = resolve_run_config(recipe, out, preset=preset, resume=resume, config_file=config_file, flags=flags)
    console = Console()

    def start(run) -> None:
        if save_gradient_fields is not None:
            from depthcli.data import pretrain_views

            source = pretrain_views.open_image_source(run.data, run.dataset)
            written = pretrain_views.save_gradient_fields(source, save_gradient_fields)
            console.print(f"wrote {len(written) // 2} images and their gradient fields into {save_gradient_fields}")
        console.print(f"pretraining {run.encoder} ({run.key} key, {run.preset}) into {out}")

    result = run_recipe(recipe, config, out, resume=resume, progress=progress, on_start=start)
    if result.is_main:
        run = result.train
        console.print(f"{run.steps} steps, last loss {run.last_loss:.4f} ({run.stop_reason})")
        console.print(f"wrote {result.outputs['encoder']} (for --encoder-init of {DOWNSTREAM_NETS[config.encoder]})")
        console.print(f"resumable state {run.last_checkpoint}, metrics {out / 'metrics.jsonl'}")


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)
