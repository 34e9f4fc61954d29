"""One table from the JSON files `run_gpu.sh` collects (losses.json, train.json, predict.json in a folder).

python benchmarks/gpu_table.py DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(folder: Path, name: str):
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else None


def table_rows(folder: Path) -> list[tuple[str, str, str, str]]:
    """(section, what, value, compared with) rows for every result file present in `folder`."""
    rows = []
    for row in _load(folder, "losses.json") or []:
        what = f"photometric {row['case']} {row['size']} fwd+bwd"
        reference = f"PyTorch reference {row['reference_ms']:.2f} ms"
        if row.get("kernel_ms") is None:
            rows.append(("loss kernel", what, "no kernel here", reference))
            continue
        memory = ""
        if row.get("kernel_mib") is not None:
            memory = f", {row['kernel_mib']:.0f} vs {row['reference_mib']:.0f} MiB"
        value = f"{row['kernel_ms']:.2f} ms ({row['reference_ms'] / row['kernel_ms']:.2f}x{memory})"
        rows.append(("loss kernel", what, value, reference))
    train = _load(folder, "train.json")
    for row in train["rows"] if train else []:
        value = f"{row['samples_per_s']:.1f} samples/s"
        if row["side"] != row["baseline"]:
            value += f" ({row['speedup_median']:.2f}x)"
        rows.append(("training", f"{row['preset']}: {row['side']}", value, row["baseline"]))
    predict = _load(folder, "predict.json")
    for row in predict["rows"] if predict else []:
        value = f"{row['images_per_s']:.1f} images/s ({row['speedup_median']:.2f}x)"
        rows.append(("inference", f"{row['side']} (batch {predict['batch_size']})", value, ""))
    if predict:
        rows.append(("inference", "max |disparity| bf16 vs fp32", f"{predict['saved_bf16_vs_fp32']:.1e}", "<= 1e-2"))
    return rows


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    for name in ("train.json", "predict.json"):
        data = _load(folder, name)
        if data:
            print(f"machine: {data['machine']}")
            break
    rows = table_rows(folder)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("section", "what", "result", "compared with")
    widths = [max(width, len(title)) for width, title in zip(widths, header, strict=True)]
    for row in [header, tuple("-" * width for width in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
