"""Does a KITTI raw download hold what a split needs? And monodepth2's `gt_depths.npz` for a test split.

Needs per list (the standard lists of data/splits, or any split file):
- every list: each date's calibration and each listed frame (PNG or JPEG, of its side's camera);
- train lists: the neighbouring frames -1 and +1 too (self-supervised training reads them);
- val lists and `eigen` test: the velodyne scan (ground truth is projected from it);
- `eigen_benchmark` test: the improved ground-truth PNG (DRIVE/proj_depth/groundtruth/image_02/).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthcli.data import kitti
from depthcli.data.gt_npz import save_gt_depths
from depthcli.data.images import read_depth_png
from depthcli.data.standard_splits import parse_split_name, read_split_argument
from depthcli.errors import DepthcliError

CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt")


@dataclass
class KittiCheck:
    """What a split needs from a root, and what of it is missing (paths relative to the root)."""

    split: str
    entries: int
    needed: Counter = field(default_factory=Counter)  # kind -> files needed
    missing: dict[str, list[str]] = field(default_factory=dict)  # kind -> missing files
    formats: Counter = field(default_factory=Counter)  # image suffix -> frames found

    @property
    def ok(self) -> bool:
        return not any(self.missing.values())

    def missing_by_drive(self) -> Counter:
        """Missing files per drive folder (or date folder, for calibration)."""
        parts = (Path(path).parts for paths in self.missing.values() for path in paths)
        return Counter("/".join(part[:2]) if len(part) > 2 else part[0] for part in parts)


def split_needs(split: str | os.PathLike) -> tuple[str, str]:
    """(part, ground truth) a split argument needs: part in test/train/val/file; GT velodyne/improved/none."""
    parsed = parse_split_name(str(split)) if not Path(split).exists() else None
    if parsed is None:
        return "file", "velodyne"
    name, part = parsed
    if part == "train":
        return part, "none"
    return part, "improved" if name == "eigen_benchmark" else "velodyne"


def improved_gt_path(root: Path, entry: kitti.SplitEntry) -> Path:
    camera = f"image_0{kitti.SIDE_TO_CAMERA[entry.side]}"
    return root / entry.folder / "proj_depth" / "groundtruth" / camera / f"{entry.frame_index:010d}.png"


def check_kitti(root: str | os.PathLike, split: str | os.PathLike) -> KittiCheck:
    """Every file `split` needs under `root`, with what is missing (see the module docstring)."""
    root = kitti.check_kitti_root(root)
    entries, label = read_split_argument(split)
    part, gt = split_needs(split)
    report = KittiCheck(label, len(entries))

    def need(kind: str, path: Path) -> bool:
        report.needed[kind] += 1
        if path.is_file():
            return True
        report.missing.setdefault(kind, []).append(path.relative_to(root).as_posix())
        return False

    for date in sorted({Path(entry.folder).parts[0] for entry in entries}):
        for name in CALIB_FILES:
            need("calibration", root / date / name)
    offsets = (0, -1, 1) if part == "train" else (0,)
    for entry in entries:
        for offset in offsets:
            png = kitti.image_path(root, entry.folder, entry.frame_index + offset, entry.side, "png")
            found = next((path for path in (png, png.with_suffix(".jpg")) if path.is_file()), None)
            need("frames" if offset == 0 else "neighbour frames", found or png)
            if found is not None and offset == 0:
                report.formats[found.suffix[1:]] += 1
        if gt == "velodyne":
            need("velodyne", kitti.velodyne_path(root, entry.folder, entry.frame_index))
        elif gt == "improved":
            need("improved ground truth", improved_gt_path(root, entry))
    return report


def export_gt_depths(
    root: str | os.PathLike,
    split: str | os.PathLike,
    out: str | os.PathLike,
    gt_depth: str = "velo-x",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """monodepth2's `export_gt_depth.py` for a test split: velodyne GT (camera 2, velodyne x by default) for
    `eigen` and split files, improved PNG / 256 for `eigen_benchmark`; saved as `gt_depths.npz`."""
    root = kitti.check_kitti_root(root)
    entries, label = read_split_argument(split)
    part, gt = split_needs(split)
    if gt == "none":
        raise DepthcliError(f"split {label} is a training list; export ground truth for a test or val list")
    if gt_depth not in ("velo-x", "cam-z"):
        raise DepthcliError(f"--gt-depth {gt_depth!r} is not velo-x or cam-z")
    depths = []
    for number, entry in enumerate(entries, start=1):
        if gt == "improved":
            path = improved_gt_path(root, entry)
            if not path.is_file():
                raise DepthcliError(f"{label}: no improved ground truth at {path}; run `depthcli data check` first")
            depths.append(read_depth_png(path, scale=256.0))
        else:
            calib = kitti.calib_dir_of(root, entry.folder)
            velo = kitti.velodyne_path(root, entry.folder, entry.frame_index)
            value = "velo_x" if gt_depth == "velo-x" else "cam_z"
            depths.append(kitti.velodyne_depth_map(calib, velo, cam=2, depth_value=value))
        if progress:
            progress(number, len(entries))
    return save_gt_depths(out, [np.asarray(depth, np.float32) for depth in depths])
