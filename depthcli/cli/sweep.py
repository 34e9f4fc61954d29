"""`depthcli sweep`: evaluate checkpoints at every test resolution; JSON, CSV and one overlay plot.

The science is imported inside the command, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

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
    check_report_outputs,
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


def sweep_command(
    checkpoints: list[Path] | None = typer.Option(
        None, "--checkpoint", help="Depth checkpoint; repeat to overlay several (see --group)."
    ),
    data: Path = typer.Option(..., "--data", help="Dataset root (KITTI raw; NYU .mat / folder) or eval cache."),
    split: str | None = typer.Option(
        None, "--split", help="Split file or shipped split (eigen, ...; optional for NYU)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder for sweep.json, sweep.csv, sweep.png."),
    resolutions: str = typer.Option("416x128..1024x320", "--resolutions", help="Ladder span or WxH list."),
    protocol: ProtocolOpt = "kitti-eigen",
    gt: GtOpt = None,
    gt_depth: GtDepthOpt = None,
    crop: CropOpt = None,
    cap: CapOpt = None,
    sq_rel: SqRelOpt = None,
    resize: ResizeOpt = None,
    median_scaling: MedianScalingOpt = None,
    scale_factor: ScaleFactorOpt = 1.0,
    post_process: PostProcessOpt = False,
    frames: FramesOpt = "auto",
    image_resize: ImageResizeOpt = "torch",
    cloud_metrics: CloudMetricsOpt = False,
    batch_size: BatchSizeOpt = 4,
    device: DeviceOpt = None,
    json_path: JsonOpt = None,
    table_format: FormatOpt = "rich",
    groups: GroupOpt = None,
) -> None:
    """Resolution robustness: every checkpoint at every resolution, overlaid in one plot."""
    from depthcli.evaluation.evaluate import EvalOptions
    from depthcli.evaluation.reporting import write_json
    from depthcli.evaluation.sweep import run_sweep
    from depthcli.provenance import provenance

    console = output_console(json_path)
    paths, group_map = parse_groups(groups, checkpoints or [])
    if not paths:
        raise DepthcliError("give at least one --checkpoint (or --group NAME=A.ckpt,B.ckpt)")
    options: EvalOptions = build_options(
        protocol, dict(gt=gt, gt_depth=gt_depth, crop=crop, cap=cap, sq_rel=sq_rel, resize=resize),
        median_scaling=median_scaling, scale_factor=scale_factor, post_process=post_process,
        image_resize=image_resize, frames=frames, batch_size=batch_size, cloud_metrics=cloud_metrics,
    )  # fmt: skip
    sizes = parse_resolutions(resolutions)
    check_report_outputs([("--json", json_path)], [*(("--checkpoint", path) for path in paths), ("--data", data),
                                                   ("--split", split)])  # fmt: skip
    record = provenance(
        data=str(data.resolve()), split=split, device=device, checkpoints=[str(path.resolve()) for path in paths]
    )
    console.print(f"sweep -> {out}", highlight=False)
    with progress_bar("sweep", console) as progress:
        rows, files = run_sweep(
            paths, data, split, out, sizes, options, device or default_device(), group_map, progress,
            extra={"provenance": record},
        )  # fmt: skip
    warnings = {f"{row['checkpoint']}: {text}" for row in rows for text in row.get("selection_warnings", [])}
    print_warnings(sorted(warnings), console)
    labels = list(dict.fromkeys(row["checkpoint"] for row in rows))
    for label in labels:
        subset = [row for row in rows if row["checkpoint"] == label]
        trained = f" (trained at {subset[0]['trained_at']})" if subset[0].get("trained_at") else ""
        title = f"{options.protocol.label()} sweep: {label}{trained}"
        console.print(metrics_table(subset, title, metrics=options.protocol.table), highlight=False, soft_wrap=True)
    console.print(f"[dim]variant: {options.protocol.describe()}[/]", highlight=False)
    print_rows(rows, [f"{row['checkpoint']} @ {row['resolution']}" for row in rows], table_format,
               options.protocol.table, console)  # fmt: skip
    if json_path is not None:
        write_json(rows, json_path)
    for kind, path in files.items():
        console.print(f"{kind}: {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
