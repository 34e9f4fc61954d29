"""Byte-level writers for the real on-disk formats the synthetic worlds imitate (docs/formats.md).

Everything goes through `depthcli.atomic` (temp file + rename) and is deterministic: no timestamps
of the moment of writing end up in any file, so the same seed gives byte-identical output.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import h5py
import numpy as np
import scipy.io

from depthcli.atomic import atomic_path, atomic_write_bytes, atomic_write_text

MAT73_HEADER_TEXT = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Sat Jan  1 00:00:00 2000 HDF5 schema 1.00 ."
MAT5_HEADER_TEXT = "MATLAB 5.0 MAT-file, Platform: posix, Created on: Sat Jan  1 00:00:00 2000"


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """RGB uint8 (H,W,3) -> PNG (OpenCV wants BGR)."""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    _write(path, encoded.tobytes())


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    _write(path, buffer.getvalue())


def write_velodyne(path: str | os.PathLike, points: np.ndarray) -> None:
    """(N,4) x, y, z, reflectance -> little-endian float32 `.bin`, as KITTI stores scans."""
    _write(path, np.ascontiguousarray(points, dtype="<f4").tobytes())


def _write(path, data: bytes) -> None:
    """Atomic, without an fsync per file (thousands of small frames; the rename still guarantees
    that a file either is complete or absent)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_text(path, text)


def kitti_timestamps(count: int, rate_hz: float) -> str:
    """`YYYY-MM-DD HH:MM:SS.nnnnnnnnn` lines as in KITTI's timestamps.txt, from a fixed start time."""
    lines = []
    for i in range(count):
        nanoseconds = round(i * 1e9 / rate_hz)
        seconds, fraction = divmod(nanoseconds, 1_000_000_000)
        minutes, second = divmod(seconds, 60)
        lines.append(f"2000-01-01 12:{minutes:02d}:{second:02d}.{fraction:09d}")
    return "\n".join(lines) + "\n"


def mat73_header() -> bytes:
    """The 128 bytes MATLAB puts at the start of a v7.3 file's 512-byte HDF5 userblock."""
    text = MAT73_HEADER_TEXT.ljust(116).encode("ascii")
    return text + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write_nyu_labeled_mat(path: str | os.PathLike, views: Iterable[tuple], count: int, size: tuple[int, int]) -> None:
    """NYU's labelled `.mat` layout: MATLAB v7.3 = HDF5 with a 512-byte userblock, filled view by view.

    `views` yields (rgb (H,W,3) uint8, depth (H,W), raw depth (H,W)). MATLAB is column-major, so h5py
    sees `images` as (N,3,W,H) and `depths` / `rawDepths` as (N,W,H).
    """
    width, height = size
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=512) as handle:
            datasets = []
            for name, shape, dtype, matlab_class in (
                ("images", (count, 3, width, height), np.uint8, "uint8"),
                ("depths", (count, width, height), np.float32, "single"),
                ("rawDepths", (count, width, height), np.float32, "single"),
            ):
                dataset = handle.create_dataset(name, shape, dtype, chunks=(1, *shape[1:]), track_times=False)
                dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
                datasets.append(dataset)
            for index, (rgb, depth, raw) in enumerate(views):
                datasets[0][index] = rgb.transpose(2, 1, 0)
                datasets[1][index] = depth.T
                datasets[2][index] = raw.T
        with open(tmp, "r+b") as raw_file:
            raw_file.write(mat73_header())


def write_nyu_splits(path: str | os.PathLike, train: np.ndarray, test: np.ndarray) -> None:
    """`splits.mat` (MATLAB 5): `trainNdxs`, `testNdxs` as 1-based (N,1) column vectors (zero-based in)."""
    buffer = io.BytesIO()
    column = {
        "trainNdxs": (np.asarray(train, np.float64) + 1).reshape(-1, 1),
        "testNdxs": (np.asarray(test, np.float64) + 1).reshape(-1, 1),
    }
    scipy.io.savemat(buffer, column, format="5", oned_as="column")
    data = bytearray(buffer.getvalue())
    data[:116] = MAT5_HEADER_TEXT.ljust(116).encode("ascii")  # savemat stamps the current time here
    atomic_write_bytes(path, bytes(data))
