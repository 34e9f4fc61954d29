"""Cache vs raw-folder loading speed and reader memory (a script, not a test).

    python benchmarks/bench_cache.py [--frames 200,800] [--workers 2] [--batch 12] [--rounds 3] [--kitti DIR]

Builds a bigger KITTI raw layout by repeating the real sample's frames (symlinks, so decoding cost is
real), packs it into a 640x192 training cache, then times one epoch through a DataLoader that
(a) reads the cache (`CachedKittiDataset` as training opens it, without augmentation: images handed over
as uint8, batched by the training loop's `collate_samples` (an image shared between the "color" and
"color_aug" keys is passed once), turned into float32 [0, 1] in the main process by its device step
`to_device`; that conversion is timed) and (b) decodes + resizes the same PNGs from the raw folder into float32 samples
with the same workers. Each run is a fresh subprocess so its peak RSS (reader + workers, from
`resource.getrusage`) is its own; two dataset sizes show whether it grows with the data.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidebyside import Side, alternate, kitti_sample_root, load_line, ratios  # noqa: E402

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

    from depthcli.data.collate import collate_samples
    from depthcli.data.datasets import CachedKittiDataset
    from depthcli.engine.device_batches import to_device

    torch.set_num_threads(1)
    dataset = CachedKittiDataset(path, uint8_images=True) if mode == "cache" else _raw_dataset(path, split)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, num_workers=workers, shuffle=True, collate_fn=collate_samples
    )
    start = time.perf_counter()
    count = 0
    for batch_dict in loader:
        images = to_device(batch_dict, torch.device("cpu"), channels_last=False)
        count += len(images[("color", 0, 0)])
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
    parser.add_argument("--rounds", type=int, default=3, help="alternating cache/raw epochs per dataset size")
    parser.add_argument("--kitti", type=Path, default=kitti_sample_root(), help="KITTI raw root")
    parser.add_argument("--reader", nargs=4, metavar=("MODE", "PATH", "SPLIT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        mode, path, split, out = args.reader
        result = run_reader(mode, Path(path), Path(split), args.workers, args.batch)
        Path(out).write_text(json.dumps(result))
        return

    print(f"workers={args.workers} batch={args.batch} size={SIZE[0]}x{SIZE[1]}, {load_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        for n_frames in (int(n) for n in args.frames.split(",")):
            compare(n_frames, args, Path(tmp) / str(n_frames))
        print(load_line())


def compare(n_frames: int, args, tmp: Path) -> None:
    """Build the raw layout and its cache for `n_frames`, then alternate cache and raw epochs."""
    from depthcli.data.cache import build_cache

    raw = tmp / "raw"
    split = make_raw_layout(args.kitti, raw, n_frames)
    start = time.perf_counter()
    cache = build_cache("kitti", raw, tmp / "cache.h5", split=split, size=SIZE)
    build_s = time.perf_counter() - start
    results: dict[str, list[dict]] = {"cache": [], "raw": []}

    def epoch(mode: str, path: Path) -> float:
        out = tmp / f"{mode}.json"
        command = [sys.executable, __file__, "--workers", str(args.workers), "--batch", str(args.batch),
                   "--reader", mode, str(path), str(split), str(out)]  # fmt: skip
        subprocess.run(command, check=True)
        results[mode].append(json.loads(out.read_text()))
        return results[mode][-1]["seconds"] / results[mode][-1]["samples"]

    sides = [Side("cache", lambda: epoch("cache", cache)), Side("raw", lambda: epoch("raw", raw))]
    print(f"{n_frames} frames (cache built in {build_s:.1f} s, {cache.stat().st_size / 2**20:.0f} MiB):")
    alternate(sides, args.rounds)
    for mode, runs in results.items():
        rate = statistics.median(r["samples_per_s"] for r in runs)
        memory = f"peak RSS main {max(r['peak_rss_main_mb'] for r in runs):.0f} MiB, "
        memory += f"worker {max(r['peak_rss_worker_mb'] for r in runs):.0f} MiB"
        print(f"  {mode:5s} {rate:8.1f} samples/s (median)  {memory}")
    speedups = ratios(sides[1], sides[0])
    rounds = ", ".join(f"{value:.1f}" for value in speedups)
    print(f"  speed-up cache/raw: {statistics.median(speedups):.1f}x (rounds: {rounds})")


if __name__ == "__main__":
    main()
