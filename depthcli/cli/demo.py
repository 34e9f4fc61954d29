"""`depthcli demo`: synthetic world -> cache -> train -> eval -> sweep -> predict, with no arguments."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def demo(
    out: Path = typer.Option(
        Path("demo_out"), "--out", help="Folder for the world, caches, run, sweep and predictions."
    ),
    budget_minutes: float = typer.Option(10.0, "--budget-minutes", help="Wall-clock minutes for training."),
    seed: int = typer.Option(0, "--seed", help="Seed of the world and of training."),
) -> None:
    """Run the whole pipeline on a synthetic KITTI-like world and show that training learns."""
    from depthcli.cli.common import metrics_table
    from depthcli.demo import DemoSettings, run_demo

    console.print(f"demo output: [bold]{out.resolve()}[/]")
    settings = DemoSettings(budget_minutes=budget_minutes, seed=seed)
    result = run_demo(out, settings, log=lambda message: console.print(f"[cyan]>[/] {message}"))
    names = ("trained", "untrained", "baseline")
    rows = [result.summary[name] for name in names]
    console.print(metrics_table(rows, "held-out drive, KITTI Eigen protocol, median-scaled", labels=names))
    trained, untrained = result.summary["trained"]["abs_rel"], result.summary["untrained"]["abs_rel"]
    training, baseline = result.summary["training"], result.summary["baseline"]["abs_rel"]
    console.print(
        f"trained {training['net']} ({training['recipe']} recipe) at {training['size']}, source frames "
        f"{', '.join(f'{f:+d}' for f in training['frame_ids'] if f)}, for {training['steps']} steps "
        f"in {training['minutes']:.1f} min"
    )
    console.print(f"abs_rel trained / untrained = {trained / untrained:.2f}, / baseline = {trained / baseline:.2f}")
    console.print(f"summary:     {result.summary_path}")
    console.print(f"checkpoint:  {result.checkpoint}")
    console.print(f"sweep plot:  {result.sweep_files['png']}")
    console.print(f"predictions: {result.prediction_dir}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
