"""`depthcli weights import|info|slim`: bring reference releases in, show what a checkpoint holds, slim it.

torch and the importers are imported inside the commands, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

weights_app = typer.Typer(help="Import reference checkpoints and inspect depthcli checkpoints.", no_args_is_help=True)

_HEADER_KEYS = ("format", "version", "kind")
_MAX_VALUE_CHARS = 120
# depthcli.weights.release_import.PROJECTS, here without importing torch; tests/test_cli_startup.py checks they agree.
PROJECT_NAMES = ("monodepth2", "diffnet", "radepth")


@weights_app.command("import")
def import_command(
    project: str = typer.Argument(..., metavar="PROJECT", help=f"Reference project: {', '.join(PROJECT_NAMES)}."),
    src_dir: Path = typer.Argument(
        ..., metavar="SRC_DIR", help="Release folder: encoder.pth, depth.pth, optionally pose_encoder.pth + pose.pth."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="depthcli checkpoint to write (.ckpt)."),
) -> None:
    """Convert an official release folder into a depthcli checkpoint (depth net, and pose net when present).

    The checkpoint works with predict and eval, and `depthcli train --init CKPT` fine-tunes from it.
    """
    from depthcli.weights.release_import import import_to_checkpoint

    path, payload = import_to_checkpoint(project, src_dir, out)
    config = payload["config"]
    console = Console()
    console.print(
        f"imported {escape(project)} weights from {escape(str(src_dir))} "
        f"(trained at {config['size'][0]}x{config['size'][1]}) into [bold]{escape(str(path))}[/]"
    )
    networks = "depth net and pose net" if "networks" in payload else "depth net (the folder has no pose net)"
    console.print(f"  {networks} from {', '.join(payload['imported_files'])}")
    console.print(f"  use it: depthcli predict IMAGES --checkpoint {escape(str(path))} --out DIR")
    console.print(f"  fine-tune: depthcli train --preset {escape(config['net'])} --init {escape(str(path))} ...")


def _describe(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}" if value.numel() > 1 else str(value.item())
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        params = sum(v.numel() for v in value.values() if v.is_floating_point())
        return f"{len(value)} tensors, {params / 1e6:.2f} M values"
    text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _rows(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Flatten nested plain dicts (config, metrics) into `a.b` rows; state dicts stay one row."""
    import torch

    if isinstance(value, dict) and value and not all(isinstance(v, torch.Tensor) for v in value.values()):
        return [row for key, inner in value.items() for row in _rows(f"{prefix}.{key}" if prefix else str(key), inner)]
    return [(prefix, _describe(value))]


def checkpoint_rows(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) rows: header first, then config, then everything else the checkpoint holds."""
    rows = [(key, str(payload[key])) for key in _HEADER_KEYS if key in payload]
    rows += _rows("config", payload.get("config", {}))
    for key, value in payload.items():
        if key not in _HEADER_KEYS and key != "config":
            rows += _rows(str(key), value)
    return rows


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in summary.items():
        if key == "parameters":
            rows += [(f"parameters ({name})", f"{count:,}") for name, count in value.items()]
        elif key == "size" and isinstance(value, list) and len(value) == 2:
            rows.append((key, f"{value[0]}x{value[1]}"))
        elif key == "depth_range":
            rows.append(("depth range (m)", f"{value[0]} .. {value[1]}"))
        elif isinstance(value, dict):
            rows += [(f"{key}.{name}", str(inner)) for name, inner in value.items()]
        else:
            rows.append((key, str(value)))
    return rows


@weights_app.command("info")
def info_command(
    checkpoint: Path = typer.Argument(..., metavar="CKPT", help="depthcli checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    show_all: bool = typer.Option(False, "--all", help="List every entry: full config, training state, tensors."),
) -> None:
    """Summarise a checkpoint: net, size, depth range, parameters per network, where it came from."""
    import json

    from depthcli.checkpoints import load_checkpoint
    from depthcli.weights.summary import checkpoint_summary

    payload = load_checkpoint(checkpoint)
    if as_json:
        typer.echo(json.dumps(checkpoint_summary(payload, checkpoint), indent=2))
        return
    rows = checkpoint_rows(payload) if show_all else _summary_rows(checkpoint_summary(payload, checkpoint))
    table = Table(title=escape(str(checkpoint)), show_lines=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field, value in rows:
        table.add_row(escape(field), escape(value))
    Console().print(table)
    if not show_all:
        Console().print("  (--all lists the full config and training state)")


@weights_app.command("slim")
def slim_command(
    checkpoint: Path = typer.Argument(..., metavar="CKPT", help="depthcli checkpoint (e.g. a run's last.ckpt)."),
    out: Path = typer.Option(..., "--out", "-o", help="Weights-only checkpoint to write (.ckpt)."),
    depth_only: bool = typer.Option(
        False, "--depth-only", help="Keep the depth net alone (drop the pose net and any other network)."
    ),
) -> None:
    """Write CKPT without its training state (optimizer, scheduler, RNG): what eval, predict and --init need.

    The slim file predicts exactly as CKPT does; it cannot be resumed (keep CKPT for --resume).
    """
    from depthcli.checkpoints import slim_checkpoint

    before = checkpoint.stat().st_size if checkpoint.is_file() else 0
    dropped = slim_checkpoint(checkpoint, out, depth_only=depth_only)
    after = out.stat().st_size
    console = Console()
    console.print(
        f"wrote [bold]{escape(str(out))}[/]: {_megabytes(before)} -> {_megabytes(after)} ({100 * after / before:.0f} %)"
    )
    console.print(f"  left out: {escape(', '.join(dropped))}" if dropped else "  nothing to leave out (already slim)")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
