"""Evaluation sets: ground truth (and images, for checkpoints) of a split, loaded lazily per image.

Sources:
- KITTI raw root + split file: ``kitti-eigen`` GT is projected from velodyne (Eigen quirk, GUIDE 4);
  ``kitti-benchmark`` GT is read from the improved 16-bit PNGs placed inside each drive folder as
  ``ROOT/DATE/DATE_drive_XXXX_sync/proj_depth/groundtruth/image_02/%010d.png`` (``image_03`` for side
  r), which is where monodepth2's ``export_gt_depth.py`` looks for them (unpack KITTI's
  ``data_depth_annotated`` drives into the raw drive folders).
- NYU (``nyu``): any layout ``depthcli.data.nyu.open_nyu`` reads (labelled ``.mat`` + ``splits.mat``,
  sparse-to-dense ``.h5`` frames, PNG pairs). Default images: the layout's test split (for the labelled
  ``.mat``: the 654 ``testNdxs`` of ``splits.mat``, in index order). ``--split`` may name another
  ``splits.mat`` (its ``testNdxs``) or a text file of zero-based image indices, one per line.
- An eval cache (``.h5`` from ``depthcli cache build`` without ``--size``): images + GT in split order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from depthcli.data import kitti, nyu
from depthcli.data.cache_format import open_cache, read_entry, reopen_cache
from depthcli.data.images import read_depth_png, read_rgb
from depthcli.errors import DepthcliError


@dataclass
class EvalSet:
    """The images to score, in split order: a name per image and lazy loaders for GT and RGB.

    Lazy, because KITTI's 697 GT maps are 1.3 GB at full size and each is needed once per pass.
    """

    names: list[str]
    source: str  # the split file or cache, for error messages
    load_gt: Callable[[int], np.ndarray]  # index -> (H,W) float32 metres, 0 = invalid
    load_image: Callable[[int], np.ndarray] | None = None  # index -> uint8 HxWx3 RGB

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_arrays(cls, gt_depths: Sequence[np.ndarray], source: str = "ground truth") -> EvalSet:
        """GT maps already in memory (no images): for scoring predictions from Python."""
        return cls([f"image {i}" for i in range(len(gt_depths))], source, lambda i: gt_depths[i])


def _entry_name(entry: kitti.SplitEntry) -> str:
    return f"{entry.folder} {entry.frame_index} {entry.side}"


def _kitti_image_loader(root: Path, entries: list[kitti.SplitEntry], ext: str | None) -> Callable[[int], np.ndarray]:
    """RGB of an entry; with `ext=None` PNG is preferred and JPEG accepted (users often convert)."""

    def load(index: int) -> np.ndarray:
        entry = entries[index]
        path = kitti.image_path(root, entry.folder, entry.frame_index, entry.side, ext or "png")
        if ext is None and not path.is_file():
            jpeg = path.with_suffix(".jpg")
            path = jpeg if jpeg.is_file() else path
        return read_rgb(path)

    return load


def benchmark_gt_path(root: str | os.PathLike, entry: kitti.SplitEntry) -> Path:
    """Where kitti-benchmark GT lives for a split entry (see the module docstring)."""
    camera = f"image_0{kitti.SIDE_TO_CAMERA[entry.side]}"
    return Path(root) / entry.folder / "proj_depth" / "groundtruth" / camera / f"{entry.frame_index:010d}.png"


def kitti_eval_set(
    root: str | os.PathLike, split: str | os.PathLike, protocol: str = "kitti-eigen", ext: str | None = None
) -> EvalSet:
    """A KITTI raw root + split file. Every GT file is checked up front, so that a split line without
    velodyne (or benchmark PNG) fails at once with its line number instead of after an hour of inference."""
    root = kitti.check_kitti_root(root)
    entries = kitti.read_split(split)
    if protocol == "kitti-benchmark":
        gt_paths = [benchmark_gt_path(root, entry) for entry in entries]
        what = "improved ground-truth PNG (kitti-benchmark layout: DRIVE/proj_depth/groundtruth/image_02/)"
    else:
        gt_paths = [kitti.velodyne_path(root, entry.folder, entry.frame_index) for entry in entries]
        what = "velodyne scan (kitti-eigen GT is projected from velodyne_points)"
    for entry, path in zip(entries, gt_paths, strict=True):
        if not path.is_file():
            raise DepthcliError(
                f"split {split} line {entry.line} ({_entry_name(entry)}): no {what} at {path}; "
                "remove the line or add the file"
            )

    def load_gt(index: int) -> np.ndarray:
        entry = entries[index]
        if protocol == "kitti-benchmark":
            return read_depth_png(gt_paths[index], scale=256.0)
        return kitti.velodyne_depth_map(
            kitti.calib_dir_of(root, entry.folder), gt_paths[index], cam=kitti.SIDE_TO_CAMERA[entry.side]
        )

    return EvalSet(
        names=[_entry_name(entry) for entry in entries],
        source=str(split),
        load_gt=load_gt,
        load_image=_kitti_image_loader(root, entries, ext),
    )


def read_index_list(path: str | os.PathLike, length: int) -> np.ndarray:
    """NYU image selection: a ``splits.mat`` (its test indices) or a text file of zero-based indices."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return nyu.read_nyu_splits(path, length)["test"]
    lines = kitti.read_split_lines(path)
    indices = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit() or int(text) >= length:
            raise DepthcliError(
                f"split file {path} line {number}: {text!r} is not a zero-based image index below {length}"
            )
        indices.append(int(text))
    if not indices:
        raise DepthcliError(f"split file {path} has no entries")
    return np.asarray(indices, dtype=np.int64)


