"""NYU Depth v2 in its three common shapes, each read lazily one frame at a time.

- the labelled `nyu_depth_v2_labeled.mat` (MATLAB v7.3 = HDF5) with `splits.mat` (1-based indices);
- the sparse-to-dense / FastDepth layout: one `.h5` per frame (`rgb` (3,H,W) uint8, `depth` (H,W));
- a folder of PNG pairs. Pairing rule: `rgb/NAME.png|jpg` pairs with `depth/NAME.png` (same stem),
  16-bit depth in millimetres (`depth_unit="mm"`) or value/256 (`depth_unit="256"`).

Every source is a sequence: `len(source)`, `source[i] -> (rgb HxWx3 uint8, depth HxW float32 metres)`,
`source.names` (one label per frame, for messages) and `source.splits` (name -> zero-based indices)
where the layout defines them.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from depthcli.data.images import read_depth_png, read_rgb
from depthcli.data.kitti import normalised_from_pixel_intrinsics
from depthcli.errors import DepthcliError
from depthcli.paths import check_input_file

# Kinect colour intrinsics of NYU v2 at 640x480 (Silberman et al. toolbox), normalised by W and H.
NYU_INTRINSICS_PX = {"fx": 518.857901, "fy": 519.469611, "cx": 325.582449, "cy": 253.736166, "w": 640, "h": 480}
DEPTH_UNITS = {"mm": 1000.0, "256": 256.0}


def nyu_normalised_intrinsics() -> np.ndarray:
    """The Kinect intrinsics normalised with the pixel-centre convention (taken as 0-based pixels)."""
    p = NYU_INTRINSICS_PX
    return normalised_from_pixel_intrinsics(np.array([[p["fx"], 0, p["cx"]], [0, p["fy"], p["cy"]]]), (p["w"], p["h"]))


def _open_h5(path: Path) -> h5py.File:
    check_input_file(path, "NYU file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DepthcliError(f"{path} is not a readable HDF5 / MATLAB v7.3 file ({exc}); re-download it") from None


def _dataset(handle: h5py.File, name: str, ndim: int, path: Path) -> h5py.Dataset:
    if name not in handle or not isinstance(handle[name], h5py.Dataset) or handle[name].ndim != ndim:
        raise DepthcliError(f"{path} has no {ndim}-d dataset {name!r}; is it the NYU labelled .mat / a NYU .h5?")
    return handle[name]


class NyuLabeledMat:
    """The labelled `.mat`; MATLAB stores column-major so h5py sees `images` as (N,3,W,H), `depths` (N,W,H).

    The file is 2.8 GB: frames are read one by one, the handle opens on first access (so an instance
    can cross a fork unopened).
    """

    def __init__(self, path: str | os.PathLike, splits_path: str | os.PathLike | None = None):
        self.path = Path(path)
        with _open_h5(self.path) as handle:
            images = _dataset(handle, "images", 4, self.path)
            depths = _dataset(handle, "depths", 3, self.path)
            if images.shape[0] != depths.shape[0] or images.shape[1] != 3 or images.shape[2:] != depths.shape[1:]:
                raise DepthcliError(
                    f"{self.path}: images {images.shape} and depths {depths.shape} do not match (N,3,W,H) / (N,W,H)"
                )
            self._length = images.shape[0]
            self.has_raw_depth = "rawDepths" in handle
        self.splits = read_nyu_splits(splits_path, self._length) if splits_path is not None else {}
        self._handle: h5py.File | None = None

    def __len__(self) -> int:
        return self._length

    @property
    def names(self) -> list[str]:
        """One label per frame for messages: `file.mat[i]`."""
        return [f"{self.path.name}[{i}]" for i in range(self._length)]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.ascontiguousarray(self._file()["images"][index].transpose(2, 1, 0))
        depth = np.ascontiguousarray(self._file()["depths"][index].T, dtype=np.float32)
        return rgb, depth

    def raw_depth(self, index: int) -> np.ndarray:
        """The un-inpainted Kinect depth (0 = hole), where the file has `rawDepths`."""
        if not self.has_raw_depth:
            raise DepthcliError(f"{self.path} has no 'rawDepths' dataset")
        return np.ascontiguousarray(self._file()["rawDepths"][index].T, dtype=np.float32)

    def _file(self) -> h5py.File:
        if self._handle is None:
            self._handle = _open_h5(self.path)
        return self._handle

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_nyu_splits(path: str | os.PathLike, length: int | None = None) -> dict[str, np.ndarray]:
    """`splits.mat` (`trainNdxs`, `testNdxs`, MATLAB 1-based) -> {"train": idx, "test": idx}, zero-based."""
    path = check_input_file(path, "NYU splits file")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy reports damaged files as ValueError, TypeError, OSError, zlib.error, ...
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DepthcliError(f"{path} is not a MATLAB splits file ({reason}); give NYU's splits.mat") from None
    splits = {}
    for name, key in (("train", "trainNdxs"), ("test", "testNdxs")):
        if key not in mat:
            raise DepthcliError(f"NYU splits file {path} has no {key!r}")
        values = np.asarray(mat[key])
        whole = values.dtype.kind in "iu" or (
            values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values))
        )
        if not whole:
            raise DepthcliError(
                f"NYU splits file {path}: {key} is {values.dtype} {values.shape}, not a list of whole-number "
                "image indices; give NYU's splits.mat"
            )
        one_based = values.astype(np.int64).ravel()
        if one_based.size and (one_based.min() < 1 or (length is not None and one_based.max() > length)):
            raise DepthcliError(f"NYU splits file {path}: {key} indices outside 1..{length}")
        splits[name] = one_based - 1
    return splits


class NyuFrameH5Folder:
    """Sparse-to-dense layout: `ROOT/{train,val}/SCENE/NNNNN.h5`, one frame per file; `val` is the test split."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.paths = sorted(self.root.rglob("*.h5"))
        if not self.paths:
            raise DepthcliError(f"{self.root} holds no .h5 frames")
        top = [path.relative_to(self.root).parts[0] for path in self.paths]
        self.splits = {
            name: np.array([i for i, folder in enumerate(top) if folder in folders], dtype=np.int64)
            for name, folders in (("train", ("train",)), ("test", ("val", "test")))
        }
        self.splits = {name: idx for name, idx in self.splits.items() if idx.size}

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def names(self) -> list[str]:
        return [path.relative_to(self.root).as_posix() for path in self.paths]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return read_nyu_frame_h5(self.paths[index])


