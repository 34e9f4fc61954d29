"""`depthcli cache build|info|verify`: pack a dataset split into one HDF5 file, describe it, check it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from depthcli.errors import DepthcliError
from depthcli.sizes import parse_size

cache_app = typer.Typer(help="Build, describe and verify HDF5 dataset caches.", no_args_is_help=True)


@cache_app.command("build")
def build(
    dataset: str = typer.Option(..., "--dataset", help="kitti or nyu."),
    root: Path = typer.Option(..., "--root", help="KITTI raw root (holding DATE folders) or NYU .mat/.h5/PNG folder."),
    out: Path = typer.Option(..., "--out", help="Output cache file (.h5); written atomically, resumable."),
    split: Path = typer.Option(None, "--split", help="KITTI split file (folder frame side) or NYU splits.mat."),
    size: str = typer.Option(None, "--size", help="Resize to WxH (training cache, e.g. 640x192); default full size."),
    ext: str = typer.Option("png", "--ext", help="KITTI image extension: png or jpg."),
    depth_value: str = typer.Option("velo_x", "--depth-value", help="KITTI GT: velo_x (Eigen) or cam_z."),
    depth_unit: str = typer.Option("mm", "--depth-unit", help="NYU PNG depth unit: mm or 256."),
    frame_ids: str = typer.Option(
        "0,-1,1", "--frame-ids", help="KITTI training caches: the target 0, then the neighbour offsets to store."
    ),
) -> None:
    """Pack images (resized with --size, full size otherwise), neighbours, intrinsics, GT and split."""
    from depthcli.data.cache import build_cache
    from depthcli.data.cache_file import cache_info

    parsed_size = parse_size(size) if size is not None else None
    parsed_frame_ids = parse_frame_ids(frame_ids)
    console = Console()
    console.print(f"building {out}")
    with Progress(
        TextColumn("[bold]cache"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("entries", total=None)
        path = build_cache(
            dataset,
            root,
            out,
            split=split,
            size=parsed_size,
            ext=ext,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            depth_value=depth_value,
            depth_unit=depth_unit,
            frame_ids=parsed_frame_ids,
        )
    info = cache_info(path)
    summary = f"{info['samples']} samples, {info['frames']} frames"
    if dataset == "kitti":
        summary += f", skipped {info['skipped']} split entr(ies) with a missing neighbour frame"
    console.print(summary)
    console.print(f"wrote {path}")


def parse_frame_ids(text: str) -> tuple[int, ...]:
    """`0,-2,2` -> (0, -2, 2); anything else is one line saying what to give."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise DepthcliError(
            f"--frame-ids {text!r}: give comma-separated integers, the target 0 first (0,-1,1)"
        ) from None


@cache_app.command("info")
def info(path: Path = typer.Argument(..., help="Cache file.")) -> None:
    """Print the cache's attributes and counts as JSON."""
    from depthcli.data.cache_file import cache_info

    typer.echo(json.dumps(cache_info(path), indent=2, sort_keys=True))


@cache_app.command("verify")
def verify(path: Path = typer.Argument(..., help="Cache file.")) -> None:
    """Re-read every entry against its checksum; exit 1 and list the bad entries if any."""
    from depthcli.data.cache_file import verify_cache

    problems = verify_cache(path)
    if problems:
        for problem in problems:
            typer.echo(problem, err=True)
        typer.echo(f"{path}: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{path}: OK")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
