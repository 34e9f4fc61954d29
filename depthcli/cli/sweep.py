"""`depthcli sweep`: evaluate checkpoints at every test resolution; JSON, CSV and one overlay plot.

The science is imported inside the command, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from depthcli.cli.eval import PROTOCOL_NAMES, check_choice, console, default_device, metrics_table, progress_bar
from depthcli.errors import DepthcliError
from depthcli.sizes import parse_resolutions


def sweep_command(
    checkpoints: list[Path] = typer.Option(..., "--checkpoint", help="Depth checkpoint; repeat to overlay several."),
    data: Path = typer.Option(..., "--data", help="Dataset root (KITTI raw; NYU .mat / folder)."),
    split: Path | None = typer.Option(None, "--split", help="Split file (optional for NYU)."),
    out: Path = typer.Option(..., "--out", help="Output folder for sweep.json, sweep.csv, sweep.png."),
    resolutions: str = typer.Option("416x128..1024x320", "--resolutions", help="Ladder span or WxH list."),
    protocol: str = typer.Option("kitti-eigen", "--protocol", help=f"One of {', '.join(PROTOCOL_NAMES)}."),
    median_scaling: bool | None = typer.Option(
        None,
        "--median-scaling/--no-median-scaling",
        help="Per-image median scaling (default: on for KITTI, off for NYU).",
    ),
    scale_factor: float = typer.Option(1.0, "--scale-factor", help="Multiply predicted depth (stereo models: 5.4)."),
    post_process: bool = typer.Option(False, "--post-process", help="monodepth2 flip post-processing."),
    ext: str | None = typer.Option(None, "--ext", help="png|jpg image extension (default: png, else jpg)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per forward pass."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Resolution robustness: every checkpoint at every resolution, overlaid in one plot."""
    from depthcli.evaluation.sweep import run_sweep

    check_choice(protocol, PROTOCOL_NAMES, "--protocol")
    check_choice(ext, ("png", "jpg"), "--ext")
    if scale_factor <= 0:
        raise DepthcliError(f"--scale-factor {scale_factor} must be positive")
    sizes = parse_resolutions(resolutions)
    console.print(f"sweep -> {out}", highlight=False)
    with progress_bar("sweep") as progress:
        rows, paths = run_sweep(
            checkpoints,
            data,
            split,
            out,
            sizes,
            protocol=protocol,
            median_scaling=median_scaling,
            scale_factor=scale_factor,
            post_process=post_process,
            batch_size=batch_size,
            ext=ext,
            device=device or default_device(),
            progress=progress,
        )
    for label in dict.fromkeys(row["checkpoint"] for row in rows):
        console.print(metrics_table([row for row in rows if row["checkpoint"] == label], f"{protocol} sweep: {label}"))
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
