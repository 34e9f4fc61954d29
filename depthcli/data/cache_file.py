"""The cache file format (version 2), and the one way to read a cache: checked first, then trusted.

Layout:
- `frames/rgb` (F, H, W, 3) uint8, one chunk per image; `frames/hw` (F, 2) each frame's real size
  (full-size KITTI caches pad to the largest date's size, because image sizes differ per date);
  `frames/source` paths; `frames/crc32` one checksum per entry; `frames/done` per-entry progress.
  NYU adds `frames/depth` (F, H, W) float32 in metres.
- KITTI: each unique frame is stored once; `samples/frames` (S, len(offsets)) indexes it for the
  offsets in its `offsets` attribute (0, -1, +1 for training caches, 0 for eval caches);
  `samples/K` normalised intrinsics; `samples/folder|frame_index|side` the split entries;
  eval (full-size) caches add `samples/depth_gt` (velodyne ground truth, lzf-compressed) with its
  own `gt_hw` / `gt_crc32` / `gt_done`.
- NYU: `split/<name>` index arrays into the frames; the normalised Kinect intrinsics in attribute `K`.
- Root attributes: format, format_version, dataset, source_root, split_name, size, mode, skipped,
  build_params, checksum, complete. Text tables (`frames/source`, `samples/folder|side`) are
  fixed-length UTF-8.

Integrity: each entry (image, depth map) has a crc32; the root `checksum` is a sha256 over everything
else a reader trusts: every root and dataset attribute, every table (sizes, names, indices,
intrinsics, the crc32 tables themselves) and the shape and type of the entry datasets. `open_cache`
compares it before any reader sees the file, and checks the layout, so that a damaged file is one
line naming it, never a traceback or silently wrong sizes. `verify_cache` also re-reads every entry.
Version 1 caches (whose checksum left `frames/hw`, `gt_hw`, names and attributes out) are refused
with a message to rebuild them.

The HDF5 encoding is chosen for damage too: HDF5 1.8 object headers (checksummed by the library, so
attributes cannot be misread) and text tables as fixed-length UTF-8 (variable-length strings keep
unchecked descriptors in HDF5's global heap; fuzzing found one that crashed the library).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import h5py
import numpy as np

from depthcli.errors import DepthcliError
from depthcli.paths import check_input_file

FORMAT = "depthcli-cache"
FORMAT_VERSION = 2
DATASETS = ("kitti", "nyu")
MODES = ("train", "eval")
# The per-entry data: covered by the crc32 tables (too large to hash whenever a cache is opened).
ENTRY_DATASETS = frozenset({"frames/rgb", "frames/depth", "samples/depth_gt"})
_REBUILD = "rebuild it with `depthcli cache build`"


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


def _hash_value(digest, value) -> None:
    if isinstance(value, str):
        digest.update(b"s" + value.encode("utf-8"))
        return
    if isinstance(value, bytes):
        digest.update(b"b" + value)
        return
    array = np.asarray(value)
    if array.dtype.kind in "OUS":
        digest.update(b"o" + repr(array.tolist()).encode("utf-8"))
    else:
        digest.update(f"{array.dtype.str}{array.shape}".encode() + np.ascontiguousarray(array).tobytes())


def _hash_attrs(digest, attrs, skip: tuple[str, ...] = ()) -> None:
    for key in sorted(attrs):
        if key not in skip:
            digest.update(f"\0attr {key}\0".encode())
            _hash_value(digest, attrs[key])


def content_checksum(handle: h5py.File) -> str:
    """sha256 over root attributes (but `checksum`), every object's name, type and attributes, every
    table's contents, and the shape and type of the entry datasets (see the module docstring)."""
    digest = hashlib.sha256()
    _hash_attrs(digest, handle.attrs, skip=("checksum",))
    names: list[str] = []
    handle.visit(names.append)
    for name in sorted(names):
        item = handle[name]
        digest.update(f"\0object {name} {type(item).__name__}\0".encode())
        _hash_attrs(digest, item.attrs)
        if isinstance(item, h5py.Dataset):
            digest.update(f"{item.dtype.str}{item.shape}".encode())
            if name in ENTRY_DATASETS:
                continue
            if h5py.check_string_dtype(item.dtype) is not None:
                _hash_value(digest, "\0".join(np.atleast_1d(item.asstr()[()]).tolist()))
            else:
                _hash_value(digest, item[()])
    return digest.hexdigest()


