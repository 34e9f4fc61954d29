"""Cache vs raw-folder loading speed and reader memory (a script, not a test).

    python benchmarks/bench_cache.py [--frames 200,800] [--workers 2] [--batch 12] [--kitti DIR]

Builds a bigger KITTI raw layout by repeating the real sample's frames (symlinks, so decoding cost is
real), packs it into a 640x192 training cache, then times one epoch through a DataLoader that
(a) reads the cache (`CachedKittiDataset`) and (b) decodes + resizes the same PNGs from the raw folder
with the same workers. Each run is a fresh subprocess so its peak RSS (reader + workers, from
`resource.getrusage`) is its own; two dataset sizes show whether it grows with the data.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"
SIZE = (640, 192)


def make_raw_layout(sample_root: Path, out: Path, n_frames: int) -> Path:
    """`n_frames` consecutive frames cycling over the sample's 10 images and scans, plus a split file."""
    source = sample_root / DRIVE
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        (out / "2011_09_26").mkdir(parents=True, exist_ok=True)
        (out / "2011_09_26" / name).symlink_to(sample_root / "2011_09_26" / name)
    images = out / DRIVE / "image_02" / "data"
    images.mkdir(parents=True)
    for i in range(n_frames):
        (images / f"{i:010d}.png").symlink_to(source / "image_02" / "data" / f"{i % 10:010d}.png")
    split = out / "train_files.txt"
    split.write_text("".join(f"{DRIVE} {i} l\n" for i in range(1, n_frames - 1)))
    return split


def _raw_dataset(root: Path, split: Path):
    """The uncached path: decode three PNGs per sample, resize, build K, like a folder-reading trainer."""
    import numpy as np
    import torch

    from depthcli.data import kitti
    from depthcli.data.images import read_rgb, resize_rgb
    from depthcli.geometry import intrinsics_from_normalised

    samples, _ = kitti.resolve_samples(root, kitti.read_split(split))
    p_rect = kitti.rectified_projection(root / "2011_09_26")

    class RawKitti(torch.utils.data.Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, index):
            sample = {}
            for offset, path in samples[index].frame_paths.items():
                image = np.ascontiguousarray(resize_rgb(read_rgb(path), SIZE))
                sample[("color", offset, 0)] = torch.from_numpy(image).permute(2, 0, 1).float() / 255
            height, width = read_rgb(samples[index].frame_paths[0]).shape[:2] if index == 0 else (375, 1242)
            K = intrinsics_from_normalised(
                torch.from_numpy(kitti.normalised_intrinsics(p_rect, (width, height))), *SIZE
            )
            sample[("K", 0)], sample[("inv_K", 0)] = K, torch.linalg.inv(K)
            return sample

    return RawKitti()


def run_reader(mode: str, path: Path, split: Path, workers: int, batch: int) -> dict:
    """One epoch in this process; returns samples/s and peak RSS of this process and of its workers."""
    import torch

    from depthcli.data.datasets import CachedKittiDataset

    torch.set_num_threads(1)
    dataset = CachedKittiDataset(path) if mode == "cache" else _raw_dataset(path, split)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=True)
    start = time.perf_counter()
    count = sum(len(b[("color", 0, 0)]) for b in loader)
    elapsed = time.perf_counter() - start
    main_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"samples": count, "seconds": elapsed, "samples_per_s": count / elapsed,
            "peak_rss_main_mb": main_kb / 1024, "peak_rss_worker_mb": workers_kb / 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="200,800", help="dataset sizes (frames) to compare")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--kitti", type=Path, default=REPO.parent / "shared" / "data" / "kitti_raw_mini")
    parser.add_argument("--reader", nargs=4, metavar=("MODE", "PATH", "SPLIT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        mode, path, split, out = args.reader
        result = run_reader(mode, Path(path), Path(split), args.workers, args.batch)
        Path(out).write_text(json.dumps(result))
        return

    from depthcli.data.cache import build_cache

    print(f"workers={args.workers} batch={args.batch} size={SIZE[0]}x{SIZE[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        for n_frames in (int(n) for n in args.frames.split(",")):
            raw = Path(tmp) / f"raw{n_frames}"
            split = make_raw_layout(args.kitti, raw, n_frames)
            start = time.perf_counter()
            cache = build_cache("kitti", raw, Path(tmp) / f"cache{n_frames}.h5", split=split, size=SIZE)
            build_s = time.perf_counter() - start
            results = {}
            for mode, path in (("cache", cache), ("raw", raw)):
                out = Path(tmp) / f"{mode}{n_frames}.json"
                command = [sys.executable, __file__, "--workers", str(args.workers), "--batch", str(args.batch),
                           "--reader", mode, str(path), str(split), str(out)]  # fmt: skip
                subprocess.run(command, check=True)
                results[mode] = json.loads(out.read_text())
            speedup = results["cache"]["samples_per_s"] / results["raw"]["samples_per_s"]
            print(f"{n_frames} frames (cache built in {build_s:.1f} s, {cache.stat().st_size / 2**20:.0f} MiB):")
            for mode, r in results.items():
                rate = f"{r['samples_per_s']:8.1f} samples/s  ({r['samples']} in {r['seconds']:.1f} s)"
                memory = f"peak RSS main {r['peak_rss_main_mb']:.0f} MiB, worker {r['peak_rss_worker_mb']:.0f} MiB"
                print(f"  {mode:5s} {rate}  {memory}")
            print(f"  speed-up cache/raw: {speedup:.1f}x")


if __name__ == "__main__":
    main()
