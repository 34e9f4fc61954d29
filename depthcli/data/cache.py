"""Building one HDF5 file per dataset split: decoded, resized frames, intrinsics, ground truth and the split.

The layout, checksums and the reading side live in `depthcli.data.cache_file`.

Builds are atomic and resumable: everything is written into `OUT.partial` with a per-entry done flag;
a rebuild with identical parameters re-checks the entries already done and continues. Only a
finished build gets its checksum and `complete=True`, and is then renamed onto OUT, so a kill at any
moment leaves either the previous OUT or a partial file, never a valid-looking half cache. One build
per output at a time: `OUT.lock` (see `depthcli.locks`) makes a second build to the same OUT refuse
at once instead of deleting the first one's partial file; a killed build holds no lock.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from depthcli.data import kitti, nyu
from depthcli.data.cache_file import DATASETS, FORMAT, FORMAT_VERSION, content_checksum, entry_crc, entry_groups
from depthcli.data.images import read_rgb, resize_depth, resize_rgb
from depthcli.errors import DepthcliError
from depthcli.locks import exclusive_lock, lock_path_for
from depthcli.paths import check_output_file, refuse_output_overwriting_inputs
from depthcli.sizes import format_size

# HDF5 1.8 structures: object headers (with the attributes in them) carry a checksum that the library
# verifies before decoding, so flipped bytes there become an error instead of a misread or a crash.
# (1.10's superblock would also mark a killed build's file "open for write" and refuse to resume it.)
HDF5_FORMAT = ("v108", "v108")
TRAIN_OFFSETS = (0, -1, 1)
EVAL_OFFSETS = (0,)

Progress = Callable[[int, int], None]


@dataclass
class _Plan:
    """Everything a build writes, decided before any pixel is decoded (so parameters can be compared)."""

    attrs: dict
    frame_sources: list[str]
    frame_hw: np.ndarray  # (F, 2) stored size of each frame
    read_frame: Callable[[int], tuple[np.ndarray, np.ndarray | None]]
    tables: dict[str, np.ndarray] = field(default_factory=dict)  # written once, before the entries
    gt_hw: np.ndarray | None = None  # (S, 2) ground truth size per sample (KITTI eval caches)
    read_gt: Callable[[int], np.ndarray] | None = None


def build_cache(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    split: str | os.PathLike | None = None,
    size: tuple[int, int] | None = None,
    ext: str = "png",
    progress: Progress | None = None,
    depth_value: str = "velo_x",
    depth_unit: str = "mm",
    frame_ids: tuple[int, ...] = TRAIN_OFFSETS,
) -> Path:
    """Build (or resume) the cache for `dataset` at `out`; returns `out`.

    `size` (width, height) resizes every image (training caches; KITTI stores the neighbours at
    `frame_ids`, monodepth2's -1/+1 by default; -2/+2 doubles the camera motion between them);
    `None` keeps full size (eval caches; KITTI stores velodyne ground truth per sample instead).
    """
    out = Path(out)
    if dataset not in DATASETS:
        raise DepthcliError(f"dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    partial = out.with_name(out.name + ".partial")
    check_output_file(out, "--out")
    refuse_output_overwriting_inputs(
        [("--out", out), ("--out's partial file", partial), ("--out's lock file", lock_path_for(out))],
        [("--root", root), ("--split", split)],
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DepthcliError(f"cannot write into {out.parent}: {exc.strerror}; choose a writable --out") from None
    with exclusive_lock(out, "`depthcli cache build`"):
        if dataset == "kitti":
            plan = _plan_kitti(Path(root), split, size, ext, depth_value, tuple(frame_ids))
        else:
            plan = _plan_nyu(Path(root), split, size, depth_unit)
        try:
            handle = _open_partial(partial, plan)
        except PermissionError as exc:
            raise DepthcliError(f"cannot write into {out.parent}: {exc.strerror}; choose a writable --out") from None
        except OSError as exc:
            raise DepthcliError(f"cannot create {partial}: {exc}; choose a writable --out") from None
        with handle:
            _fill(handle, plan, progress)
            handle.attrs["complete"] = True
            handle.attrs["checksum"] = content_checksum(handle)
            handle.flush()
        os.replace(partial, out)
    return out


def _plan_kitti(root: Path, split, size, ext: str, depth_value: str, frame_ids: tuple[int, ...]) -> _Plan:
    kitti.check_kitti_root(root)
    if depth_value not in kitti.DEPTH_VALUES:
        raise DepthcliError(f"depth value {depth_value!r} is not one of {', '.join(kitti.DEPTH_VALUES)}")
    if frame_ids[:1] != (0,) or len(set(frame_ids)) != len(frame_ids):
        raise DepthcliError(f"frame ids {list(frame_ids)}: give the target 0 first, then distinct neighbour offsets")
    entries = kitti.read_split(split) if split is not None else kitti.all_frames_split(root, ext)
    offsets = frame_ids if size is not None else EVAL_OFFSETS
    samples, skipped = kitti.resolve_samples(root, entries, offsets, ext)
    if not samples:
        raise DepthcliError(f"no usable samples in {split or root}: all {skipped} lack a neighbour frame")
    frame_index: dict[Path, int] = {}
    for sample in samples:
        for path in sample.frame_paths.values():
            frame_index.setdefault(path, len(frame_index))
    frame_paths = list(frame_index)
    # Image size is constant within a drive (it differs between dates): decode one frame per drive.
    drive_hw: dict[tuple[str, str], tuple[int, int]] = {}
    for sample in samples:
        key = (sample.entry.folder, sample.entry.side)
        if key not in drive_hw:
            drive_hw[key] = read_rgb(sample.frame_paths[0]).shape[:2]
    full_hw = {path: drive_hw[(s.entry.folder, s.entry.side)] for s in samples for path in s.frame_paths.values()}
    if size is not None:
        frame_hw = np.array([(size[1], size[0])] * len(frame_paths), dtype=np.int32)
    else:
        frame_hw = np.array([full_hw[path] for path in frame_paths], dtype=np.int32)

    def read_frame(i: int) -> tuple[np.ndarray, None]:
        path = frame_paths[i]
        image = read_rgb(path)
        if image.shape[:2] != full_hw[path]:
            raise DepthcliError(f"image {path} is {image.shape[1]}x{image.shape[0]}, other frames of its drive are not")
        return (resize_rgb(image, size) if size is not None else image), None

    intrinsics = []
    for sample in samples:
        calib_dir = kitti.calib_dir_of(root, sample.entry.folder)
        p_rect = kitti.rectified_projection(calib_dir, kitti.SIDE_TO_CAMERA[sample.entry.side])
        height, width = drive_hw[(sample.entry.folder, sample.entry.side)]
        intrinsics.append(kitti.normalised_intrinsics(p_rect, (width, height)))
    tables = {
        "samples/frames": np.array([[frame_index[s.frame_paths[o]] for o in offsets] for s in samples], np.int64),
        "samples/K": np.stack(intrinsics).astype(np.float32),
        "samples/folder": np.array([s.entry.folder for s in samples], dtype=object),
        "samples/frame_index": np.array([s.entry.frame_index for s in samples], dtype=np.int64),
        "samples/side": np.array([s.entry.side for s in samples], dtype=object),
    }
    plan = _Plan(
        attrs=_common_attrs("kitti", root, split, size, skipped) | {"ext": ext, "offsets": list(offsets)},
        frame_sources=[path.relative_to(root).as_posix() for path in frame_paths],
        frame_hw=frame_hw,
        read_frame=read_frame,
        tables=tables,
    )
    if size is None:
        plan.attrs["depth_value"] = depth_value
        plan.gt_hw = np.array([full_hw[s.frame_paths[0]] for s in samples], dtype=np.int32)

        def read_gt(i: int) -> np.ndarray:
            entry = samples[i].entry
            return kitti.velodyne_depth_map(
                kitti.calib_dir_of(root, entry.folder),
                kitti.velodyne_path(root, entry.folder, entry.frame_index),
                tuple(plan.gt_hw[i]),
                kitti.SIDE_TO_CAMERA[entry.side],
                depth_value,
            )

        plan.read_gt = read_gt
    return plan


def _plan_nyu(root: Path, split, size, depth_unit: str) -> _Plan:
    source = nyu.open_nyu(root, split, depth_unit)
    first_rgb, _ = source[0]
    full_hw = first_rgb.shape[:2]
    stored_hw = (size[1], size[0]) if size is not None else full_hw
    names = source.names

    def read_frame(i: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, depth = source[i]
        if rgb.shape[:2] != full_hw or depth.shape != full_hw:
            raise DepthcliError(f"NYU frame {names[i]} is {rgb.shape[:2]} / {depth.shape}, the first is {full_hw}")
        if size is not None:
            rgb, depth = resize_rgb(rgb, size), resize_depth(depth, size)
        return rgb, depth

    tables = {f"split/{name}": idx for name, idx in source.splits.items()}
    tables["split/all"] = np.arange(len(source), dtype=np.int64)
    attrs = _common_attrs("nyu", root, split, size, 0) | {"depth_unit": depth_unit, "offsets": [0]}
    attrs["split_name"] = ",".join(sorted(name.split("/")[1] for name in tables))
    attrs["K"] = nyu.nyu_normalised_intrinsics()
    return _Plan(
        attrs=attrs,
        frame_sources=names,
        frame_hw=np.array([stored_hw] * len(source), dtype=np.int32),
        read_frame=read_frame,
        tables=tables,
    )


def _common_attrs(dataset: str, root: Path, split, size, skipped: int) -> dict:
    split_path = Path(split).resolve() if split is not None else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "source_root": str(root.resolve()),
        "split_file": str(split_path) if split_path else "",
        "split_name": split_path.stem if split_path else "all",
        "split_sha256": hashlib.sha256(split_path.read_bytes()).hexdigest()
        if split_path and split_path.is_file()
        else "",
        "size": format_size(size) if size is not None else "full",
        "mode": "train" if size is not None else "eval",
        "skipped": skipped,
    }


def _build_params(plan: _Plan) -> str:
    """What must match for a partial file to be resumed: attributes plus the exact entry list."""
    listing = hashlib.sha256("\n".join(plan.frame_sources).encode() + plan.frame_hw.tobytes()).hexdigest()
    plain = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in plan.attrs.items()}
    n_gt = 0 if plan.gt_hw is None else len(plan.gt_hw)
    return json.dumps(plain | {"entries": listing, "ground_truth_entries": n_gt}, sort_keys=True)


def _open_partial(partial: Path, plan: _Plan) -> h5py.File:
    """Reopen a compatible partial file (dropping entries whose data does not match its checksum) or start anew."""
    params = _build_params(plan)
    if partial.exists():
        try:
            handle = h5py.File(partial, "r+")
            if handle.attrs.get("build_params") == params and not handle.attrs.get("complete"):
                _recheck_done(handle)
                return handle
            handle.close()
        except Exception:  # a partial killed mid-flush may be unreadable: it is rebuilt from scratch
            pass
        partial.unlink()
    handle = h5py.File(partial, "w", libver=HDF5_FORMAT)
    try:
        _create_layout(handle, plan)
        handle.attrs["build_params"] = params
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return handle


def _create_layout(handle: h5py.File, plan: _Plan) -> None:
    for key, value in plan.attrs.items():
        handle.attrs[key] = value
    handle.attrs["complete"] = False
    handle.attrs["checksum"] = ""
    n_frames = len(plan.frame_sources)
    height, width = plan.frame_hw.max(axis=0)
    frames = handle.create_group("frames")
    frames.create_dataset("rgb", (n_frames, height, width, 3), np.uint8, chunks=(1, height, width, 3))
    if plan.attrs["dataset"] == "nyu":
        frames.create_dataset("depth", (n_frames, height, width), np.float32, chunks=(1, height, width))
    frames["hw"] = plan.frame_hw
    _create_strings(frames, "source", plan.frame_sources)
    frames.create_dataset("crc32", (n_frames,), np.uint32)
    frames.create_dataset("done", (n_frames,), bool)
    for name, table in plan.tables.items():
        if table.dtype == object:
            _create_strings(handle, name, table)
        else:
            handle.create_dataset(name, data=table)
    if "samples/frames" in handle:
        handle["samples/frames"].attrs["offsets"] = plan.attrs["offsets"]
    if plan.read_gt is not None:
        n_samples = len(plan.gt_hw)
        gt_h, gt_w = plan.gt_hw.max(axis=0)
        samples = handle.require_group("samples")
        samples.create_dataset(
            "depth_gt", (n_samples, gt_h, gt_w), np.float32, chunks=(1, gt_h, gt_w), compression="lzf"
        )
        samples["gt_hw"] = plan.gt_hw
        samples.create_dataset("gt_crc32", (n_samples,), np.uint32)
        samples.create_dataset("gt_done", (n_samples,), bool)


def _create_strings(group: h5py.Group, name: str, values) -> None:
    """A table of text as fixed-length UTF-8: variable-length strings live in HDF5's global heap, whose
    descriptors carry no checksum, and a damaged one can crash the HDF5 library instead of raising."""
    encoded = [str(value).encode("utf-8") for value in values]
    dtype = h5py.string_dtype("utf-8", max([1, *map(len, encoded)]))
    dataset = group.create_dataset(name, (len(encoded),), dtype=dtype)
    if encoded:
        dataset[...] = np.array(encoded, dtype=dtype)


def _recheck_done(handle: h5py.File) -> None:
    """Entries flagged done by an interrupted build are kept only if their data matches their checksum."""
    for _, data_names, crc_name, done_name in entry_groups(handle):
        done = handle[done_name][()]
        crcs = handle[crc_name][()]
        for i in np.flatnonzero(done):
            if entry_crc(*(handle[name][i] for name in data_names)) != crcs[i]:
                done[i] = False
        handle[done_name][...] = done


def _padded(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape == shape:
        return array
    padded = np.zeros(shape, dtype=array.dtype)
    padded[tuple(slice(0, n) for n in array.shape)] = array
    return padded


def _fill(handle: h5py.File, plan: _Plan, progress: Progress | None) -> None:
    """Write every entry not yet done. Data is flushed before its done flag, so a flag on disk means data on disk."""
    frame_done = handle["frames/done"][()]
    gt_done = handle["samples/gt_done"][()] if plan.read_gt is not None else np.zeros(0, bool)
    total = len(frame_done) + len(gt_done)
    completed = int(frame_done.sum() + gt_done.sum())
    if progress:
        progress(completed, total)
    rgb_ds = handle["frames/rgb"]
    depth_ds = handle["frames/depth"] if "frames/depth" in handle else None
    for i in np.flatnonzero(~frame_done):
        rgb, depth = plan.read_frame(i)
        rgb = _padded(rgb.astype(np.uint8), rgb_ds.shape[1:])
        rgb_ds[i] = rgb
        arrays = [rgb]
        if depth_ds is not None:
            depth = _padded(depth.astype(np.float32), depth_ds.shape[1:])
            depth_ds[i] = depth
            arrays.append(depth)
        handle["frames/crc32"][i] = entry_crc(*arrays)
        completed = _mark_done(handle, "frames/done", i, completed, total, progress)
    if plan.read_gt is not None:
        gt_ds = handle["samples/depth_gt"]
        for i in np.flatnonzero(~gt_done):
            depth = _padded(plan.read_gt(i), gt_ds.shape[1:])
            gt_ds[i] = depth
            handle["samples/gt_crc32"][i] = entry_crc(depth)
            completed = _mark_done(handle, "samples/gt_done", i, completed, total, progress)


def _mark_done(handle: h5py.File, done_name: str, i: int, completed: int, total: int, progress) -> int:
    handle.flush()
    handle[done_name][i] = True
    handle.flush()
    if progress:
        progress(completed + 1, total)
    return completed + 1