def open_cache(path: str | os.PathLike, require_complete: bool = True) -> h5py.File:
    """Open a depthcli cache read-only after checking its version, checksum and layout.

    Every way the file can be wrong (missing, not a regular file, truncated, foreign, older format,
    unfinished build, damaged metadata) is one DepthcliError naming it. `require_complete=False` lets
    `info` and `verify` describe an unfinished build's `.partial` file (no checksum exists yet).
    """
    path = check_input_file(path, "cache", "build it with `depthcli cache build`")
    try:
        handle = h5py.File(path, "r")
    except Exception as exc:  # h5py reports truncated and foreign files as OSError, some damage otherwise
        raise DepthcliError(
            f"cache {path} cannot be opened ({_reason(exc)}); it is truncated or not HDF5: {_REBUILD}"
        ) from None
    try:
        _check_cache(handle, path, require_complete)
    except DepthcliError:
        handle.close()
        raise
    except Exception as exc:  # damaged HDF5 metadata surfaces as KeyError, OSError, RuntimeError, UnicodeError...
        handle.close()
        raise DepthcliError(f"cache {path} is damaged ({_reason(exc)}); {_REBUILD}") from None
    return handle


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _check_cache(handle: h5py.File, path: Path, require_complete: bool) -> None:
    if handle.attrs.get("format") != FORMAT:
        raise DepthcliError(f"{path} is an HDF5 file but not a depthcli cache")
    version = handle.attrs.get("format_version")
    if version != FORMAT_VERSION:
        if isinstance(version, (int, np.integer)) and 0 < version < FORMAT_VERSION:
            raise DepthcliError(
                f"cache {path} has format version {version}, from an older depthcli whose checksum did not cover "
                f"sizes, names and attributes; {_REBUILD} (same arguments)"
            )
        raise DepthcliError(
            f"cache {path} has format version {version!r}; this depthcli reads version {FORMAT_VERSION}: "
            f"use a newer depthcli or {_REBUILD}"
        )
    complete = handle.attrs.get("complete")
    if not isinstance(complete, (bool, np.bool_)):
        raise DepthcliError(f"cache {path} has no valid 'complete' flag (damaged); {_REBUILD}")
    if require_complete and not complete:
        raise DepthcliError(f"cache {path} is incomplete (its build did not finish); rerun `depthcli cache build`")
    if complete and handle.attrs.get("checksum") != content_checksum(handle):
        raise DepthcliError(
            f"cache {path}: its sizes, names, indices or attributes do not match its checksum (damaged); {_REBUILD}"
        )
    _check_layout(handle, path)


def _dataset(handle: h5py.File, path: Path, name: str, shape: tuple, kinds: str) -> np.ndarray | h5py.Dataset:
    """The dataset `name` if it has `shape` (None = any length) and a dtype kind in `kinds` ("T" = text)."""
    link = handle.get(name, getlink=True)
    item = handle.get(name) if isinstance(link, h5py.HardLink) else None
    is_text = isinstance(item, h5py.Dataset) and h5py.check_string_dtype(item.dtype) is not None
    if (
        not isinstance(item, h5py.Dataset)
        or len(item.shape) != len(shape)
        or any(want is not None and want != have for want, have in zip(shape, item.shape, strict=True))
        or not (("T" in kinds and is_text) or (not is_text and item.dtype.kind in kinds))
    ):
        found = f"{item.dtype} {item.shape}" if isinstance(item, h5py.Dataset) else "missing"
        raise DepthcliError(
            f"cache {path}: dataset {name} is {found}, expected shape {tuple('N' if n is None else n for n in shape)}; "
            f"the file is damaged or not from this depthcli: {_REBUILD}"
        )
    return item


def _check_range(path: Path, name: str, values: np.ndarray, low, high) -> None:
    """Every value in [low, high] (`high` broadcasts against the last axis)."""
    if values.size and (np.any(values < low) or np.any(values > high)):
        raise DepthcliError(f"cache {path}: {name} holds values outside {low}..{high} (damaged); {_REBUILD}")


