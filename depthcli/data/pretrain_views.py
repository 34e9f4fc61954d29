"""Unlabelled images and the two views contrastive pretraining compares (GrMC on MoCo v2).

Image sources (`open_image_source`) are sequences of HxWx3 uint8 RGB images; depth, if the data has
any, is ignored. `PretrainViews` turns image i into
- "query": a random resized crop (area 20-100 %, aspect 3/4-4/3, MoCo v2), random flip, colour
  jitter (p 0.8, strength 0.4/0.4/0.4/0.1) and random greyscale (p 0.2), as (3,h,w) float in [0,1];
- "key": with `key="gradient"` (GrMC) the gradient field of the *same* crop and flip, before any
  colour change, replicated to 3 channels so that the key encoder is an exact twin of the query
  encoder (the momentum update needs identical parameter shapes); with `key="rgb"` (plain MoCo v2)
  a second, independent crop/flip/jitter of the same image.
Gaussian blur of MoCo v2 is left out: at the small crops used here it mostly erases the edges that
the gradient-field key is about.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from depthcli.atomic import atomic_path
from depthcli.data.augment import JitterParams, apply_jitter
from depthcli.data.cache_file import open_cache, read_entry, reopen_cache
from depthcli.data.images import read_rgb
from depthcli.errors import DepthcliError
from depthcli.gradient_field import gradient_field

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SOURCE_KINDS = ("nyu", "kitti", "folder")
KeyView = Literal["gradient", "rgb"]

CROP_SCALE = (0.2, 1.0)  # MoCo v2's RandomResizedCrop area range
CROP_RATIO = (3 / 4, 4 / 3)
JITTER_PROB, JITTER_STRENGTH = 0.8, (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
GREYSCALE_PROB = 0.2


# ------------------------------------------------------------------------------------ image sources
class _CacheImages:
    """RGB frames of a depthcli HDF5 cache (NYU: its "train" split when it has one; KITTI: every frame)."""

    def __init__(self, path: Path, dataset: str) -> None:
        self.path = path
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        with open_cache(path) as handle:
            stored = handle.attrs.get("dataset")
            if stored != dataset:
                raise DepthcliError(f"cache {path} holds {stored!r} data, not {dataset!r}; check --dataset")
            self.hw = handle["frames/hw"][()]
            split = handle.get("split/train") if dataset == "nyu" else None
            self.frames = split[()] if split is not None else np.arange(len(self.hw))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> np.ndarray:
        if self._handle is None or self._pid != os.getpid():  # one handle per (forked) process
            self._handle, self._pid = reopen_cache(self.path), os.getpid()
        frame = int(self.frames[index])
        return read_entry(self._handle, self.path, "frames/rgb", frame, self.hw[frame])

    def min_hw(self) -> tuple[int, int]:
        sizes = self.hw[self.frames]
        return int(sizes[:, 0].min()), int(sizes[:, 1].min())

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handle": None, "_pid": None}


class _FileImages:
    """Image files read one at a time."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_rgb(self.paths[index])

    def min_hw(self) -> tuple[int, int]:
        return self[0].shape[:2]  # checking every file would decode them all; the rest are checked when read


class _NyuImages:
    """RGB of a raw NYU source (labelled .mat, .h5 frames, PNG pairs): its train split when it defines one."""

    def __init__(self, root: Path) -> None:
        from depthcli.data.nyu import open_nyu

        self.source = open_nyu(root)
        splits = getattr(self.source, "splits", {}) or {}
        self.indices = splits["train"] if "train" in splits else np.arange(len(self.source))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.source[int(self.indices[index])][0]

    def min_hw(self) -> tuple[int, int]:
        return self[0].shape[:2]


def _is_cache(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".h5", ".hdf5")


