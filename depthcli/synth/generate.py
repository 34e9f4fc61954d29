"""`synth kitti|nyu`: render the worlds and write them in the real KITTI raw / NYU layouts.

KITTI output (ROOT = out):
- `DATE/calib_cam_to_cam.txt`, `DATE/calib_velo_to_cam.txt` (KITTI syntax, rig scaled to `size`); DATE is
  2000_01_01 minus `seed` days (`world_date`), so that `eval`'s drive-overlap warning, which compares drive
  names, tells worlds of different seeds apart, and no world takes a real KITTI date (2011);
  K_0x / P_rect_0x in KITTI's 1-based pixel convention (principal point = rendered 0-based one + 1);
- `DATE/DATE_drive_XXXX_sync/image_02/data/%010d.png`, `velodyne_points/data/%010d.bin`, both with
  `timestamps.txt` (10 Hz); with `stereo`, `image_03/data/%010d.png` too (the right camera);
- sidecars, not part of KITTI: `depth_true/data/%010d.npy` (dense camera-z depth in metres, float32,
  0 = sky) and `poses_true.txt` (one line per frame: world_from_camera-2, 3x4 row-major, as KITTI
  odometry poses);
- `train_files.txt`, `val_files.txt`, `test_files.txt` (`folder frame l`). Train/val hold only frames
  with both neighbours (every 10th candidate goes to val); the test split is the whole last drive,
  or with a single drive the last fifth of its frames (kept apart: train/val neighbours stop before it).

NYU output: `nyu_depth_v2_labeled.mat` (v7.3 HDF5: `images`, `depths` exact, `rawDepths` Kinect-like)
and `splits.mat`; the test split is whole rooms (the last ~40%), so test views are of unseen rooms.
The exact `depths` are the dense truth, so there is no separate sidecar for NYU.

A world is rendered into a hidden folder beside `out` and renamed onto it only when complete, so an
error or Ctrl-C leaves no half world behind (a `kill -9` leaves only that hidden `.OUT.synth-*` folder).
`out` must be new or empty: rendering over an older world would mix the two.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from depthcli.atomic import current_umask
from depthcli.errors import DepthcliError
from depthcli.sizes import check_size_bounds
from depthcli.synth import kitti_world, nyu_world, writers
from depthcli.synth.scene import render_view

WORLD_DATE_OF_SEED_0 = datetime.date(2000, 1, 1)
# date.min is 730 119 days earlier: the dates wrap every WORLD_DATES seeds (seeds a multiple apart share one)
WORLD_DATES = 730_000
VIEWS_PER_ROOM = 4
# Bounds far above any use (KITTI raw has about 47 000 frames, NYU's labelled set 1 449): a typo such as
# --frames 1000000000 fails at once instead of filling memory with a job list.
MAX_FRAMES = 100_000
MAX_WORKERS = 256
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthSummary:
    root: Path
    frames: int
    files: tuple[Path, ...]  # the split / index files a user opens next


def world_date(seed: int) -> str:
    """The KITTI date folder of the world rendered with `seed`: 2000_01_01 for seed 0, a day earlier per seed
    (before any real KITTI recording), wrapping every WORLD_DATES seeds."""
    return (WORLD_DATE_OF_SEED_0 - datetime.timedelta(days=seed % WORLD_DATES)).strftime("%Y_%m_%d")


def drive_folder(seed: int, drive: int) -> str:
    date = world_date(seed)
    return f"{date}/{date}_drive_{drive + 1:04d}_sync"


def _check_args(frames: int, size: tuple[int, int], minimum_frames: int, workers: int, drives: int = 1) -> None:
    if frames < minimum_frames:
        raise DepthcliError(f"--frames {frames}: need at least {minimum_frames} frames")
    if drives < 1:
        raise DepthcliError(f"--drives {drives}: need at least 1 drive")
    if frames * drives > MAX_FRAMES:
        what = f"--frames {frames}" + (f" x --drives {drives}" if drives > 1 else "")
        raise DepthcliError(f"{what}: at most {MAX_FRAMES} frames in all; render a smaller world")
    if not 1 <= workers <= MAX_WORKERS:
        raise DepthcliError(f"--workers {workers}: give 1 to {MAX_WORKERS} render processes")
    if size[0] < 8 or size[1] < 8:
        raise DepthcliError(f"--size {size[0]}x{size[1]} is too small; use at least 8x8")
    check_size_bounds(*size, what="--size")


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A fresh hidden folder beside `out` to render into, renamed onto `out` once the block succeeds.

    On any error (or Ctrl-C) the folder is removed, so `out` is either untouched or a whole world.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        kind = "a folder with files in it" if out.is_dir() else "a file"
        raise DepthcliError(f"output {out} is {kind}; synth writes a whole new world: give a new or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.synth-", dir=out.parent))
    except OSError as exc:
        raise DepthcliError(
            f"cannot create output directory {out}: {exc.strerror}; choose a writable location"
        ) from None
    try:
        yield stage
        stage.chmod(0o777 & ~current_umask())  # mkdtemp made it private to its owner
        if out.is_dir():
            out.rmdir()  # empty (checked above): the rename needs the name free
        os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


@lru_cache(maxsize=4)
def _drive(seed: int, drive: int, frames: int) -> tuple:
    """The street and trajectory of one drive (rebuilt identically in each worker process)."""
    rng = np.random.default_rng([seed, drive])
    road_half = rng.uniform(4.5, 6.0)
    poses = kitti_world.trajectory(rng, frames, road_half)
    world = kitti_world.make_street(rng, road_half, float(np.linalg.norm(poses[-1, :3, 3] - poses[0, :3, 3])))
    return world, poses


def _kitti_frame(job: tuple) -> int:
    out, seed, drive, frames, frame, size, stereo = job
    world, poses = _drive(seed, drive, frames)
    rig = kitti_world.make_rig(size)
    folder = Path(out) / drive_folder(seed, drive)
    rgb, depth = render_view(world, rig.K, size, poses[frame])
    points = kitti_world.velodyne_scan(world, poses[frame] @ rig.cam2_from_velo)
    name = f"{frame:010d}"
    if stereo:
        right, _ = render_view(world, rig.K, size, poses[frame] @ np.linalg.inv(rig.cam3_from_cam2))
        writers.write_png(folder / "image_03" / "data" / f"{name}.png", right)
    writers.write_png(folder / "image_02" / "data" / f"{name}.png", rgb)
    writers.write_npy(folder / "depth_true" / "data" / f"{name}.npy", depth)
    writers.write_velodyne(folder / "velodyne_points" / "data" / f"{name}.bin", points)
    return frame


def _counted(items, total: int, progress: Progress | None):
    """Pass items through, reporting progress after each."""
    for done, item in enumerate(items, start=1):
        yield item
        if progress is not None:
            progress(done, total)


@contextlib.contextmanager
def _mapped(work: Callable, jobs: list, workers: int):
    """`work` over `jobs`, results in job order: inline, or on `workers` forked processes."""
    pool = multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) if workers > 1 else None
    try:
        yield pool.imap(work, jobs) if pool is not None else map(work, jobs)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def kitti_splits(drives: int, frames: int) -> dict[str, list[tuple[int, int]]]:
    """{'train'|'val'|'test': [(drive, frame), ...]} as described in the module docstring."""
    splits: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    if drives > 1:
        test_drives, test_start = [drives - 1], 0
        train_drives, train_end = range(drives - 1), frames - 1
    else:
        test_start = frames - max(1, frames // 5)
        test_drives, train_drives, train_end = [0], [0], test_start - 1
    for drive in train_drives:
        for number, frame in enumerate(range(1, train_end)):
            splits["val" if number % 10 == 5 else "train"].append((drive, frame))
    for drive in test_drives:
        splits["test"] += [(drive, frame) for frame in range(test_start, frames)]
    return splits


def synth_kitti(
    out: str | os.PathLike,
    frames: int = 100,
    drives: int = 1,
    size: tuple[int, int] = kitti_world.FULL_SIZE,
    seed: int = 0,
    workers: int = 2,
    progress: Progress | None = None,
    stereo: bool = False,
) -> SynthSummary:
    """Render `drives` drives of `frames` frames each into `out` in the KITTI raw layout
    (`stereo`: also the right camera `image_03`, 0.53 m to the right, doubling the render time)."""
    out = Path(out)
    _check_args(frames, size, 5, workers, drives)
    rig = kitti_world.make_rig(size)
    stamps = writers.kitti_timestamps(frames, kitti_world.FRAME_RATE)
    splits = kitti_splits(drives, frames)
    with _staged(out) as stage:
        calib_dir = stage / world_date(seed)
        writers.write_text(calib_dir / "calib_cam_to_cam.txt", rig.cam_to_cam_text)
        writers.write_text(calib_dir / "calib_velo_to_cam.txt", rig.velo_to_cam_text)
        for drive in range(drives):
            folder = stage / drive_folder(seed, drive)
            for sensor in ("image_02", "velodyne_points") + (("image_03",) if stereo else ()):
                writers.write_text(folder / sensor / "timestamps.txt", stamps)
            poses = _drive(seed, drive, frames)[1]
            lines = [" ".join(f"{v:.9e}" for v in pose[:3].ravel()) for pose in poses]
            writers.write_text(folder / "poses_true.txt", "\n".join(lines) + "\n")
        jobs = [(str(stage), seed, d, frames, f, tuple(size), stereo) for d in range(drives) for f in range(frames)]
        with _mapped(_kitti_frame, jobs, workers) as results:
            for _ in _counted(results, len(jobs), progress):
                pass
        for name, entries in splits.items():
            lines = "".join(f"{drive_folder(seed, d)} {f} l\n" for d, f in entries)
            writers.write_text(stage / f"{name}_files.txt", lines)
    return SynthSummary(out, drives * frames, tuple(out / f"{name}_files.txt" for name in splits))


def _nyu_view(job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed, index, size = job
    room = index // VIEWS_PER_ROOM
    world = _room(seed, room)
    rng = np.random.default_rng([seed, room, index])
    pose = nyu_world.camera_pose(rng, world)
    K = nyu_world.intrinsics_for(size)
    rgb, depth = render_view(world, K, size, pose)
    return rgb, depth, nyu_world.kinect_raw_depth(depth, rng, K[0, 0])


@lru_cache(maxsize=2)
def _room(seed: int, room: int):
    return nyu_world.make_room(np.random.default_rng([seed, room, 1 << 20]))


def nyu_split(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-based (train, test) indices: whole rooms, the last ~40% of rooms (at least one) for test."""
    rooms = -(-frames // VIEWS_PER_ROOM)
    test_rooms = max(1, round(0.4 * rooms)) if rooms > 1 else 0
    first_test = (rooms - test_rooms) * VIEWS_PER_ROOM
    indices = np.arange(frames)
    if rooms == 1:  # a single room: hold out its last view
        first_test = frames - 1
    return indices[:first_test], indices[first_test:]


def synth_nyu(
    out: str | os.PathLike,
    frames: int = 64,
    size: tuple[int, int] = nyu_world.FULL_SIZE,
    seed: int = 0,
    workers: int = 2,
    progress: Progress | None = None,
) -> SynthSummary:
    """Render `frames` views of rooms into `out` as NYU's labelled `.mat` plus `splits.mat`."""
    out = Path(out)
    _check_args(frames, size, 2, workers)
    jobs = [(seed, index, tuple(size)) for index in range(frames)]
    mat_name, splits_name = "nyu_depth_v2_labeled.mat", "splits.mat"
    with _staged(out) as stage:
        with _mapped(_nyu_view, jobs, workers) as views:
            writers.write_nyu_labeled_mat(stage / mat_name, _counted(views, frames, progress), frames, size)
        writers.write_nyu_splits(stage / splits_name, *nyu_split(frames))
    return SynthSummary(out, frames, (out / mat_name, out / splits_name))
