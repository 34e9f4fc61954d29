"""Resolution sweep (RA-Depth robustness): each checkpoint at each test resolution, as JSON, CSV and plot.

Several checkpoints overlay in one figure, so monodepth2 vs DIFFNet vs RA-Depth is one picture.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from depthcli.atomic import atomic_path, atomic_write_text
from depthcli.evaluation.evaluate import ProgressCallback, evaluate_model
from depthcli.evaluation.ground_truth import EvalSet, open_eval_set
from depthcli.sizes import RESOLUTION_LADDER

PLOTTED_METRICS = ("abs_rel", "sq_rel", "rmse", "a1")


@dataclass
class SweepModel:
    """A net to sweep, with the depth range its sigmoid disparity maps to and its legend label."""

    label: str
    model: nn.Module
    min_depth: float
    max_depth: float


def sweep_models(
    models: Sequence[SweepModel],
    eval_set: EvalSet,
    resolutions: Sequence[tuple[int, int]] = RESOLUTION_LADDER,
    protocol: str = "kitti-eigen",
    median_scaling: bool | None = None,
    scale_factor: float = 1.0,
    post_process: bool = False,
    batch_size: int = 4,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """One row per (model, resolution): {"checkpoint": label, **EvalResult.summary()}.

    `progress(done, total)` counts images over all models.
    """
    rows = []
    total = len(models) * len(eval_set)
    for number, entry in enumerate(models):

        def report(done: int, _: int, offset: int = number * len(eval_set)) -> None:
            if progress:
                progress(offset + done, total)

        results = evaluate_model(
            entry.model,
            eval_set,
            resolutions,
            entry.min_depth,
            entry.max_depth,
            protocol=protocol,
            median_scaling=median_scaling,
            scale_factor=scale_factor,
            post_process=post_process,
            batch_size=batch_size,
            progress=report,
        )
        rows += [{"checkpoint": entry.label, **result.summary()} for result in results]
    return rows


def checkpoint_labels(paths: Sequence[str | os.PathLike], configs: Sequence[dict]) -> list[str]:
    """Legend labels: `preset: file stem`, with the parent folder added when stems collide (run1/best...)."""
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    labels = []
    for path, config in zip(paths, configs, strict=True):
        name = f"{path.parent.name}/{path.stem}" if stems.count(path.stem) > 1 else path.stem
        preset = config.get("preset") or config.get("net")
        labels.append(f"{preset}: {name}" if preset else name)
    return labels


def write_sweep(rows: Sequence[dict], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write DIR/sweep.json, DIR/sweep.csv and DIR/sweep.png (atomically); returns their paths."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "sweep.json", "csv": out_dir / "sweep.csv", "png": out_dir / "sweep.png"}
    atomic_write_text(paths["json"], json.dumps(list(rows), indent=2) + "\n")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(paths["csv"], buffer.getvalue())
    plot_sweep(rows, paths["png"])
    return paths


def plot_sweep(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """One figure, a subplot per metric vs resolution, one line per checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    resolutions = list(dict.fromkeys(row["resolution"] for row in rows))
    labels = list(dict.fromkeys(row["checkpoint"] for row in rows))
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    for axis, metric in zip(axes.ravel(), PLOTTED_METRICS, strict=True):
        for label in labels:
            points = {row["resolution"]: row[metric] for row in rows if row["checkpoint"] == label}
            xs = [i for i, res in enumerate(resolutions) if res in points]
            axis.plot(xs, [points[resolutions[i]] for i in xs], marker="o", label=label)
        axis.set_xticks(range(len(resolutions)), resolutions, rotation=30)
        axis.set_title(metric + (" (higher is better)" if metric == "a1" else " (lower is better)"))
        axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    figure.suptitle("Depth metrics vs test resolution")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return Path(path)


def run_sweep(
    checkpoints: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    split: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    resolutions: Sequence[tuple[int, int]] = RESOLUTION_LADDER,
    protocol: str = "kitti-eigen",
    median_scaling: bool | None = None,
    scale_factor: float = 1.0,
    post_process: bool = False,
    batch_size: int = 4,
    ext: str | None = None,
    device: str = "cpu",
    progress: ProgressCallback | None = None,
) -> tuple[list[dict], dict[str, Path]]:
    """`depthcli sweep` as a function: load each checkpoint, sweep it, write the files -> (rows, paths)."""
    from depthcli.nets.loading import load_depth_model

    eval_set = open_eval_set(data, split, protocol, ext)
    loaded = [load_depth_model(path, device) for path in checkpoints]
    labels = checkpoint_labels(checkpoints, [model.config for model in loaded])
    models = [
        SweepModel(label, model.net, model.min_depth, model.max_depth)
        for label, model in zip(labels, loaded, strict=True)
    ]
    rows = sweep_models(
        models, eval_set, resolutions, protocol, median_scaling, scale_factor, post_process, batch_size, progress
    )
    return rows, write_sweep(rows, out_dir)
