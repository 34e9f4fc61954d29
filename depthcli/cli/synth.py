"""`depthcli synth kitti|nyu OUT`: render synthetic worlds in the real KITTI raw / NYU formats."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from depthcli.sizes import parse_image_size

synth_app = typer.Typer(
    help="Render synthetic KITTI-like drives or NYU-like rooms (exact depth).", no_args_is_help=True
)


def _render(kind: str, out: Path, call) -> None:
    console = Console(soft_wrap=True)  # paths stay whole (and findable) however long
    console.print(f"writing synthetic {kind} into {out}")
    with Progress(
        TextColumn(f"[bold]synth {kind}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("frames", total=None)
        summary = call(lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"{summary.frames} frames written to {summary.root}")
    for path in summary.files:
        console.print(f"wrote {path}")


@synth_app.command("kitti")
def kitti(
    out: Path = typer.Argument(..., help="Output root (gets DATE/ folders and split files, like KITTI raw)."),
    frames: int = typer.Option(100, "--frames", help="Frames per drive (10 Hz, about 1 m apart)."),
    drives: int = typer.Option(1, "--drives", help="Number of drives; the last one is the test split if > 1."),
    size: str = typer.Option("1242x375", "--size", help="Image size WxH (any positive size; KITTI is 1242x375)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, byte-identical files."),
    workers: int = typer.Option(2, "--workers", help="Render processes."),
    stereo: bool = typer.Option(False, "--stereo", help="Also render the right camera (image_03); twice the time."),
) -> None:
    """KITTI raw layout: calib files, image_02 PNGs, velodyne scans, dense true depth, split files."""
    from depthcli.synth import synth_kitti

    parsed = parse_image_size(size)
    _render(
        "kitti",
        out,
        lambda progress: synth_kitti(
            out, frames, drives, parsed, seed, workers=workers, progress=progress, stereo=stereo
        ),
    )


@synth_app.command("nyu")
def nyu(
    out: Path = typer.Argument(..., help="Output folder (gets nyu_depth_v2_labeled.mat and splits.mat)."),
    frames: int = typer.Option(64, "--frames", help="Number of views (4 per room)."),
    size: str = typer.Option("640x480", "--size", help="Image size WxH (NYU is 640x480)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, byte-identical files."),
    workers: int = typer.Option(2, "--workers", help="Render processes."),
) -> None:
    """NYU labelled layout: v7.3 .mat with images, depths, rawDepths, plus splits.mat."""
    from depthcli.synth import synth_nyu

    parsed = parse_image_size(size)
    _render("nyu", out, lambda progress: synth_nyu(out, frames, parsed, seed, workers=workers, progress=progress))


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")