def open_image_source(data: str | os.PathLike, dataset: str) -> Sequence[np.ndarray]:
    """Images to pretrain on: `dataset` nyu (cache or raw root), kitti (cache or raw root) or folder.

    NYU uses its training split when the data defines one, so that test images stay unseen.
    """
    path = Path(data)
    if dataset not in SOURCE_KINDS:
        raise DepthcliError(f"--dataset {dataset!r} is not one of {', '.join(SOURCE_KINDS)}")
    if not path.exists():
        raise DepthcliError(f"--data {path} does not exist; give a cache file, a dataset root or an image folder")
    if _is_cache(path) and dataset in ("nyu", "kitti"):
        source = _CacheImages(path, dataset)
    elif dataset == "nyu":
        source = _NyuImages(path)
    elif dataset == "kitti":
        from depthcli.data.kitti import check_kitti_root

        root = check_kitti_root(path)
        paths = sorted(p for p in root.glob("*/*_sync/image_0[23]/data/*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise DepthcliError(f"KITTI root {root} has no DATE/*_sync/image_02/data images")
        source = _FileImages(paths)
    else:
        if not path.is_dir():
            raise DepthcliError(f"--data {path} is not a folder; --dataset folder needs a folder of images")
        paths = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        source = _FileImages(paths)
    if len(source) == 0:
        raise DepthcliError(f"--data {path} holds no images ({', '.join(IMAGE_EXTENSIONS)}); point it at your images")
    return source


# ----------------------------------------------------------------------------------------- views
def _check_size(image_hw: tuple[int, int], crop: tuple[int, int], where: str) -> None:
    height, width = image_hw
    if height < crop[1] or width < crop[0]:
        raise DepthcliError(
            f"{where} is {width}x{height}, smaller than the crop {crop[0]}x{crop[1]}; choose a smaller --size"
        )


def random_resized_box(
    height: int, width: int, rng: np.random.Generator, scale=CROP_SCALE, ratio=CROP_RATIO
) -> tuple[int, int, int, int]:
    """(top, left, box_h, box_w) covering a random area fraction in `scale` at an aspect (w/h) in `ratio`.

    Ten tries as torchvision's RandomResizedCrop, then the largest centred box of a valid aspect.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        box_w, box_h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < box_w <= width and 0 < box_h <= height:
            return int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1)), box_h, box_w
    aspect = min(max(width / height, ratio[0]), ratio[1])
    box_w, box_h = (width, round(width / aspect)) if width / height < aspect else (round(height * aspect), height)
    return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


def crop_view(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random resized crop of `image` resized to `size` (width, height), mirrored with p 0.5 (uint8)."""
    top, left, box_h, box_w = random_resized_box(*image.shape[:2], rng)
    crop = cv2.resize(image[top : top + box_h, left : left + box_w], size, interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def colour_view(crop: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """MoCo v2's colour distortion of a uint8 crop: jitter (p 0.8) then greyscale (p 0.2), (3,h,w) in [0,1]."""
    image = torch.from_numpy(crop).permute(2, 0, 1).float().div_(255.0)
    if rng.random() < JITTER_PROB:
        b, c, s, h = JITTER_STRENGTH
        params = JitterParams(
            brightness=rng.uniform(1 - b, 1 + b),
            contrast=rng.uniform(1 - c, 1 + c),
            saturation=rng.uniform(1 - s, 1 + s),
            hue=rng.uniform(-h, h),
        )
        image = apply_jitter(image, params)
    if rng.random() < GREYSCALE_PROB:
        grey = (image * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
        image = grey.expand(3, -1, -1).contiguous()
    return image


def gradient_view(crop: np.ndarray) -> torch.Tensor:
    """The crop's gradient field as a (3,h,w) tensor: one channel replicated for the RGB-shaped encoder."""
    field = torch.from_numpy(gradient_field(crop))
    return field.expand(3, -1, -1).contiguous()


class PretrainViews(Dataset):
    """Query/key views of `source` images for contrastive pretraining (module docstring)."""

    def __init__(self, source: Sequence[np.ndarray], size: tuple[int, int], key: KeyView = "gradient") -> None:
        if key not in ("gradient", "rgb"):
            raise DepthcliError(f"--key {key!r} is not one of gradient, rgb")
        self.source, self.size, self.key = source, tuple(size), key
        _check_size(source.min_hw() if hasattr(source, "min_hw") else source[0].shape[:2], self.size, "an image")

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        image = self.source[index]
        _check_size(image.shape[:2], self.size, f"image {index}")
        # Seeded from torch's RNG, which the trainer seeds per sample (reproducible, resumable).
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        crop = crop_view(image, self.size, rng)
        query = colour_view(crop, rng)
        key = gradient_view(crop) if self.key == "gradient" else colour_view(crop_view(image, self.size, rng), rng)
        return {"query": query, "key": key, "index": index}


def save_gradient_fields(source: Sequence[np.ndarray], out_dir: str | os.PathLike, count: int = 4) -> list[Path]:
    """Write the first `count` images and their gradient fields as NNNN_image.png / NNNN_gradient.png."""
    out_dir = Path(out_dir)
    written = []
    for index in range(min(count, len(source))):
        image = np.asarray(source[index])
        field = np.round(gradient_field(image) * 255.0).astype(np.uint8)
        for name, pixels in (("image", cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), ("gradient", field)):
            path = out_dir / f"{index:04d}_{name}.png"
            ok, encoded = cv2.imencode(".png", pixels)
            if not ok:
                raise DepthcliError(f"could not encode {path} as PNG")
            with atomic_path(path) as tmp:
                tmp.write_bytes(encoded.tobytes())
            written.append(path)
    return written
