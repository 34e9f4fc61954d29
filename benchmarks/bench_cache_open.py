"""What checking a cache on open costs at full KITTI scale (a script, not a test).

    python benchmarks/bench_cache_open.py [--frames 45000] [--samples 40000] [--repeats 5]

Writes the layout of a 640x192 KITTI training cache with `--frames` unique frames and `--samples` split
entries (eigen_zhou's training split has 39 810) without pixel data (HDF5 leaves unwritten chunks
unallocated, so the file is small but every table is full size), then times, side by side:
(a) a bare open that reads the root attributes (what opening cost before format 2), (b) `open_cache`
(sha256 over every table and attribute, plus the layout check), (c) building `CachedKittiDataset`,
which reads its tables either way.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from depthcli.data import cache
from depthcli.data.cache_file import content_checksum, open_cache
from depthcli.data.datasets import CachedKittiDataset

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


def write_layout(path: Path, n_frames: int, n_samples: int) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, n_frames, size=(n_samples, 3))
    plan = cache._Plan(
        attrs=cache._common_attrs("kitti", Path("."), None, (640, 192), 0) | {"ext": "png", "offsets": [0, -1, 1]},
        frame_sources=[f"{DRIVE}/image_02/data/{i:010d}.png" for i in range(n_frames)],
        frame_hw=np.array([(192, 640)] * n_frames, dtype=np.int32),
        read_frame=lambda i: (None, None),
        tables={
            "samples/frames": frames.astype(np.int64),
            "samples/K": np.repeat(np.eye(4, dtype=np.float32)[None], n_samples, axis=0),
            "samples/folder": np.array([DRIVE] * n_samples, dtype=object),
            "samples/frame_index": frames[:, 0].astype(np.int64),
            "samples/side": np.array(["l"] * n_samples, dtype=object),
        },
    )
    with h5py.File(path, "w") as handle:
        cache._create_layout(handle, plan)
        handle["frames/done"][...] = True
        handle.attrs["complete"] = True
        handle.attrs["checksum"] = content_checksum(handle)


def bare_open(path: Path) -> None:
    with h5py.File(path, "r") as handle:
        assert handle.attrs["format"] == "depthcli-cache" and handle.attrs["complete"]


def checked_open(path: Path) -> None:
    open_cache(path).close()


def timed(function, path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=45_000)
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layout.h5"
        write_layout(path, args.frames, args.samples)
        print(f"layout: {args.frames} frames, {args.samples} samples, {path.stat().st_size / 1e6:.1f} MB on disk")
        bare = timed(bare_open, path, args.repeats)
        checked = timed(checked_open, path, args.repeats)
        dataset = timed(lambda p: CachedKittiDataset(p), path, args.repeats)
    print(f"bare h5py open + attributes : {bare * 1e3:8.1f} ms")
    print(f"open_cache (checksum+layout): {checked * 1e3:8.1f} ms  ({checked / bare:.0f}x the bare open)")
    print(f"CachedKittiDataset(...)     : {dataset * 1e3:8.1f} ms  (includes open_cache)")


if __name__ == "__main__":
    main()