def read_nyu_frame_h5(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One sparse-to-dense frame: `rgb` (3,H,W) uint8 -> HxWx3, `depth` (H,W) -> float32 metres."""
    path = Path(path)
    with _open_h5(path) as handle:
        rgb = _dataset(handle, "rgb", 3, path)[()]
        depth = _dataset(handle, "depth", 2, path)[()]
    if rgb.shape[0] != 3 or rgb.shape[1:] != depth.shape:
        raise DepthcliError(f"{path}: rgb {rgb.shape} and depth {depth.shape} do not match (3,H,W) / (H,W)")
    return np.ascontiguousarray(rgb.transpose(1, 2, 0)).astype(np.uint8), depth.astype(np.float32)


class NyuPngFolder:
    """`rgb/NAME.(png|jpg)` + `depth/NAME.png` pairs, directly under ROOT or under ROOT/train and ROOT/test."""

    def __init__(self, root: str | os.PathLike, depth_unit: str = "mm"):
        if depth_unit not in DEPTH_UNITS:
            raise DepthcliError(f"depth unit {depth_unit!r} is not one of {', '.join(DEPTH_UNITS)}")
        self.root, self.depth_scale = Path(root), DEPTH_UNITS[depth_unit]
        split_dirs = [name for name in ("train", "test") if (self.root / name / "rgb").is_dir()]
        self.pairs: list[tuple[Path, Path]] = []
        self.splits = {}
        for name in split_dirs or [None]:
            base = self.root / name if name else self.root
            start = len(self.pairs)
            self.pairs += _pairs_in(base)
            if name:
                self.splits[name] = np.arange(start, len(self.pairs), dtype=np.int64)
        if not self.pairs:
            raise DepthcliError(f"{self.root} has no rgb/NAME.png + depth/NAME.png pairs")

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> list[str]:
        return [rgb.relative_to(self.root).as_posix() for rgb, _ in self.pairs]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb_path, depth_path = self.pairs[index]
        return read_rgb(rgb_path), read_depth_png(depth_path, self.depth_scale)


def _pairs_in(base: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for rgb_path in sorted(p for p in (base / "rgb").glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        depth_path = base / "depth" / f"{rgb_path.stem}.png"
        if not depth_path.is_file():
            raise DepthcliError(f"{rgb_path} has no depth partner {depth_path} (pairs share the file stem)")
        pairs.append((rgb_path, depth_path))
    return pairs


def open_nyu(root: str | os.PathLike, splits_path: str | os.PathLike | None = None, depth_unit: str = "mm"):
    """Pick the reader from what ROOT is: a .mat file, a folder with one labelled .mat, .h5 frames, or PNG pairs.

    A labelled .mat uses `splits_path`, or a `splits.mat` beside it when present.
    """
    root = Path(root)
    if not root.exists():
        raise DepthcliError(f"dataset root {root} does not exist")
    if not root.is_dir():
        mat_path = check_input_file(root, "dataset root")
    else:
        mats = [p for p in sorted(root.glob("*.mat")) if p.name != "splits.mat"]
        if len(mats) > 1:
            raise DepthcliError(
                f"{root} holds several .mat files ({', '.join(p.name for p in mats)}); pass one as --root"
            )
        mat_path = mats[0] if mats else None
    if mat_path is not None:
        beside = mat_path.parent / "splits.mat"
        if splits_path is None and beside.is_file():
            splits_path = beside
        return NyuLabeledMat(mat_path, splits_path)
    if any(root.rglob("*.h5")):
        return NyuFrameH5Folder(root)
    if (root / "rgb").is_dir() or (root / "train" / "rgb").is_dir() or (root / "test" / "rgb").is_dir():
        return NyuPngFolder(root, depth_unit)
    raise DepthcliError(
        f"{root} is not a NYU layout (no labelled .mat, no .h5 frames, no rgb/ + depth/ folders); "
        "see `depthcli cache build --help`"
    )
