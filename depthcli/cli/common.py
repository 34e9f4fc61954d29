"""What the CLI commands share: consoles, progress bars, result tables, and the evaluation option block.

The evaluation options are declared once here (as `Annotated` types) and used by `eval` and `sweep`.
Nothing heavy is imported at module level, so that `depthcli --help` stays fast; the choice lists
below mirror depthcli.evaluation's (tests/test_cli_startup.py keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from depthcli.errors import DepthcliError

PROTOCOL_NAMES = ("kitti-eigen", "kitti-eigen-corrected", "kitti-benchmark", "kitti-benchmark-legacy", "nyu")
PRED_TYPES = ("disp", "depth")
GT_SOURCES = ("velodyne", "improved", "dense")
GT_DEPTHS = ("velo-x", "cam-z")
CROPS = ("garg", "eigen", "nyu", "none")
SQ_REL_FORMULAS = ("legacy", "squared")
RESIZE_MODES = ("disp-cv2", "depth-bilinear")
FRAME_FORMATS = ("auto", "png", "jpg", "jpeg92")
IMAGE_RESIZES = ("torch", "pil-lanczos")
TABLE_FORMATS = ("rich", "markdown", "latex")
DEFAULT_TABLE = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
DENSE_COLUMNS = ("dbe_acc", "dbe_comp", "chamfer", "fscore")

console = Console()


def check_choice(value: str | None, choices: Sequence[str], option: str) -> None:
    if value is not None and value not in choices:
        raise DepthcliError(f"{option} {value!r} is not one of {', '.join(choices)}")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def tensorboard_notes(config: Any, out: Path) -> list[str]:
    """The line a training command adds at its start when the run writes TensorBoard events: how to watch them."""
    from depthcli.engine.tensorboard_log import watch_hint

    hint = watch_hint(out) if config.tensorboard else None
    return [hint] if hint else []


def output_console(json_path: Path | None) -> Console:
    """Where human-readable output goes: stderr when `--json -` puts the JSON on stdout."""
    return Console(stderr=True) if json_path is not None and str(json_path) == "-" else console


@contextmanager
def progress_bar(description: str, out: Console | None = None) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar driven by the science code's `progress(done, total)` callback."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out or console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def table_metrics(rows: Sequence[dict], preferred: Sequence[str] = DEFAULT_TABLE) -> list[str]:
    """The columns to show: the protocol's own metrics, then any dense-GT metric the rows hold."""
    return [name for name in (*preferred, *DENSE_COLUMNS) if any(name in row for row in rows)]


def metrics_table(
    rows: Sequence[dict], title: str, labels: Sequence[str] | None = None, metrics: Sequence[str] = DEFAULT_TABLE
) -> Table:
    """One row per summary dict (EvalResult.summary()), 3 decimals as papers print them; `x ± s` for groups.

    Rows are labelled by their resolution unless `labels` names them (e.g. trained / untrained).
    """
    columns = table_metrics(rows, metrics)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("resolution" if labels is None else "model", no_wrap=True)
    for name in columns:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    for index, row in enumerate(rows):
        label = row["resolution"] if labels is None else labels[index]
        cells = []
        for name in columns:
            value, std = row.get(name), row.get(f"{name}_std")
            cells.append("-" if value is None else f"{value:.3f}" + (f" ± {std:.3f}" if std is not None else ""))
        table.add_row(escape(label), *cells, str(row["n_images"]))
    return table


def print_warnings(warnings: Sequence[str], out: Console) -> None:
    for warning in warnings:
        out.print(f"[bold red]WARNING (selection):[/] {escape(warning)}", highlight=False)


