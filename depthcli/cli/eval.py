"""`depthcli eval`: score a checkpoint (at one or more resolutions) or a predictions file on a split.

The science (torch, depthcli.evaluation) is imported inside the command, so that `depthcli --help`
stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from depthcli.errors import DepthcliError
from depthcli.sizes import parse_resolutions

if TYPE_CHECKING:
    from depthcli.evaluation.evaluate import EvalResult

console = Console()

# The keys of depthcli.evaluation.protocols.PROTOCOLS and its PRED_TYPES, here without importing the
# evaluation package (torch) for --help; tests/test_cli_startup.py checks that they agree.
PROTOCOL_NAMES = ("kitti-eigen", "kitti-benchmark", "nyu")
PRED_TYPES = ("disp", "depth")

TABLE_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "log10")


def check_choice(value: str | None, choices: Sequence[str], option: str) -> None:
    if value is not None and value not in choices:
        raise DepthcliError(f"{option} {value!r} is not one of {', '.join(choices)}")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar driven by the science code's `progress(done, total)` callback."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def metrics_table(rows: Sequence[dict], title: str, labels: Sequence[str] | None = None) -> Table:
    """One row per summary dict (EvalResult.summary()), 3 decimals as papers print them.

    Rows are labelled by their resolution unless `labels` names them (e.g. trained / untrained).
    """
    metrics = [name for name in TABLE_METRICS if any(name in row for row in rows)]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("resolution" if labels is None else "model", no_wrap=True)
    for name in metrics:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    for index, row in enumerate(rows):
        label = row["resolution"] if labels is None else labels[index]
        cells = [label, *(f"{row[name]:.3f}" for name in metrics), str(row["n_images"])]
        table.add_row(*cells)
    return table


def print_extremes(result: EvalResult, count: int = 3) -> None:
    """Median-scaling ratios and the best / worst images by abs_rel, one line each."""
    if result.median_ratio is not None:
        console.print(
            f"[bold]{result.resolution}[/] median scaling ratio: {result.median_ratio:.3f} "
            f"(std of ratio/median {result.median_ratio_std:.3f})",
            highlight=False,
        )
    ranked = result.ranked("abs_rel")
    best = ", ".join(f"{row['name']} ({row['abs_rel']:.3f})" for row in ranked[:count])
    worst = ", ".join(f"{row['name']} ({row['abs_rel']:.3f})" for row in reversed(ranked[-count:]))
    console.print(f"[bold]{result.resolution}[/] best abs_rel: {best}", highlight=False)
    console.print(f"[bold]{result.resolution}[/] worst abs_rel: {worst}", highlight=False)


def eval_command(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="depthcli depth checkpoint to evaluate."),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="(N,H,W) .npy of predictions in split order (disparities unless --pred-type depth)."
    ),
    data: Path = typer.Option(..., "--data", help="Dataset root (KITTI raw; NYU .mat / folder)."),
    split: Path | None = typer.Option(
        None, "--split", help="Split file (KITTI: 'folder frame side' lines; NYU: optional index list or splits.mat)."
    ),
    protocol: str = typer.Option("kitti-eigen", "--protocol", help=f"One of {', '.join(PROTOCOL_NAMES)}."),
    resolutions: str | None = typer.Option(
        None,
        "--resolutions",
        help="Network input sizes: 416x128..1024x320 or a list 640x192,1024x320 "
        "(default: the checkpoint's training size).",
    ),
    pred_type: str | None = typer.Option(
        None, "--pred-type", help="disp|depth: what --predictions holds (default: disp for KITTI, depth for NYU)."
    ),
    median_scaling: bool | None = typer.Option(
        None,
        "--median-scaling/--no-median-scaling",
        help="Per-image median scaling (default: on for KITTI, off for NYU).",
    ),
    scale_factor: float = typer.Option(1.0, "--scale-factor", help="Multiply predicted depth (stereo models: 5.4)."),
    post_process: bool = typer.Option(False, "--post-process", help="monodepth2 flip post-processing (checkpoints)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the results (one object per resolution)."),
    per_image: Path | None = typer.Option(None, "--per-image", help="Write per-image errors as CSV."),
    ext: str | None = typer.Option(None, "--ext", help="png|jpg image extension (default: png, else jpg)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per forward pass."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)."),
) -> None:
    """Evaluate depth predictions on KITTI (Eigen / benchmark) or NYU with the published protocol."""
    from depthcli.evaluation.evaluate import (
        evaluate_model,
        evaluate_predictions,
        load_predictions,
        write_per_image_csv,
        write_results_json,
    )
    from depthcli.evaluation.ground_truth import open_eval_set

    if (checkpoint is None) == (predictions is None):
        raise DepthcliError("give exactly one of --checkpoint CKPT or --predictions FILE.npy")
    check_choice(protocol, PROTOCOL_NAMES, "--protocol")
    check_choice(pred_type, PRED_TYPES, "--pred-type")
    check_choice(ext, ("png", "jpg"), "--ext")
    if not (math.isfinite(scale_factor) and scale_factor > 0):
        raise DepthcliError(f"--scale-factor {scale_factor} must be a positive finite number")
    sizes = parse_resolutions(resolutions) if resolutions is not None else None
    if predictions is not None and (sizes is not None or post_process):
        raise DepthcliError("--resolutions and --post-process apply to --checkpoint; predictions are used as given")
    if checkpoint is not None and pred_type is not None:
        raise DepthcliError("--pred-type applies to --predictions; a checkpoint's output is always a disparity")
    eval_set = open_eval_set(data, split, protocol, ext)
    if predictions is not None:
        preds = load_predictions(predictions)
        with progress_bar(f"eval {predictions.name}") as progress:
            results = [
                evaluate_predictions(
                    preds, eval_set, protocol, pred_type, median_scaling, scale_factor, str(predictions), progress
                )
            ]
        title = f"{protocol}: {predictions}"
    else:
        from depthcli.engine.checkpoint import load_depth_model
        from depthcli.inference import refuse_nonfinite_weights

        model, config = load_depth_model(checkpoint, device or default_device())
        refuse_nonfinite_weights(model, str(checkpoint))
        if sizes is None:
            sizes = parse_resolutions("{}x{}".format(*config["size"]))
        with progress_bar(f"eval {checkpoint.name}") as progress:
            results = evaluate_model(
                model,
                eval_set,
                sizes,
                float(config["min_depth"]),
                float(config["max_depth"]),
                protocol=protocol,
                median_scaling=median_scaling,
                scale_factor=scale_factor,
                post_process=post_process,
                batch_size=batch_size,
                progress=progress,
            )
        title = f"{protocol}: {checkpoint}"
    console.print(metrics_table([result.summary() for result in results], title))
    for result in results:
        print_extremes(result)
    if json_path is not None:
        console.print(f"results: {write_results_json(results, json_path)}", highlight=False)
    if per_image is not None:
        console.print(f"per-image errors: {write_per_image_csv(results, per_image)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
