"""`depthcli pretrain`: contrastive encoder pretraining (GrMC gradient-field key, or plain MoCo v2 with --key rgb).

Thin: the flags are drawn from `PretrainConfig` (`depthcli.cli.config_flags`); the config is resolved
(preset < --config file < command line) and handed to `depthcli.engine.runner.run_recipe` with the
pretraining recipe. Under `torchrun` only rank 0 prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from depthcli.cli.common import tensorboard_notes
from depthcli.cli.config_flags import resolve_command_config, with_config_flags
from depthcli.recipe_configs import PRETRAIN


@with_config_flags([PRETRAIN])
def pretrain(
    out: Path = typer.Option(None, "--out", help="Run directory: encoder.ckpt, last.ckpt, metrics.jsonl, loss.png."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly where OUT/last.ckpt left off."),
    save_gradient_fields: Path = typer.Option(
        None, "--save-gradient-fields", help="Also write a few images and their gradient fields (PNG) here."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    *,
    preset: str | None,
    config_file: Path | None,
    print_config: bool,
    flags: dict[str, Any],
) -> None:
    """Pretrain an encoder without labels; writes OUT/encoder.ckpt for `depthcli train --encoder-init`."""
    recipe, config = resolve_command_config(
        PRETRAIN.name,
        out,
        preset=preset,
        resume=resume,
        config_file=config_file,
        print_config=print_config,
        flags=flags,
    )
    from depthcli.engine.pretrain import DOWNSTREAM_NETS
    from depthcli.engine.runner import run_recipe

    console = Console()

    def start(run) -> None:
        if save_gradient_fields is not None:
            from depthcli.data import pretrain_views

            source = pretrain_views.open_image_source(run.data, run.dataset)
            written = pretrain_views.save_gradient_fields(source, save_gradient_fields)
            console.print(f"wrote {len(written) // 2} images and their gradient fields into {save_gradient_fields}")
        console.print(f"pretraining {run.encoder} ({run.key} key, {run.preset}) into {out}")
        for line in tensorboard_notes(run, out):
            console.print(f"  {line}")

    result = run_recipe(recipe, config, out, resume=resume, progress=progress, on_start=start)
    if result.is_main:
        run = result.train
        console.print(f"{run.steps} steps, last loss {run.last_loss:.4f} ({run.stop_reason})")
        console.print(f"wrote {result.outputs['encoder']} (for --encoder-init of {DOWNSTREAM_NETS[config.encoder]})")
        console.print(f"resumable state {run.last_checkpoint}, metrics {out / 'metrics.jsonl'}")


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)