def _check_layout(handle: h5py.File, path: Path) -> None:
    """Every table a reader indexes with exists, has matching lengths, and stays within its dataset."""
    for key, allowed in (("dataset", DATASETS), ("mode", MODES)):
        if handle.attrs.get(key) not in allowed:
            raise DepthcliError(f"cache {path}: attribute {key!r} is not one of {', '.join(allowed)}; {_REBUILD}")
    rgb = _dataset(handle, path, "frames/rgb", (None, None, None, 3), "u")
    n_frames, height, width, _ = rgb.shape
    _check_range(path, "frames/hw", _dataset(handle, path, "frames/hw", (n_frames, 2), "iu")[()], 1, (height, width))
    _dataset(handle, path, "frames/source", (n_frames,), "T")
    for name in ("frames/crc32", "frames/done"):
        _dataset(handle, path, name, (n_frames,), "iub")
    if handle.attrs["dataset"] == "nyu":
        _dataset(handle, path, "frames/depth", (n_frames, height, width), "f")
        if "split" not in handle or not isinstance(handle["split"], h5py.Group):
            raise DepthcliError(f"cache {path} has no split group (damaged); {_REBUILD}")
        for name in handle["split"]:
            indices = _dataset(handle, path, f"split/{name}", (None,), "iu")[()]
            _check_range(path, f"split/{name}", indices, 0, n_frames - 1)
        if np.shape(handle.attrs.get("K")) != (4, 4):
            raise DepthcliError(f"cache {path}: attribute K is not a 4x4 matrix (damaged); {_REBUILD}")
        return
    table = _dataset(handle, path, "samples/frames", (None, None), "iu")
    offsets = np.asarray(table.attrs.get("offsets", []))
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) != table.shape[1] or 0 not in offsets:
        raise DepthcliError(f"cache {path}: samples/frames has no valid 'offsets' attribute (damaged); {_REBUILD}")
    _check_range(path, "samples/frames", table[()], 0, n_frames - 1)
    n_samples = table.shape[0]
    _dataset(handle, path, "samples/K", (n_samples, 4, 4), "f")
    for name, kinds in (("samples/folder", "T"), ("samples/frame_index", "iu"), ("samples/side", "T")):
        _dataset(handle, path, name, (n_samples,), kinds)
    if "samples/depth_gt" in handle:
        gt = _dataset(handle, path, "samples/depth_gt", (n_samples, None, None), "f")
        gt_hw = _dataset(handle, path, "samples/gt_hw", (n_samples, 2), "iu")[()]
        _check_range(path, "samples/gt_hw", gt_hw, 1, gt.shape[1:])
        for name in ("samples/gt_crc32", "samples/gt_done"):
            _dataset(handle, path, name, (n_samples,), "iub")


def reopen_cache(path: str | os.PathLike) -> h5py.File:
    """A reader's own handle on a cache `open_cache` already checked (e.g. in a DataLoader worker).

    The file may have been cut or replaced since: failing to open it is one line, not an h5py traceback.
    """
    try:
        return h5py.File(path, "r")
    except Exception as exc:
        raise DepthcliError(
            f"cache {path} cannot be opened any more ({_reason(exc)}); was it replaced or cut while in use? "
            f"Run `depthcli cache verify {path}`"
        ) from None


def read_entry(handle: h5py.File, path: str | os.PathLike, name: str, index: int, hw=None) -> np.ndarray:
    """Entry `index` of the entry dataset `name`, cropped to `hw` = (height, width) when given.

    A chunk that cannot be decoded (a damaged or cut file) is one line naming the file and the entry.
    """
    try:
        dataset = handle[name]
        return dataset[index] if hw is None else dataset[index, : int(hw[0]), : int(hw[1])]
    except Exception as exc:  # h5py raises OSError, RuntimeError or ValueError for damaged chunks
        raise DepthcliError(
            f"cache {path}: {name} entry {index} cannot be read ({_reason(exc)}); the file is damaged: "
            f"run `depthcli cache verify {path}` and rebuild it"
        ) from None


def cache_info(path: str | os.PathLike) -> dict:
    """The cache's attributes plus counts and file size (what `depthcli cache info` prints)."""
    with open_cache(path, require_complete=False) as handle:
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
    """Check the metadata, then re-read every entry against its crc32; returns the problems (empty = OK)."""
    path = Path(path)
    try:
        handle = open_cache(path, require_complete=False)
    except DepthcliError as exc:
        return [str(exc)]
    problems = []
    with handle:
        try:
            if not handle.attrs["complete"]:
                problems.append(f"{path}: build did not complete (complete flag not set); rerun `depthcli cache build`")
            problems += _entry_problems(handle)
        except Exception as exc:  # an unfinished build has no checksum yet: its tables may be damaged too
            problems.append(f"{path}: damaged ({_reason(exc)}); {_REBUILD}")
    return problems


def _entry_problems(handle: h5py.File) -> list[str]:
    problems = []
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
                problems.append(f"{name}: unreadable ({_reason(exc)})")
                continue
            if actual != crcs[i]:
                problems.append(f"{name}: content does not match its checksum (corrupted)")
    return problems


def _sample_names(handle: h5py.File) -> list[str]:
    folders = handle["samples/folder"].asstr()[()]
    frames = handle["samples/frame_index"][()]
    sides = handle["samples/side"].asstr()[()]
    return [f"{f} {n} {s}" for f, n, s in zip(folders, frames, sides, strict=True)]
