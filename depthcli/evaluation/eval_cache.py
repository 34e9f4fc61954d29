"""Evaluation sets from a full-size eval cache (`depthcli cache build` without `--size`; `depthcli.data.cache_file`).

KITTI caches hold their split and velodyne GT (built with velodyne x or camera z: the protocol's
`gt_depth` must match); NYU caches hold every frame with its dense depth and a table per split.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np

from depthcli.data.cache_file import open_cache, read_entry, reopen_cache
from depthcli.errors import DepthcliError
from depthcli.evaluation.ground_truth import EvalSet, intrinsics_from_normalised, read_index_list
from depthcli.evaluation.protocols import Protocol


class _CacheReader:
    """Lazy HDF5 reader: the handle opens on first use, never before, so an EvalSet can cross a fork unopened."""

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


def _check_kitti_protocol(path: Path, attrs: dict, protocol: Protocol) -> None:
    if protocol.dataset != "kitti":
        raise DepthcliError(f"cache {path} holds KITTI; protocol {protocol.name} needs a NYU source")
    if protocol.gt != "velodyne":
        raise DepthcliError(f"cache {path} holds velodyne GT; --gt {protocol.gt} needs the raw KITTI root")
    built_with = "velo-x" if attrs.get("depth_value", "velo_x") == "velo_x" else "cam-z"
    if built_with != protocol.gt_depth:
        raise DepthcliError(
            f"cache {path} stores velodyne GT as {built_with}, the protocol asks for {protocol.gt_depth}; "
            "rebuild the cache with the other depth value or evaluate the raw root"
        )


def cache_eval_set(path: str | os.PathLike, split: str | os.PathLike | None, protocol: Protocol) -> EvalSet:
    """Images + GT from an eval cache built at full size.

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
            folders = list(handle["samples/folder"].asstr()[()])
            names = [
                f"{folder} {frame} {side}"
                for folder, frame, side in zip(
                    folders, handle["samples/frame_index"][()], handle["samples/side"].asstr()[()], strict=True
                )
            ]
            frame_ids = handle["samples/frames"][:, 0]
            gt_hw = handle["samples/gt_hw"][()]
            k_norm = handle["samples/K"][()]
        else:
            n_frames = handle["frames/rgb"].shape[0]
            tables = {name: handle["split"][name][()] for name in handle.get("split", {})}
    reader = _CacheReader(path)
    used = {f"cache ({attrs.get('ext', 'nyu')})"}
    if dataset == "kitti":
        _check_kitti_protocol(path, attrs, protocol)
        if split is not None and not Path(split).is_file():
            raise DepthcliError(f"split file {split} does not exist")
        if split is not None and hashlib.sha256(Path(split).read_bytes()).hexdigest() != attrs.get("split_sha256"):
            raise DepthcliError(
                f"cache {path} was built from {attrs.get('split_file')}, not from {split}; rebuild it or drop --split"
            )

        def load_gt(i: int) -> np.ndarray:
            return read_entry(reader.file(), path, "samples/depth_gt", i, gt_hw[i])

        return EvalSet(
            names, str(path), load_gt, lambda i: reader.frame(int(frame_ids[i])),
            intrinsics=lambda i: intrinsics_from_normalised(k_norm[i], tuple(gt_hw[i])),
            drives=tuple(sorted(set(folders))), gt_source=f"velodyne ({protocol.gt_depth}) in cache {path}",
            frames_read=used,
        )  # fmt: skip
    if protocol.dataset != "nyu":
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

    return EvalSet(
        [f"nyu {i}" for i in indices], where, load_depth, lambda i: reader.frame(indices[i]),
        intrinsics=lambda i: intrinsics_from_normalised(attrs["K"], tuple(reader.file()["frames/hw"][indices[i]])),
        gt_source=f"NYU depth in cache {path}", frames_read=used, dense_gt=True,
    )  # fmt: skip
