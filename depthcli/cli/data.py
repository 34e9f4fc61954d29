"""`depthcli data`: the shipped split lists, and checking a real KITTI download against a split.

The science is imported inside the commands, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from depthcli.cli.common import console, progress_bar

data_app = typer.Typer(help="Dataset preparation: standard splits, checking a KITTI download.", no_args_is_help=True)
check_app = typer.Typer(help="Check that a dataset download holds what a split needs.", no_args_is_help=True)
data_app.add_typer(check_app, name="check")


@data_app.command("splits")
def splits_command() -> None:
    """List the standard KITTI splits shipped with depthcli (usable as --split NAME anywhere eval takes one)."""
    from depthcli.data.standard_splits import SPLITS_DIR, STANDARD_SPLITS, drives_of, standard_split

    table = Table(title="shipped KITTI splits (from monodepth2's splits/ folder)", box=box.SIMPLE_HEAD)
    for column in ("name", "frames", "drives"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for name, parts in STANDARD_SPLITS.items():
        for part in parts:
            entries = standard_split(name, part)
            table.add_row(f"{name}/{part}", str(len(entries)), str(len(drives_of(entries))))
    console.print(table)
    console.print(f"origin and licence: {SPLITS_DIR / 'README.md'}", highlight=False, soft_wrap=True)


@check_app.command("kitti")
def check_kitti_command(
    root: Path = typer.Argument(..., help="KITTI raw root (the folder holding the date folders)."),
    split: str = typer.Option(
        "eigen",
        "--split",
        help="A shipped split (eigen, eigen_benchmark, eigen_zhou/train, eigen_zhou/val, ...) or a file.",
    ),
    export_gt: Path | None = typer.Option(
        None, "--export-gt", help="Also write monodepth2's gt_depths.npz for this (test) split here."
    ),
    gt_depth: str = typer.Option("velo-x", "--gt-depth", help="Exported velodyne GT: velo-x (monodepth2) or cam-z."),
    show: int = typer.Option(5, "--show", min=0, help="Missing files to list per kind."),
) -> None:
    """Verify a KITTI raw download holds every file a split needs; report what is missing (exit 1 if any)."""
    from depthcli.data.kitti_check import check_kitti, export_gt_depths

    report = check_kitti(root, split)
    table = Table(title=f"{report.split}: {report.entries} frames under {root}", box=box.SIMPLE_HEAD)
    for column in ("needs", "present", "missing"):
        table.add_column(column, justify="left" if column == "needs" else "right")
    for kind, count in report.needed.items():
        missing = len(report.missing.get(kind, []))
        table.add_row(kind, str(count - missing), f"[red]{missing}[/]" if missing else "0")
    console.print(table)
    if report.formats:
        console.print("frames found as " + ", ".join(f"{n} {ext}" for ext, n in report.formats.items()))
    for kind, paths in report.missing.items():
        for path in paths[:show]:
            console.print(f"  missing {kind}: {escape(path)}", highlight=False, soft_wrap=True)
        if len(paths) > show:
            console.print(f"  ... and {len(paths) - show} more {kind}")
    if not report.ok:
        worst = ", ".join(f"{drive} ({count})" for drive, count in report.missing_by_drive().most_common(5))
        console.print(f"[bold red]incomplete:[/] most missing files in {worst}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    console.print("[bold green]complete[/]: every file the split needs is present")
    if export_gt is not None:
        with progress_bar("export ground truth") as progress:
            written = export_gt_depths(root, split, export_gt, gt_depth, progress)
        console.print(f"ground truth: {written}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