def parse_groups(values: Sequence[str] | None, checkpoints: Sequence[Path]) -> tuple[list[Path], dict[str, list[int]]]:
    """`--group NAME` (all --checkpoint paths) or `--group NAME=A.ckpt,B.ckpt` (these, added to the list).

    Returns every checkpoint to evaluate and, per group, the positions of its checkpoints.
    """
    paths, groups = list(checkpoints), {}
    for value in values or ():
        name, sep, members = value.partition("=")
        if not name:
            raise DepthcliError(f"--group {value!r}: give NAME or NAME=CKPT,CKPT")
        if name in groups:
            raise DepthcliError(f"--group {name} is given twice")
        if not sep:
            groups[name] = list(range(len(checkpoints)))
            continue
        indices = []
        for member in filter(None, members.split(",")):
            path = Path(member)
            if path not in paths:
                paths.append(path)
            indices.append(paths.index(path))
        groups[name] = indices
    return paths, groups


# ------------------------------------------------------------------- the evaluation option block
ProtocolOpt = Annotated[str, typer.Option("--protocol", help=f"Preset: {', '.join(PROTOCOL_NAMES)}.")]
GtOpt = Annotated[
    str | None,
    typer.Option("--gt", help="KITTI ground truth: velodyne (Eigen), improved (KITTI PNGs), dense (synthetic worlds)."),
]
GtDepthOpt = Annotated[
    str | None, typer.Option("--gt-depth", help="Velodyne GT value: velo-x (the Eigen quirk) or cam-z (camera axis).")
]
CropOpt = Annotated[str | None, typer.Option("--crop", help=f"{'|'.join(CROPS)} (kitti-eigen uses garg).")]
CapOpt = Annotated[
    float | None, typer.Option("--cap", help="Depth cap in metres (80 for Eigen, 100 for the benchmark).")
]
SqRelOpt = Annotated[
    str | None, typer.Option("--sq-rel", help="legacy: mean(err²/gt) as published; squared: mean(err²/gt²) (devkit).")
]
ResizeOpt = Annotated[
    str | None,
    typer.Option("--resize", help="disp-cv2 (monodepth2: resize disparity, invert) or depth-bilinear (packnet-sfm)."),
]
MedianScalingOpt = Annotated[
    bool | None,
    typer.Option(
        "--median-scaling/--no-median-scaling", help="Per-image median scaling (default: on for KITTI, off for NYU)."
    ),
]
ScaleFactorOpt = Annotated[float, typer.Option("--scale-factor", help="Multiply predicted depth (stereo models: 5.4).")]
FramesOpt = Annotated[
    str,
    typer.Option("--frames", "--ext", help="Test frames: auto (png, else jpg), png, jpg, or jpeg92 (PNG through JPEG "
                 "q92 4:2:0, as monodepth2's conversion)."),
]  # fmt: skip
ImageResizeOpt = Annotated[
    str,
    typer.Option("--image-resize", help="torch (bilinear, antialiased) or pil-lanczos (the official test scripts)."),
]
PostProcessOpt = Annotated[bool, typer.Option("--post-process", help="monodepth2 flip post-processing (checkpoints).")]
CloudMetricsOpt = Annotated[
    bool, typer.Option("--cloud-metrics", help="Chamfer and F-score@10cm on dense GT (seconds per image).")
]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available).")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the result rows as JSON; '-' for stdout.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Also print the rows as markdown or latex (for papers).")]
GroupOpt = Annotated[
    list[str] | None,
    typer.Option("--group", help="Seeds of one recipe: NAME (all --checkpoint) or NAME=A.ckpt,B.ckpt; mean ± std."),
]


def build_options(protocol: str, switches: dict, **run_options):
    """An `EvalOptions` from the option block: a preset, its changed `switches` (None = keep), run options."""
    from depthcli.evaluation.evaluate import EvalOptions
    from depthcli.evaluation.protocols import build_protocol

    check_choice(protocol, PROTOCOL_NAMES, "--protocol")
    return EvalOptions(protocol=build_protocol(protocol, **switches), **run_options)


def print_rows(rows: Sequence[dict], labels: Sequence[str], style: str, metrics: Sequence[str], out: Console) -> None:
    """`--format markdown|latex`: the rows as text a paper can take."""
    check_choice(style, TABLE_FORMATS, "--format")
    if style == "rich" or not rows:
        return
    from depthcli.evaluation.reporting import format_rows

    out.print(
        format_rows(rows, table_metrics(rows, metrics), labels, style), markup=False, highlight=False, soft_wrap=True
    )
