"""Resolution sweep (RA-Depth robustness): each checkpoint at each test resolution, as JSON, CSV and plot.

Several checkpoints overlay in one figure, so monodepth2 vs DIFFNet vs RA-Depth is one picture; seed
groups draw their mean with a ±1 std band; each line marks the resolution its net was trained at.
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
from depthcli.evaluation.eval_sets import open_eval_set
from depthcli.evaluation.evaluate import EvalOptions, ProgressCallback, evaluate_model
from depthcli.evaluation.ground_truth import EvalSet
from depthcli.evaluation.reporting import group_rows
from depthcli.evaluation.selection import eval_selection_warnings
from depthcli.sizes import RESOLUTION_LADDER, format_size

PLOTTED_METRICS = ("abs_rel", "sq_rel", "rmse", "a1")


@dataclass
class SweepModel:
    """A net to sweep, with the depth range its sigmoid disparity maps to, its label and training size."""

    label: str
    model: nn.Module
    min_depth: float
    max_depth: float
    trained_at: str | None = None  # "640x192"
    config: dict | None = None  # the checkpoint's config (honest-selection checks)


def sweep_models(
    models: Sequence[SweepModel],
    eval_set: EvalSet,
    resolutions: Sequence[tuple[int, int]] = RESOLUTION_LADDER,
    options: EvalOptions | None = None,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """One row per (model, resolution): {"checkpoint": label, "trained_at": size, **EvalResult.summary()}.

    `progress(done, total)` counts images over all models.
    """
    rows = []
    total = len(models) * len(eval_set)
    for number, entry in enumerate(models):

        def report(done: int, _: int, offset: int = number * len(eval_set)) -> None:
            if progress:
                progress(offset + done, total)

        results = evaluate_model(
            entry.model, eval_set, resolutions, entry.min_depth, entry.max_depth, options=options, progress=report
        )
        label = {"checkpoint": entry.label, "trained_at": entry.trained_at}
        rows += [label | result.summary() for result in results]
    return rows


def checkpoint_labels(paths: Sequence[str | os.PathLike], configs: Sequence[dict]) -> list[str]:
    """Legend labels: `net: file stem` (the net, e.g. radepth-small, not the recipe), with the parent folder
    added when stems collide (run1/best, run2/best)."""
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    labels = []
    for path, config in zip(paths, configs, strict=True):
        name = f"{path.parent.name}/{path.stem}" if stems.count(path.stem) > 1 else path.stem
        net = config.get("net") or config.get("preset")
        labels.append(f"{net}: {name}" if net else name)
    return labels


def write_sweep(rows: Sequence[dict], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write DIR/sweep.json, DIR/sweep.csv and DIR/sweep.png (atomically); returns their paths."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "sweep.json", "csv": out_dir / "sweep.csv", "png": out_dir / "sweep.png"}
    atomic_write_text(paths["json"], json.dumps(list(rows), indent=2) + "\n")
    flat = [
        {key: json.dumps(value) if isinstance(value, dict | list) else value for key, value in row.items()}
        for row in rows
    ]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(paths["csv"], buffer.getvalue())
    plot_sweep(rows, paths["png"])
    return paths


def plot_sweep(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """One figure, a subplot per metric vs resolution, one line per checkpoint or group.

    Members of a group are not drawn alone: the group's mean is a line with a ±1 std band. A star marks
    the point at the resolution a line's net was trained at (named in the legend too).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    grouped = {run for row in rows if "group" in row for run in row["runs"]}
    drawn = [row for row in rows if row["checkpoint"] not in grouped]
    resolutions = list(dict.fromkeys(row["resolution"] for row in rows))
    labels = list(dict.fromkeys(row["checkpoint"] for row in drawn))
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    for axis, metric in zip(axes.ravel(), PLOTTED_METRICS, strict=True):
        for label in labels:
            line_rows = {row["resolution"]: row for row in drawn if row["checkpoint"] == label}
            xs = [i for i, res in enumerate(resolutions) if res in line_rows]
            ys = [line_rows[resolutions[i]][metric] for i in xs]
            trained = _trained_at(rows, label)
            runs = next((len(row["runs"]) for row in drawn if row.get("group") == label), 0)
            notes = ([f"mean ± std of {runs}"] if runs else []) + ([f"trained {trained}"] if trained else [])
            legend = f"{label} ({'; '.join(notes)})" if notes else label
            (line,) = axis.plot(xs, ys, marker="o", label=legend)
            stds = [line_rows[resolutions[i]].get(f"{metric}_std") for i in xs]
            if all(std is not None for std in stds) and stds:
                low = [y - s for y, s in zip(ys, stds, strict=True)]
                high = [y + s for y, s in zip(ys, stds, strict=True)]
                axis.fill_between(xs, low, high, color=line.get_color(), alpha=0.2)
            if trained in resolutions and resolutions.index(trained) in xs:
                at = resolutions.index(trained)
                axis.plot([at], [line_rows[trained][metric]], marker="*", markersize=16, color=line.get_color())
        axis.set_xticks(range(len(resolutions)), resolutions, rotation=30)
        axis.set_title(metric + (" (higher is better)" if metric == "a1" else " (lower is better)"))
        axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    protocols = sorted({row["protocol"] for row in rows})
    figure.suptitle(f"Depth metrics vs test resolution ({'; '.join(protocols)}); ★ = training resolution")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return Path(path)


