"""Image and depth-PNG decoding with one-line errors, RGB order, and the resize used everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from depthcli.errors import DepthcliError

_JPEG_MAGIC = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG"
_PNG_END = b"IEND"


def _read_bytes(path: Path, what: str) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DepthcliError(f"{what} {path} does not exist; check the dataset root and --ext") from None
    except OSError as exc:
        raise DepthcliError(f"cannot read {what} {path}: {exc.strerror}") from None


def _decode(path: str | os.PathLike, flags: int, what: str) -> np.ndarray:
    """Decode from bytes ourselves: cv2.imread returns None without saying why, libjpeg silently
    returns a grey-padded image for a truncated JPEG and libpng prints noise, so truncation is
    detected first by the missing end marker of either format."""
    path = Path(path)
    data = _read_bytes(path, what)
    head, tail = data[:4].tobytes(), data[-64:].tobytes()
    truncated = (head[:2] == _JPEG_MAGIC and _JPEG_END not in tail) or (head == _PNG_MAGIC and _PNG_END not in tail)
    if truncated:
        raise DepthcliError(f"{what} {path} is truncated (no end marker); re-extract or re-convert it")
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise DepthcliError(f"{what} {path} is corrupt or truncated (cannot be decoded); re-extract it")
    return image


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """PNG or JPEG -> uint8 HxWx3 RGB (the in-memory convention; OpenCV decodes to BGR)."""
    image = _decode(path, cv2.IMREAD_COLOR, "image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth_png(path: str | os.PathLike, scale: float = 256.0) -> np.ndarray:
    """16-bit depth PNG -> float32 metres (value / scale; 0 stays 0 = invalid).

    KITTI's improved ground truth uses scale 256; NYU exports in millimetres use 1000.
    """
    depth = _decode(path, cv2.IMREAD_UNCHANGED, "depth PNG")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DepthcliError(
            f"depth PNG {Path(path)} is {depth.dtype} with {depth.ndim} dims; expected a 16-bit single-channel PNG"
        )
    return depth.astype(np.float32) / np.float32(scale)


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to `(width, height)`; area interpolation when shrinking (no aliasing), linear otherwise."""
    width, height = size
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_rgb_lanczos(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 HxWx3 -> `(width, height)` with Pillow's LANCZOS filter, the resize of the official training and
    test scripts of monodepth2, DIFFNet and RA-Depth (`Image.ANTIALIAS`): antialiased when shrinking, uint8 out."""
    from PIL import Image

    width, height = size
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize, so that invalid (0) pixels never blend into valid depths."""
    width, height = size
    if depth.shape[1] == width and depth.shape[0] == height:
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