def nyu_eval_set(root: str | os.PathLike, split: str | os.PathLike | None = None) -> EvalSet:
    """NYU frames to score: `split` (see `read_index_list`) or the layout's own test split."""
    source = nyu.open_nyu(root)
    if split is not None:
        indices, where = read_index_list(split, len(source)), str(split)
    elif "test" in source.splits:
        indices, where = source.splits["test"], f"{root} (test split)"
    else:
        raise DepthcliError(
            f"{root} defines no test split (no splits.mat beside the labelled .mat, no test/ or val/ folder); "
            "pass --split"
        )
    if len(indices) == 0:
        raise DepthcliError(f"{where} selects no images")
    indices = [int(i) for i in indices]
    return EvalSet(
        names=[f"nyu {index}" for index in indices],
        source=where,
        load_gt=lambda i: source[indices[i]][1],
        load_image=lambda i: source[indices[i]][0],
    )


class _CacheReader:
    """Lazy reader of a full-size eval cache (layout in `depthcli.data.cache_format`).

    The HDF5 handle opens on first use, never before, so an EvalSet can cross a fork unopened.
    """

    def __init__(self, path: Path):
        self.path = path
        self._handle: h5py.File | None = None

    def file(self) -> h5py.File:
        if self._handle is None:
            self._handle = reopen_cache(self.path)
        return self._handle

    def frame(self, index: int) -> np.ndarray:
        return read_entry(self.file(), self.path, "frames/rgb", index, self.file()["frames/hw"][index])


def is_cache(data: str | os.PathLike) -> bool:
    return Path(data).is_file() and Path(data).suffix.lower() in (".h5", ".hdf5")


def cache_eval_set(path: str | os.PathLike, split: str | os.PathLike | None, protocol: str) -> EvalSet:
    """Images + GT from an eval cache built at full size (`depthcli cache build` without --size).

    KITTI caches hold their split: `split` may be omitted, else it must be the file the cache was built
    from (same content). NYU caches use their `test` split, or `split` as for `nyu_eval_set`.
    """
    path = Path(path)
    with open_cache(path) as handle:  # checked: version, checksum over every table used below, layout
        attrs = dict(handle.attrs)
        dataset, mode = attrs.get("dataset"), attrs.get("mode")
        if mode != "eval":
            raise DepthcliError(
                f"cache {path} was built at {attrs.get('size')}; eval needs a full-size cache (no --size)"
            )
        if dataset == "kitti":
            names = [
                f"{folder} {frame} {side}"
                for folder, frame, side in zip(
                    handle["samples/folder"].asstr()[()],
                    handle["samples/frame_index"][()],
                    handle["samples/side"].asstr()[()],
                    strict=True,
                )
            ]
            frame_ids = handle["samples/frames"][:, 0]
            gt_hw = handle["samples/gt_hw"][()]
        else:
            n_frames = handle["frames/rgb"].shape[0]
            tables = {name: handle["split"][name][()] for name in handle.get("split", {})}
    reader = _CacheReader(path)
    if dataset == "kitti":
        if protocol == "nyu":
            raise DepthcliError(f"cache {path} holds KITTI; protocol nyu needs a NYU source")
        if protocol == "kitti-benchmark":
            raise DepthcliError(
                f"cache {path} holds velodyne GT; kitti-benchmark needs the raw root with proj_depth PNGs"
            )
        if split is not None and not Path(split).is_file():
            raise DepthcliError(f"split file {split} does not exist")
        if split is not None and hashlib.sha256(Path(split).read_bytes()).hexdigest() != attrs.get("split_sha256"):
            raise DepthcliError(
                f"cache {path} was built from {attrs.get('split_file')}, not from {split}; rebuild it or drop --split"
            )

        def load_gt(i: int) -> np.ndarray:
            return read_entry(reader.file(), path, "samples/depth_gt", i, gt_hw[i])

        return EvalSet(names, str(path), load_gt, lambda i: reader.frame(int(frame_ids[i])))
    if protocol != "nyu":
        raise DepthcliError(f"cache {path} holds {dataset}; use --protocol nyu")
    if split is not None:
        indices, where = read_index_list(split, n_frames), str(split)
    elif "test" in tables:
        indices, where = tables["test"], f"{path} (test split)"
    else:
        raise DepthcliError(f"cache {path} has no test split; pass --split")
    indices = [int(i) for i in indices]

    def load_depth(i: int) -> np.ndarray:
        frame = indices[i]
        return read_entry(reader.file(), path, "frames/depth", frame, reader.file()["frames/hw"][frame])

    return EvalSet([f"nyu {i}" for i in indices], where, load_depth, lambda i: reader.frame(indices[i]))


def open_eval_set(
    data: str | os.PathLike, split: str | os.PathLike | None, protocol: str, ext: str | None = None
) -> EvalSet:
    """The evaluation set for `protocol` from a raw dataset root (KITTI / NYU) or an eval cache."""
    if is_cache(data):
        return cache_eval_set(data, split, protocol)
    if protocol == "nyu":
        return nyu_eval_set(data, split)
    if split is None:
        raise DepthcliError(f"protocol {protocol} needs --split (e.g. eigen test_files.txt)")
    return kitti_eval_set(data, split, protocol, ext)
