"""`depthcli eval`: score checkpoints (at one or more resolutions) or saved predictions on a split.

The science (torch, depthcli.evaluation) is imported inside the command, so that `depthcli --help`
stays fast. Shared options and output helpers live in depthcli.cli.common.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from depthcli.cli.common import (
    BatchSizeOpt,
    CapOpt,
    CloudMetricsOpt,
    CropOpt,
    DeviceOpt,
    FormatOpt,
    FramesOpt,
    GroupOpt,
    GtDepthOpt,
    GtOpt,
    ImageResizeOpt,
    JsonOpt,
    MedianScalingOpt,
    PostProcessOpt,
    ProtocolOpt,
    ResizeOpt,
    ScaleFactorOpt,
    SqRelOpt,
    build_options,
    default_device,
    metrics_table,
    output_console,
    parse_groups,
    print_rows,
    print_warnings,
    progress_bar,
)
from depthcli.errors import DepthcliError
from depthcli.sizes import parse_resolutions

if TYPE_CHECKING:
    from depthcli.evaluation.evaluate import EvalResult


def print_extremes(result: EvalResult, out: Console, count: int = 3) -> None:
    """Median-scaling ratios and the best / worst images by abs_rel, one line each."""
    if result.median_ratio is not None:
        out.print(
            f"[bold]{result.resolution}[/] median scaling ratio: {result.median_ratio:.3f} "
            f"(std of ratio/median {result.median_ratio_std:.3f})",
            highlight=False,
        )
    ranked = result.ranked("abs_rel")
    best = ", ".join(f"{row['name']} ({row['abs_rel']:.3f})" for row in ranked[:count])
    worst = ", ".join(f"{row['name']} ({row['abs_rel']:.3f})" for row in reversed(ranked[-count:]))
    out.print(f"[bold]{result.resolution}[/] best abs_rel: {best}", highlight=False)
    out.print(f"[bold]{result.resolution}[/] worst abs_rel: {worst}", highlight=False)


def eval_command(
    checkpoints: list[Path] | None = typer.Option(
        None, "--checkpoint", help="depthcli depth checkpoint; repeat to compare several (see --group)."
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Saved predictions: one (N,H,W) .npy in split order, or the folder `depthcli predict --save npy` "
        "wrote (scaled disparities, as monodepth2 saves; --pred-type depth for metric depth).",
    ),
    data: Path | None = typer.Option(None, "--data", help="Dataset root (KITTI raw; NYU .mat / folder) or eval cache."),
    split: str | None = typer.Option(
        None,
        "--split",
        help="KITTI: a split file or a shipped split (eigen, eigen_benchmark, eigen_zhou/val, ...; "
        "`depthcli data splits`); NYU: optional index list or splits.mat.",
    ),
    gt_npz: Path | None = typer.Option(None, "--gt-npz", help="Ground truth from monodepth2's gt_depths.npz."),
    protocol: ProtocolOpt = "kitti-eigen",
    gt: GtOpt = None,
    gt_depth: GtDepthOpt = None,
    crop: CropOpt = None,
    cap: CapOpt = None,
    sq_rel: SqRelOpt = None,
    resize: ResizeOpt = None,
    median_scaling: MedianScalingOpt = None,
    scale_factor: ScaleFactorOpt = 1.0,
    resolutions: str | None = typer.Option(
        None,
        "--resolutions",
        help="Network input sizes: 416x128..1024x320 or a list 640x192,1024x320 "
        "(default: the checkpoint's training size).",
    ),
    pred_type: str | None = typer.Option(
        None, "--pred-type", help="disp|depth: what --predictions holds (default: disp for KITTI, depth for NYU)."
    ),
    post_process: PostProcessOpt = False,
    frames: FramesOpt = "auto",
    image_resize: ImageResizeOpt = "torch",
    cloud_metrics: CloudMetricsOpt = False,
    batch_size: BatchSizeOpt = 4,
    device: DeviceOpt = None,
    json_path: JsonOpt = None,
    per_image: Path | None = typer.Option(None, "--per-image", help="Write per-image errors as CSV."),
    table_format: FormatOpt = "rich",
    groups: GroupOpt = None,
) -> None:
    """Evaluate depth predictions on KITTI or NYU under a named protocol variant (docs/evaluation.md)."""
    from depthcli.evaluation.eval_sets import open_eval_set
    from depthcli.evaluation.evaluate import evaluate_predictions
    from depthcli.evaluation.predictions import PredictionFolder, load_predictions
    from depthcli.evaluation.reporting import write_json, write_per_image_csv
    from depthcli.provenance import provenance

    out = output_console(json_path)
    paths, group_map = parse_groups(groups, checkpoints or [])
    if bool(paths) == (predictions is not None):
        raise DepthcliError("give exactly one of --checkpoint CKPT (repeatable) or --predictions FILE.npy|FOLDER")
    options = build_options(
        protocol, dict(gt=gt, gt_depth=gt_depth, crop=crop, cap=cap, sq_rel=sq_rel, resize=resize),
        median_scaling=median_scaling, scale_factor=scale_factor, pred_type=pred_type, post_process=post_process,
        image_resize=image_resize, frames=frames, batch_size=batch_size, cloud_metrics=cloud_metrics,
    )  # fmt: skip
    sizes = parse_resolutions(resolutions) if resolutions is not None else None
    if predictions is not None and (sizes is not None or post_process or image_resize != "torch"):
        raise DepthcliError(
            "--resolutions, --post-process and --image-resize apply to --checkpoint; predictions are used as given"
        )
    if paths and pred_type is not None:
        raise DepthcliError("--pred-type applies to --predictions; a checkpoint's output is always a disparity")
    if per_image is not None and len(paths) > 1:
        raise DepthcliError("--per-image needs one --checkpoint (or --predictions); evaluate checkpoints one by one")
    eval_set = open_eval_set(data, split, options.protocol, options.frames, gt_npz)
    where = provenance(data=_absolute(data), split=split, gt_npz=_absolute(gt_npz), device=device)
    if predictions is not None:
        preds = PredictionFolder(predictions, eval_set.names) if predictions.is_dir() else load_predictions(predictions)
        with progress_bar(f"eval {predictions.name}", out) as progress:
            results = [evaluate_predictions(preds, eval_set, options, str(predictions), progress)]
        rows = [results[0].summary() | {"provenance": where | {"predictions": _absolute(predictions)}}]
        labels, title = [rows[0]["resolution"]], f"{predictions}"
    else:
        from depthcli.evaluation.reporting import group_rows

        results, rows, labels, names = _evaluate_checkpoints(paths, eval_set, options, sizes, device, where, out)
        for name, members in group_map.items():
            grouped = group_rows(rows, name, [names[index] for index in members])
            rows += [row | {"provenance": where} for row in grouped]
            labels += [f"{name} (mean ± std of {row['n_runs']}) @ {row['resolution']}" for row in grouped]
        title = str(paths[0]) if len(paths) == 1 else f"{len(paths)} checkpoints"
    _report(rows, labels, results, title, options, table_format, out, single=len(paths) <= 1)
    if json_path is not None:
        written = write_json(rows, json_path)
        if written is not None:
            out.print(f"results: {written}", highlight=False)
    if per_image is not None:
        out.print(f"per-image errors: {write_per_image_csv(results, per_image)}", highlight=False)


def _absolute(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def _evaluate_checkpoints(paths, eval_set, options, sizes, device, where, out):
    """Every checkpoint at its training size (or `sizes`) -> (results, rows, table labels, checkpoint labels)."""
    from depthcli.evaluation.evaluate import evaluate_model
    from depthcli.evaluation.selection import eval_selection_warnings
    from depthcli.evaluation.sweep import checkpoint_labels
    from depthcli.nets.loading import load_depth_model

    loaded = [load_depth_model(path, device or default_device()) for path in paths]
    names = checkpoint_labels(paths, [model.config for model in loaded])
    all_results, rows, labels = [], [], []
    for path, name, model in zip(paths, names, loaded, strict=True):
        warnings = eval_selection_warnings(model.config, eval_set.drives, options.protocol.dataset)
        print_warnings(warnings, out)
        with progress_bar(f"eval {path.name}", out) as progress:
            results = evaluate_model(
                model.net, eval_set, sizes or [model.size], model.min_depth, model.max_depth, options, progress
            )
        all_results += results
        for result in results:
            row = {"checkpoint": name} | result.summary() | {"selection_warnings": warnings}
            rows.append(row | {"provenance": where | {"checkpoint": _absolute(path)}})
            labels.append(result.resolution if len(paths) == 1 else f"{name} @ {result.resolution}")
    return all_results, rows, labels, names


def _report(rows, labels, results, title, options, table_format, out, single: bool) -> None:
    protocol = options.protocol
    out.print(
        metrics_table(rows, f"{protocol.label()}: {title}", labels, protocol.table), highlight=False, soft_wrap=True
    )
    out.print(f"[dim]variant: {protocol.describe()}; split {rows[0]['split']}; gt {rows[0]['gt']}[/]", highlight=False)
    if single:
        for result in results:
            print_extremes(result, out)
    print_rows(rows, labels, table_format, protocol.table, out)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