def _trained_at(rows: Sequence[dict], label: str) -> str | None:
    """The training size of a line: its checkpoint's, or the common one of a group's runs."""
    for row in rows:
        if row["checkpoint"] == label and row.get("trained_at"):
            return row["trained_at"]
    runs = next((row["runs"] for row in rows if row.get("group") == label), [])
    sizes = {row.get("trained_at") for row in rows if row["checkpoint"] in runs}
    return sizes.pop() if len(sizes) == 1 else None


def load_sweep_models(checkpoints: Sequence[str | os.PathLike], device: str) -> list[SweepModel]:
    """Each checkpoint as a SweepModel (label by net, depth range and training size from its config)."""
    from depthcli.nets.loading import load_depth_model

    loaded = [load_depth_model(path, device) for path in checkpoints]
    labels = checkpoint_labels(checkpoints, [model.config for model in loaded])
    return [
        SweepModel(label, model.net, model.min_depth, model.max_depth, format_size(model.size), model.config)
        for label, model in zip(labels, loaded, strict=True)
    ]


def run_sweep(
    checkpoints: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    split: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    resolutions: Sequence[tuple[int, int]] = RESOLUTION_LADDER,
    options: EvalOptions | None = None,
    device: str = "cpu",
    groups: dict[str, Sequence[int]] | None = None,
    progress: ProgressCallback | None = None,
    extra: dict | None = None,
) -> tuple[list[dict], dict[str, Path]]:
    """`depthcli sweep` as a function: load each checkpoint, sweep it, write the files -> (rows, paths).

    `groups` maps a group name to the positions of its checkpoints (seeds of one recipe) in
    `checkpoints`; each group adds mean ± std rows. `extra` is merged into every row (provenance).
    """
    options = options or EvalOptions()
    eval_set = open_eval_set(data, split, options.protocol, options.frames)
    models = load_sweep_models(checkpoints, device)
    rows = sweep_models(models, eval_set, resolutions, options, progress)
    warnings = {
        model.label: eval_selection_warnings(model.config or {}, eval_set.drives, options.protocol.dataset)
        for model in models
    }
    rows = [row | {"selection_warnings": warnings[row["checkpoint"]]} for row in rows]
    for name, members in (groups or {}).items():
        rows += group_rows(rows, name, [models[i].label for i in members])
    rows = [row | (extra or {}) for row in rows]
    return rows, write_sweep(rows, out_dir)
