"""Result rows out: JSON with provenance (file or stdout), per-image CSV, seed groups, paper-ready rows.

A row is an `EvalResult.summary()` (plus `checkpoint` when several are compared). Groups: several
checkpoints of one recipe (seeds) become one row per resolution with the mean and sample standard
deviation (n - 1) of each metric, as monodepth_benchmark reports the mean over seeds.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depthcli.atomic import atomic_write_text
from depthcli.errors import DepthcliError
from depthcli.evaluation.dense_metrics import CLOUD_METRICS, EDGE_METRICS
from depthcli.evaluation.metrics import METRIC_NAMES

ALL_METRICS = (*METRIC_NAMES, *EDGE_METRICS, *CLOUD_METRICS)
TABLE_FORMATS = ("rich", "markdown", "latex")


def write_json(rows: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """`--json PATH` (atomic) or `--json -` (stdout): a list of rows. Returns the path written, None for stdout."""
    text = json.dumps(list(rows), indent=2) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    atomic_write_text(path, text)
    return Path(path)


def write_per_image_csv(results: Sequence, path: str | os.PathLike) -> Path:
    """`--per-image`: one row per (resolution, image) with every metric and the median-scaling ratio."""
    metrics = [name for name in ALL_METRICS if any(name in result.metrics for result in results)]
    columns = ["resolution", "index", "name", *metrics, "ratio"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for result in results:
        for row in result.per_image:
            writer.writerow({"resolution": result.resolution, **row})
    atomic_write_text(path, buffer.getvalue())
    return Path(path)


def group_rows(rows: Sequence[dict], group: str, members: Sequence[str]) -> list[dict]:
    """Mean ± std over the rows of `members` (their `checkpoint` labels), one row per resolution."""
    if len(members) < 2:
        raise DepthcliError(f"--group {group}: a group needs at least 2 checkpoints (seeds) to give a spread")
    chosen = [row for row in rows if row.get("checkpoint") in members]
    variants = {json.dumps(row["variant"], sort_keys=True) for row in chosen}
    if len(variants) > 1:
        raise DepthcliError(f"--group {group}: its checkpoints were evaluated under different protocol variants")
    grouped = []
    for resolution in dict.fromkeys(row["resolution"] for row in chosen):
        at = [row for row in chosen if row["resolution"] == resolution]
        if len(at) != len(members):
            raise DepthcliError(f"--group {group}: not every checkpoint was evaluated at {resolution}")
        row = {"checkpoint": group, "group": group, "runs": list(members), "resolution": resolution}
        for name in ALL_METRICS:
            values = [member[name] for member in at if name in member]
            if len(values) == len(at):
                row[name] = float(np.mean(values))
                row[f"{name}_std"] = float(np.std(values, ddof=1))
        row |= {"n_images": at[0]["n_images"], "n_runs": len(at), "protocol": at[0]["protocol"]}
        row |= {"variant": at[0]["variant"], "split": at[0]["split"], "gt": at[0]["gt"]}
        grouped.append(row)
    return grouped


def _cell(row: dict, name: str, style: str) -> str:
    value = row.get(name)
    if value is None:
        return "-"
    std = row.get(f"{name}_std")
    if std is None:
        return f"{value:.3f}"
    return f"{value:.3f} $\\pm$ {std:.3f}" if style == "latex" else f"{value:.3f} ± {std:.3f}"


def _latex_escape(text: str) -> str:
    return "".join("\\" + char if char in "_&%#$" else char for char in text)


def format_rows(rows: Sequence[dict], metrics: Sequence[str], labels: Sequence[str], style: str) -> str:
    """Rows for a paper: a Markdown table, or LaTeX `label & m1 & m2 \\\\` lines with a header comment."""
    metrics = [name for name in metrics if any(name in row for row in rows)]
    pairs = list(zip(rows, labels, strict=True))
    if style == "markdown":
        lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
        lines += [f"| {label} | " + " | ".join(_cell(row, m, style) for m in metrics) + " |" for row, label in pairs]
    elif style == "latex":
        lines = [f"% {rows[0]['protocol']}: {json.dumps(rows[0]['variant'])}" if rows else "%"]
        lines.append("% model & " + " & ".join(metrics) + " \\\\")
        lines += [
            f"{_latex_escape(label)} & " + " & ".join(_cell(row, m, style) for m in metrics) + " \\\\"
            for row, label in pairs
        ]
    else:
        raise DepthcliError(f"--format {style!r} is not one of {', '.join(TABLE_FORMATS)}")
    return "\n".join(lines)
