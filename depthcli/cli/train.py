"""`depthcli train`: self-supervised (monodepth2 / DIFFNet / RA-Depth) or supervised (NYU) training into a run dir.

Thin: the flags are drawn from the recipes' config classes (`depthcli.cli.config_flags`); the command
picks the recipe (--task, or the one --preset belongs to), resolves the config (preset < --config file
< command line) and hands it to `depthcli.engine.runner.run_recipe`. Under `torchrun` only rank 0 prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from depthcli.cli.common import tensorboard_notes
from depthcli.cli.config_flags import Choices, check_flags_apply, resolve_command_config, with_config_flags
from depthcli.errors import DepthcliError
from depthcli.recipe_configs import SELFSUP, SUPERVISED, RecipeSettings

TRAIN_RECIPES = (SELFSUP, SUPERVISED)


@with_config_flags(TRAIN_RECIPES)
def train(
    task: str = Choices("--task", tuple(recipe.name for recipe in TRAIN_RECIPES)).option(
        None,
        "selfsup (KITTI-style video) or supervised (NYU ground truth). (default: the task of --preset, "
        "or of the run being resumed; else selfsup)",
    ),
    out: Path = typer.Option(
        None, "--out", help="Run directory: config.json, last/best.ckpt, metrics.jsonl, loss.png, tensorboard/."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly where OUT/last.ckpt left off."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    *,
    preset: str | None,
    config_file: Path | None,
    print_config: bool,
    flags: dict[str, Any],
) -> None:
    """Train a depth model (self-supervised, or supervised on NYU); prints the run directory at start and end."""
    settings = _train_recipe(task, preset, out if resume else None)
    check_flags_apply(flags, settings, TRAIN_RECIPES)
    recipe, config = resolve_command_config(
        settings.name,
        out,
        preset=preset,
        resume=resume,
        config_file=config_file,
        print_config=print_config,
        flags=flags,
    )
    if not config.data:
        raise DepthcliError("--data is required: a training cache (.h5) or a KITTI / NYU raw root")
    from depthcli.engine.runner import run_recipe
    from depthcli.weights.initialise import describe

    # the weight files a new run starts from are checked (and described) before any data is read
    start_notes = [] if resume else describe(recipe.task_class, config)
    console = Console(soft_wrap=True)

    def announce(run) -> None:
        console.print(f"training {run.preset} ({run.net}) into {out}")
        for line in start_notes + tensorboard_notes(run, out):
            console.print(f"  {line}")

    result = run_recipe(recipe, config, out, resume=resume, progress=progress, on_start=announce)
    if result.is_main:
        run = result.train
        best = f", best {run.best_checkpoint}" if run.best_checkpoint else ""
        console.print(f"wrote {run.last_checkpoint}{best} in {run.run_dir}")
        console.print(final_line(run))


def final_line(run) -> str:
    """`40 steps, last loss 0.1234 (done), best abs_rel 0.0987 at step 30`: the line a run ends with."""
    line = f"{run.steps} steps, last loss {run.last_loss:.4f} ({run.stop_reason})"
    if run.best_metric is not None:
        line += f", best {run.metric_name} {run.best_metric:.4f}" + (
            f" at step {run.best_step}" if run.best_step is not None else ""
        )
    return line


def _train_recipe(task: str | None, preset: str | None, resumed: Path | None) -> RecipeSettings:
    """--task's recipe; else the one --preset belongs to; else the resumed run's; else selfsup."""
    by_name = {recipe.name: recipe for recipe in TRAIN_RECIPES}
    if task is not None:
        return by_name[task]
    if preset is None and resumed is not None:
        preset = _preset_of_run(resumed)
    return next((recipe for recipe in TRAIN_RECIPES if preset in recipe.presets), SELFSUP)


def _preset_of_run(run_dir: Path) -> str | None:
    from depthcli.config import load_config_file
    from depthcli.engine.run_dir import RunDirectory

    config_file = RunDirectory(run_dir).config_file
    return load_config_file(config_file).get("preset") if config_file.is_file() else None


def register(app: typer.Typer) -> None:
    app.command("train")(train)
