"""torch Datasets over a depthcli HDF5 cache, returning the sample dicts of docs/architecture.md.

The HDF5 handle is opened on first use in the process that reads (each DataLoader worker opens its
own after the fork; h5py handles neither pickle nor survive a fork). The small tables (frame
indices, sizes, intrinsics, split) are read once at construction and shared as numpy arrays.

`uint8_images=True` hands images over as uint8 (3,H,W), as stored: a quarter of the bytes for the
DataLoader to collate and pass between processes, which dominated loading as float32. The training
loop's device step turns batched uint8 images into float in [0, 1] (`depthcli.engine.trainer`), so the
tasks still see the sample dicts of docs/architecture.md. Augmentations keep the dtype they are given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from depthcli.data.augment import augment_sample
from depthcli.data.cache_file import open_cache, read_entry, reopen_cache
from depthcli.data.kitti import monodepth2_pixel_intrinsics
from depthcli.errors import DepthcliError
from depthcli.geometry import intrinsics_from_normalised

Transform = Callable[[dict], dict]


class _CachedDataset(Dataset):
    """Lazy per-process HDF5 handle plus the common sample assembly."""

    dataset_name = ""

    def __init__(self, path: str | os.PathLike, augment: bool, transform: Transform | None, uint8_images: bool):
        self.path = Path(path)
        self.augment = augment
        self.transform = transform
        self.uint8_images = uint8_images
        self._handle: h5py.File | None = None
        self._handle_pid: int | None = None
        with open_cache(self.path) as handle:
            if handle.attrs.get("dataset") != self.dataset_name:
                raise DepthcliError(
                    f"cache {self.path} holds {handle.attrs.get('dataset')!r} data, not {self.dataset_name!r}"
                )
            self.frame_hw = handle["frames/hw"][()]
            self._read_tables(handle)

    def _read_tables(self, handle: h5py.File) -> None:
        raise NotImplementedError

    def _file(self) -> h5py.File:
        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = reopen_cache(self.path)
            self._handle_pid = os.getpid()
        return self._handle

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"], state["_handle_pid"] = None, None
        return state

    def _image(self, frame: int) -> torch.Tensor:
        pixels = read_entry(self._file(), self.path, "frames/rgb", frame, self.frame_hw[frame])
        # contiguous (3,H,W): a permuted view would make the DataLoader's collate copy slowly
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        if self.uint8_images:
            return image.contiguous()
        return image.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)

    def _finish(self, sample: dict, K_norm: np.ndarray | None, index: int) -> dict:
        """Add K (from `K_norm`, or monodepth2's fixed camera when None), augment, transform."""
        height, width = sample[("color", 0, 0)].shape[-2:]
        if K_norm is not None:
            self._set_intrinsics(sample, intrinsics_from_normalised(torch.from_numpy(K_norm), width, height).float())
        sample["index"] = index
        if self.augment:
            sample = augment_sample(sample)
        else:
            sample.update({("color_aug", *key[1:]): value for key, value in sample.items() if key[0:1] == ("color",)})
        if K_norm is None:  # monodepth2 keeps its camera on flipped images too
            self._set_intrinsics(sample, torch.from_numpy(monodepth2_pixel_intrinsics(width, height)))
        return self.transform(sample) if self.transform is not None else sample

    @staticmethod
    def _set_intrinsics(sample: dict, K: torch.Tensor) -> None:
        sample[("K", 0)], sample[("inv_K", 0)] = K, torch.linalg.inv(K)


class CachedKittiDataset(_CachedDataset):
    """KITTI samples from a cache: frames at `frame_ids` offsets, K, and depth_gt for eval caches.

    `intrinsics="calibration"` gives each sample its drive's calibrated camera; "monodepth2" the one
    fixed camera monodepth2 uses for all of KITTI, in its pixel convention (`monodepth2_pixel_intrinsics`).
    """

    dataset_name = "kitti"
    INTRINSICS = ("calibration", "monodepth2")

    def __init__(
        self,
        path: str | os.PathLike,
        frame_ids: tuple[int, ...] = (0, -1, 1),
        augment: bool = False,
        transform: Transform | None = None,
        intrinsics: str = "calibration",
        uint8_images: bool = False,
    ):
        if intrinsics not in self.INTRINSICS:
            raise DepthcliError(f"intrinsics {intrinsics!r} is not one of {', '.join(self.INTRINSICS)}")
        self.frame_ids, self.intrinsics = tuple(frame_ids), intrinsics
        super().__init__(path, augment, transform, uint8_images)

    def _read_tables(self, handle: h5py.File) -> None:
        offsets = [int(o) for o in handle["samples/frames"].attrs["offsets"]]
        missing = [f for f in self.frame_ids if f not in offsets]
        if missing:
            raise DepthcliError(
                f"cache {self.path} stores frame offsets {offsets}, not {missing}; build a training cache "
                f"(`depthcli cache build --size WxH --frame-ids {','.join(str(f) for f in self.frame_ids)}`)"
            )
        columns = [offsets.index(f) for f in self.frame_ids]
        self.sample_frames = handle["samples/frames"][()][:, columns]
        self.K_norm = handle["samples/K"][()]
        self.gt_hw = handle["samples/gt_hw"][()] if "samples/depth_gt" in handle else None

    def __len__(self) -> int:
        return len(self.sample_frames)

    def __getitem__(self, index: int) -> dict:
        sample = {
            ("color", f, 0): self._image(frame)
            for f, frame in zip(self.frame_ids, self.sample_frames[index], strict=True)
        }
        if self.gt_hw is not None:
            depth = read_entry(self._file(), self.path, "samples/depth_gt", index, self.gt_hw[index])
            sample["depth_gt"] = torch.from_numpy(depth)[None]
        return self._finish(sample, self.K_norm[index] if self.intrinsics == "calibration" else None, index)


class CachedNyuDataset(_CachedDataset):
    """NYU frames of one split ("train", "test" or "all") from a cache, with dense depth_gt."""

    dataset_name = "nyu"

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "train",
        augment: bool = False,
        transform: Transform | None = None,
        uint8_images: bool = False,
    ):
        self.split = split
        super().__init__(path, augment, transform, uint8_images)

    def _read_tables(self, handle: h5py.File) -> None:
        available = list(handle["split"])
        if self.split not in available:
            raise DepthcliError(f"cache {self.path} has no split {self.split!r}; it has {', '.join(available)}")
        self.frames = handle["split"][self.split][()]
        self.K_norm = handle.attrs["K"].astype(np.float32)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        frame = int(self.frames[index])
        depth = read_entry(self._file(), self.path, "frames/depth", frame, self.frame_hw[frame])
        sample = {("color", 0, 0): self._image(frame), "depth_gt": torch.from_numpy(depth)[None]}
        return self._finish(sample, self.K_norm, index)
