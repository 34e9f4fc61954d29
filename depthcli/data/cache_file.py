"""Reading a dataset cache file: open it, describe it, verify it against its checksums.

The layout is described in `depthcli.data.cache`, which builds these files; the checksums a build
writes (`entry_crc`, `content_checksum`) are defined here, next to the checks that read them back.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import h5py
import numpy as np

from depthcli.errors import DepthcliError

FORMAT = "depthcli-cache"
FORMAT_VERSION = 1


def entry_crc(*arrays: np.ndarray) -> int:
    """CRC-32 over the bytes of `arrays`: the checksum stored for each cache entry."""
    value = 0
    for array in arrays:
        value = zlib.crc32(np.ascontiguousarray(array).data, value)
    return value


def entry_groups(handle: h5py.File) -> list[tuple[str, list[str], str, str]]:
    """(label, data datasets, crc dataset, done dataset) for each kind of entry in the file."""
    groups = [
        (
            "frame",
            ["frames/rgb"] + (["frames/depth"] if "frames/depth" in handle else []),
            "frames/crc32",
            "frames/done",
        )
    ]
    if "samples/depth_gt" in handle:
        groups.append(("depth_gt of sample", ["samples/depth_gt"], "samples/gt_crc32", "samples/gt_done"))
    return groups


def content_checksum(handle: h5py.File) -> str:
    """sha256 over every entry checksum and the sample tables: one number that says 'this content'."""
    digest = hashlib.sha256()
    names = [crc for _, _, crc, _ in entry_groups(handle)]
    names += sorted(f"samples/{k}" for k in ("frames", "K", "frame_index") if f"samples/{k}" in handle)
    names += sorted(f"split/{k}" for k in handle.get("split", {}))
    for name in names:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(handle[name][()]).tobytes())
    return digest.hexdigest()


def open_cache(path: str | os.PathLike) -> h5py.File:
    """Open a depthcli cache read-only, or a one-line error for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise DepthcliError(f"cache {path} does not exist; build it with `depthcli cache build`")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DepthcliError(f"cache {path} cannot be opened ({exc}); it is truncated or not HDF5: rebuild it") from None
    if handle.attrs.get("format") != FORMAT:
        handle.close()
        raise DepthcliError(f"{path} is an HDF5 file but not a depthcli cache")
    return handle


def cache_info(path: str | os.PathLike) -> dict:
    """The cache's attributes plus counts and file size (what `depthcli cache info` prints)."""
    with open_cache(path) as handle:
        info = {key: _plain(value) for key, value in handle.attrs.items() if key not in ("build_params", "K")}
        info["frames"] = int(handle["frames/rgb"].shape[0])
        info["samples"] = int(handle["samples/frames"].shape[0]) if "samples/frames" in handle else info["frames"]
        info["has_depth_gt"] = "samples/depth_gt" in handle or "frames/depth" in handle
        if "split" in handle:
            info["splits"] = {name: int(handle["split"][name].shape[0]) for name in handle["split"]}
    info["file_bytes"] = Path(path).stat().st_size
    return info


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def verify_cache(path: str | os.PathLike) -> list[str]:
    """Re-read every entry and compare it with its checksum; returns the problems (empty = cache OK)."""
    path = Path(path)
    try:
        handle = open_cache(path)
    except DepthcliError as exc:
        return [str(exc)]
    problems = []
    with handle:
        if not handle.attrs.get("complete"):
            problems.append(f"{path}: build did not complete (complete flag not set); rerun `depthcli cache build`")
        for label, data_names, crc_name, done_name in entry_groups(handle):
            crcs, done = handle[crc_name][()], handle[done_name][()]
            sources = handle["frames/source"].asstr()[()] if label == "frame" else _sample_names(handle)
            for i in range(len(crcs)):
                name = f"{label} {i} ({sources[i]})"
                if not done[i]:
                    problems.append(f"{name}: never written")
                    continue
                try:
                    actual = entry_crc(*(handle[data][i] for data in data_names))
                except Exception as exc:  # unreadable chunk: a cut file or mangled compressed data
                    problems.append(f"{name}: unreadable ({type(exc).__name__}: {exc})")
                    continue
                if actual != crcs[i]:
                    problems.append(f"{name}: content does not match its checksum (corrupted)")
        if handle.attrs.get("complete") and handle.attrs.get("checksum") != content_checksum(handle):
            problems.append(f"{path}: content checksum does not match the tables (tables corrupted)")
    return problems


def _sample_names(handle: h5py.File) -> list[str]:
    folders = handle["samples/folder"].asstr()[()]
    frames = handle["samples/frame_index"][()]
    sides = handle["samples/side"].asstr()[()]
    return [f"{f} {n} {s}" for f, n, s in zip(folders, frames, sides, strict=True)]
