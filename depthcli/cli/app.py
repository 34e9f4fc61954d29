"""The `depthcli` Typer application: registers every subcommand and turns DepthcliError into one line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from depthcli import __version__
from depthcli.errors import DepthcliError
from depthcli.threads import prefer_passive_omp_wait

app = typer.Typer(
    name="depthcli",
    help="Monocular depth estimation research suite: synth, data, cache, pretrain, train, eval, sweep, predict.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"depthcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Monocular depth estimation research suite."""
    # before any command imports torch: OpenMP workers sleep instead of spinning while they wait
    # (on a shared machine spinning threads made training steps 10-100x slower; depthcli.threads)
    prefer_passive_omp_wait()


def _register_commands() -> None:
    """Each CLI module exposes `register(app)`; the order here is the order in `--help`."""
    from depthcli.cli import cache as cache_cmd
    from depthcli.cli import data as data_cmd
    from depthcli.cli import demo as demo_cmd
    from depthcli.cli import eval as eval_cmd
    from depthcli.cli import export as export_cmd
    from depthcli.cli import models as models_cmd
    from depthcli.cli import predict as predict_cmd
    from depthcli.cli import pretrain as pretrain_cmd
    from depthcli.cli import sweep as sweep_cmd
    from depthcli.cli import synth as synth_cmd
    from depthcli.cli import train as train_cmd
    from depthcli.cli import weights as weights_cmd

    command_modules: tuple = (
        demo_cmd,
        synth_cmd,
        data_cmd,
        cache_cmd,
        pretrain_cmd,
        train_cmd,
        eval_cmd,
        sweep_cmd,
        models_cmd,
        predict_cmd,
        weights_cmd,
        export_cmd,
    )
    for module in command_modules:
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point: run the app; a DepthcliError becomes one red line and exit status 2."""
    try:
        app()
    except DepthcliError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
