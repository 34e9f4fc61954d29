"""`depthcli models`: every registered network with its parameters, multiply-adds and output scales.

depthcli.nets (torch) is imported inside the command, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from depthcli.sizes import format_size, parse_size


def models(
    size: str = typer.Option("640x192", "--size", help="Input size WIDTHxHEIGHT (multiples of 32) for multiply-adds."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of {name, params, macs, scales}."),
) -> None:
    """List the depth nets (and the pose net) with parameters, multiply-adds at --size and output scales."""
    from depthcli.nets import list_depth_nets, list_pose_nets, model_summary, pose_summary

    input_size = parse_size(size)
    depth_rows = [model_summary(name, input_size) for name in list_depth_nets()]
    pose_rows = [pose_summary(name, input_size) for name in list_pose_nets()]
    if as_json:
        typer.echo(json.dumps(depth_rows + pose_rows, indent=2))
        return
    table = Table(title=f"depthcli networks (multiply-adds at {format_size(input_size)}, batch 1)")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("params (M)", justify="right")
    table.add_column("multiply-adds (G)", justify="right")
    table.add_column("output scales")
    for kind, rows in (("depth", depth_rows), ("pose", pose_rows)):
        for row in rows:
            scales = ", ".join(str(s) for s in row["scales"]) or "-"
            table.add_row(row["name"], kind, f"{row['params'] / 1e6:.2f}", f"{row['macs'] / 1e9:.2f}", scales)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
