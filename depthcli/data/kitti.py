"""KITTI raw: calibration files, velodyne scans, split files, and ground truth projected from velodyne.

Layout (docs/formats.md): `ROOT/DATE/calib_cam_to_cam.txt`, `ROOT/DATE/calib_velo_to_cam.txt`,
`ROOT/DATE/DATE_drive_XXXX_sync/image_02/data/%010d.png` (or .jpg) and
`.../velodyne_points/data/%010d.bin`. Split files hold lines `folder frame_index side`.

Pixel convention: KITTI's calibration (P_rect_0x, K_0x) is 1-based (devkit in MATLAB: the first pixel
centre is at 1). The matrices are returned as written; `velodyne_depth_map` subtracts 1 after
projecting (docs/protocols.md) and `normalised_intrinsics` subtracts 1 from the principal point, so both land
in depthcli's 0-based convention (pixel centres at 0..W-1, docs/architecture.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthcli.errors import DepthcliError
from depthcli.paths import check_input_file

SIDE_TO_CAMERA = {"l": 2, "r": 3}
IMAGE_EXTS = ("png", "jpg")
DEPTH_VALUES = ("velo_x", "cam_z")


@dataclass(frozen=True)
class SplitEntry:
    """One split-file line; `line` is its 1-based line number (0 when not read from a file)."""

    folder: str
    frame_index: int
    side: str
    line: int = 0


@dataclass(frozen=True)
class KittiSample:
    """A split entry whose frames exist: the image path for each frame offset (0, -1, +1)."""

    entry: SplitEntry
    frame_paths: dict[int, Path]


def read_calib_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """`key: v1 v2 ...` lines -> {key: float64 array}; non-numeric lines (calib_time) are skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DepthcliError(
            f"calibration file {path} does not exist; is the dataset root a KITTI raw layout?"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DepthcliError(f"cannot read calibration file {path}: {exc}") from None
    values: dict[str, np.ndarray] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue
    return values


def calib_value(calib: dict[str, np.ndarray], key: str, count: int, path: str | os.PathLike) -> np.ndarray:
    """`calib[key]` checked to hold `count` numbers, else a one-line error naming file and key."""
    if key not in calib:
        raise DepthcliError(f"calibration file {path} has no key {key!r}; re-download the calibration for that date")
    value = calib[key]
    if value.size != count:
        raise DepthcliError(f"calibration file {path}: {key!r} has {value.size} numbers, expected {count}")
    return value


def calib_dir_of(root: str | os.PathLike, folder: str) -> Path:
    """The date folder holding the calibration of a drive folder `DATE/DATE_drive_XXXX_sync`."""
    return Path(root) / Path(folder).parts[0]


def rectified_projection(calib_dir: str | os.PathLike, cam: int = 2) -> np.ndarray:
    """`P_rect_0{cam}` as a 3x4 matrix (1-based MATLAB pixels at the full rectified size, as written)."""
    path = Path(calib_dir) / "calib_cam_to_cam.txt"
    return calib_value(read_calib_file(path), f"P_rect_0{cam}", 12, path).reshape(3, 4)


def velodyne_to_image(calib_dir: str | os.PathLike, cam: int = 2) -> np.ndarray:
    """P = P_rect_0{cam} @ R_rect_00 (as 4x4) @ [R|T] (velodyne -> rectified image), docs/protocols.md."""
    cam_path = Path(calib_dir) / "calib_cam_to_cam.txt"
    velo_path = Path(calib_dir) / "calib_velo_to_cam.txt"
    cam_calib, velo_calib = read_calib_file(cam_path), read_calib_file(velo_path)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = calib_value(velo_calib, "R", 9, velo_path).reshape(3, 3)
    velo_to_cam[:3, 3] = calib_value(velo_calib, "T", 3, velo_path)
    rect = np.eye(4)
    rect[:3, :3] = calib_value(cam_calib, "R_rect_00", 9, cam_path).reshape(3, 3)
    p_rect = calib_value(cam_calib, f"P_rect_0{cam}", 12, cam_path).reshape(3, 4)
    return p_rect @ rect @ velo_to_cam


def rectified_image_hw(calib_dir: str | os.PathLike, cam: int = 2) -> tuple[int, int]:
    """`S_rect_0{cam}` (stored as width height) -> (height, width)."""
    path = Path(calib_dir) / "calib_cam_to_cam.txt"
    width, height = calib_value(read_calib_file(path), f"S_rect_0{cam}", 2, path)
    return int(height), int(width)


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """A velodyne `.bin` scan -> (N, 4) float32 (x forward, y left, z up, reflectance)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DepthcliError(f"velodyne scan {path} does not exist; ground truth needs velodyne_points") from None
    if size % 16:
        raise DepthcliError(
            f"velodyne scan {path} is {size} bytes, not a multiple of 16 (4 float32 per point); it is truncated"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def velodyne_depth_map(
    calib_dir: str | os.PathLike,
    velo_path: str | os.PathLike,
    image_hw: tuple[int, int] | None = None,
    cam: int = 2,
    depth_value: str = "velo_x",
) -> np.ndarray:
    """Sparse (H, W) float32 ground truth from one scan, exactly as the Eigen protocol makes it.

    Keep points ahead of the scanner (x >= 0), project with `velodyne_to_image`, divide by z, round,
    subtract 1 (KITTI's MATLAB 1-based convention), keep in-bounds pixels; where several points land
    on one pixel the nearest wins. The stored value is the velodyne x (the Eigen quirk, the default,
    what published numbers use) or the camera z (`depth_value="cam_z"`). `image_hw` defaults to S_rect.
    """
    if depth_value not in DEPTH_VALUES:
        raise DepthcliError(f"depth value {depth_value!r} is not one of {', '.join(DEPTH_VALUES)}")
    height, width = image_hw if image_hw is not None else rectified_image_hw(calib_dir, cam)
    points = read_velodyne(velo_path).astype(np.float64)
    points = points[points[:, 0] >= 0]
    homogeneous = np.concatenate([points[:, :3], np.ones((len(points), 1))], axis=1)
    projected = homogeneous @ velodyne_to_image(calib_dir, cam).T
    cam_z = projected[:, 2]
    cols = np.round(projected[:, 0] / cam_z) - 1
    rows = np.round(projected[:, 1] / cam_z) - 1
    values = points[:, 0] if depth_value == "velo_x" else cam_z
    inside = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    cols, rows, values = cols[inside].astype(np.int64), rows[inside].astype(np.int64), values[inside]
    # Nearest per pixel: sort by (pixel, value) and keep the first point of each pixel.
    flat = rows * width + cols
    order = np.lexsort((values, flat))
    first = np.unique(flat[order], return_index=True)[1]
    keep = order[first]
    depth = np.zeros(height * width, dtype=np.float32)
    depth[flat[keep]] = values[keep]
    depth[depth < 0] = 0
    return depth.reshape(height, width)


def read_split_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a split file (any kind: KITTI entries, NYU index lists); unreadable -> DepthcliError."""
    path = check_input_file(path, "split file")
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DepthcliError(f"cannot read split file {path}: {exc}") from None


def read_split(path: str | os.PathLike) -> list[SplitEntry]:
    """Split file lines `folder frame_index side` -> entries (blank lines ignored)."""
    path = Path(path)
    lines = read_split_lines(path)
    entries = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[1].lstrip("-").isdigit() or fields[2] not in SIDE_TO_CAMERA:
            raise DepthcliError(f"split file {path} line {number}: {line.strip()!r} is not 'folder frame_index l|r'")
        entries.append(SplitEntry(fields[0], int(fields[1]), fields[2], number))
    if not entries:
        raise DepthcliError(f"split file {path} has no entries")
    return entries


def image_path(root: str | os.PathLike, folder: str, frame_index: int, side: str, ext: str = "png") -> Path:
    """`ROOT/folder/image_0{2,3}/data/%010d.ext` for side l / r."""
    return Path(root) / folder / f"image_0{SIDE_TO_CAMERA[side]}" / "data" / f"{frame_index:010d}.{ext}"


def velodyne_path(root: str | os.PathLike, folder: str, frame_index: int) -> Path:
    return Path(root) / folder / "velodyne_points" / "data" / f"{frame_index:010d}.bin"


def normalised_from_pixel_intrinsics(k_px: np.ndarray, image_wh: tuple[int, int]) -> np.ndarray:
    """0-based pixel intrinsics (rows 0-1 of K; centres at 0..W-1) -> 4x4 float32 resolution-free ones.

    fx/W, (cx+0.5)/W in row 0, fy/H, (cy+0.5)/H in row 1: the numpy twin of
    `depthcli.geometry.intrinsics_to_normalised` (kept here so readers need no torch), which
    `intrinsics_from_normalised` turns back into pixels exactly (at the full size, and at any
    resize done with align_corners=False).
    """
    width, height = image_wh
    k = np.eye(4, dtype=np.float32)
    k[0, 0], k[0, 2] = k_px[0, 0] / width, (k_px[0, 2] + 0.5) / width
    k[1, 1], k[1, 2] = k_px[1, 1] / height, (k_px[1, 2] + 0.5) / height
    return k


def normalised_intrinsics(p_rect: np.ndarray, image_wh: tuple[int, int]) -> np.ndarray:
    """`P_rect_0x` (KITTI's 1-based pixels) -> 4x4 float32 normalised intrinsics in depthcli's convention.

    KITTI's devkit is MATLAB: P_rect's principal point counts the first pixel centre as 1 (the
    reason the Eigen GT projection in `velodyne_depth_map` subtracts 1). depthcli puts pixel centres
    at 0..W-1, so cx and cy lose 1 before `normalised_from_pixel_intrinsics`; focal lengths are unchanged.
    """
    zero_based = np.array(p_rect[:2, :3], dtype=np.float64)
    zero_based[:, 2] -= 1.0
    return normalised_from_pixel_intrinsics(zero_based, image_wh)


# monodepth2's single KITTI camera (its datasets/kitti_dataset.py), used for every drive: fx and cx in
# image widths, fy and cy in image heights. Its trainer turns it into pixels by scaling the rows by the
# image's width and height, so cx = W / 2 (depthcli's convention would put the image centre at W / 2 - 0.5).
MONODEPTH2_K = ((0.58, 0.0, 0.5), (0.0, 1.92, 0.5))


def monodepth2_pixel_intrinsics(width: int, height: int) -> np.ndarray:
    """4x4 float32 pixel intrinsics exactly as monodepth2's loader makes them at `width` x `height`."""
    K = np.eye(4, dtype=np.float32)
    K[:2, :3] = MONODEPTH2_K
    K[0, :] *= width
    K[1, :] *= height
    return K


def check_kitti_root(root: str | os.PathLike) -> Path:
    """The root must be a directory with at least one `DATE/calib_cam_to_cam.txt`."""
    root = Path(root)
    if not root.exists():
        raise DepthcliError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise DepthcliError(f"dataset root {root} is not a directory")
    if not any(root.glob("*/calib_cam_to_cam.txt")):
        raise DepthcliError(
            f"{root} is not a KITTI raw layout (no DATE/calib_cam_to_cam.txt); "
            "point --root at the folder holding the date folders"
        )
    return root


def check_ext(ext: str) -> str:
    if ext not in IMAGE_EXTS:
        raise DepthcliError(f"image extension {ext!r} is not one of {', '.join(IMAGE_EXTS)}")
    return ext


def all_frames_split(root: str | os.PathLike, ext: str = "png") -> list[SplitEntry]:
    """Every left-camera frame of every drive, for builds without a split file."""
    check_ext(ext)
    entries = [
        SplitEntry(path.parents[2].relative_to(root).as_posix(), int(path.stem), "l")
        for path in sorted(Path(root).glob(f"*/*/image_02/data/*.{ext}"))
        if path.stem.isdigit()
    ]
    if not entries:
        raise DepthcliError(f"{root} has no DATE/DRIVE/image_02/data/*.{ext} frames; check --ext")
    return entries


def resolve_samples(
    root: str | os.PathLike, entries: list[SplitEntry], frame_ids: tuple[int, ...] = (0, -1, 1), ext: str = "png"
) -> tuple[list[KittiSample], int]:
    """Attach frame paths to split entries -> (samples, number skipped for a missing neighbour).

    A missing centre frame means the split does not match the data: an error naming the line.
    A missing neighbour is normal at drive ends: the sample is skipped and counted.
    """
    check_ext(ext)
    samples, skipped = [], 0
    for entry in entries:
        paths = {
            offset: image_path(root, entry.folder, entry.frame_index + offset, entry.side, ext) for offset in frame_ids
        }
        centre = paths[0]
        if not centre.is_file():
            where = f"line {entry.line}" if entry.line else f"entry {entry.folder} {entry.frame_index}"
            raise DepthcliError(f"split {where} points at missing frame {centre}; check --root, --ext and the split")
        if all(path.is_file() for path in paths.values()):
            samples.append(KittiSample(entry, paths))
        else:
            skipped += 1
    return samples, skipped
