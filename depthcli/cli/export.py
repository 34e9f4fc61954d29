"""`depthcli export onnx`: a depth checkpoint as an ONNX graph (image in, scale-0 disparity out).

depthcli.export (torch) is imported inside the command, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from depthcli.sizes import format_size, parse_size

export_app = typer.Typer(help="Export trained depth nets to other runtimes.", no_args_is_help=True)


@export_app.command("onnx")
def onnx_command(
    checkpoint: Path = typer.Argument(..., metavar="CKPT", help="depthcli depth checkpoint."),
    out: Path = typer.Option(..., "--out", "-o", help="ONNX file to write."),
    size: str | None = typer.Option(None, "--size", help="Input WxH (multiples of 32); default: training size."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Free batch, height and width axes."),
) -> None:
    """Export to ONNX (opset 17): input `image` (B,3,H,W) in [0,1], output `disp` (B,1,H,W) sigmoid."""
    from depthcli.export import INPUT_NAME, OPSET, OUTPUT_NAME, export_checkpoint_onnx

    path, used = export_checkpoint_onnx(checkpoint, out, parse_size(size) if size else None, dynamic=dynamic)
    axes = "dynamic batch/height/width" if dynamic else f"fixed 1x3x{used[1]}x{used[0]}"
    Console().print(
        f"wrote [bold]{escape(str(path))}[/] (opset {OPSET}, input {INPUT_NAME!r} {axes}, traced at "
        f"{format_size(used)}, output {OUTPUT_NAME!r} = scale-0 disparity)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
