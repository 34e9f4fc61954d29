"""External predictions for `depthcli eval --predictions`: one stacked .npy, or a folder of per-frame .npy.

A folder is what `depthcli predict --save npy` writes (NAME_disp.npy, monodepth2's scaled disparity at
network size, mirroring the input paths): each split entry is matched to the file whose path ends with
the longest tail of its image path, e.g. `DATE/DRIVE/image_02/data/0000000005_disp.npy` or just
`0000000005_disp.npy` when one drive was predicted from its own folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np

from depthcli.errors import DepthcliError
from depthcli.paths import check_input_file

PER_FRAME_SUFFIX = "_disp.npy"


def load_predictions(path: str | os.PathLike) -> np.ndarray:
    """An (N,h,w) or (N,1,h,w) float array from a .npy file (memory-mapped: predictions can be GBs)."""
    path = check_input_file(path, "predictions file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:2] != b"PK" and magic != b"\x93NUMPY":  # .npz archives are zip files, handled below
        raise DepthcliError(f"predictions file {path} is not a .npy file (no NPY header); save it with np.save")
    try:
        preds = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file (click would print "Aborted!")
        raise DepthcliError(
            f"predictions file {path} is not a readable .npy array ({exc}); save it with np.save"
        ) from None
    if not isinstance(preds, np.ndarray):
        raise DepthcliError(f"predictions file {path} holds several arrays; save one (N,H,W) array with np.save")
    return preds


def check_predictions(preds: np.ndarray, expected_count: int, source: str, split: str) -> np.ndarray:
    """Validate the shape and count of external predictions; returns them as (N,h,w)."""
    if preds.ndim == 4 and preds.shape[1] == 1:
        preds = preds[:, 0]
    real = preds.dtype.kind in "iuf"  # not complex, bool, strings or records
    if preds.ndim != 3 or min(preds.shape[1:], default=0) < 1 or not real:
        raise DepthcliError(
            f"predictions {source} have shape {preds.shape} ({preds.dtype}); expected a real-valued (N,H,W) array "
            f"with N = {expected_count} images of {split}"
        )
    if len(preds) != expected_count:
        raise DepthcliError(
            f"predictions {source} hold {len(preds)} images but split {split} has {expected_count}; "
            "predict the split's images in split order"
        )
    return preds


def _image_tails(name: str) -> list[PurePosixPath]:
    """Candidate relative stems of a KITTI entry name `folder frame side`, longest first."""
    folder, frame, side = name.split()
    camera = "image_02" if side == "l" else "image_03"
    full = PurePosixPath(folder) / camera / "data" / f"{int(frame):010d}"
    return [PurePosixPath(*full.parts[start:]) for start in range(len(full.parts))]


class PredictionFolder:
    """Per-frame predictions of a split in a folder, indexed like the split (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, names: list[str]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DepthcliError(f"predictions folder {self.folder} does not exist")
        if not all(len(name.split()) == 3 for name in names):
            raise DepthcliError(
                f"predictions folder {self.folder}: per-frame files are matched to KITTI split entries; "
                "for other data stack them into one (N,H,W) .npy in split order"
            )
        self.paths = [self._find(name) for name in names]
        seen: dict[Path, str] = {}
        for name, path in zip(names, self.paths, strict=True):
            if path in seen:
                raise DepthcliError(
                    f"predictions folder {self.folder}: {seen[path]} and {name} both match {path}; predict with "
                    "--recursive from the KITTI root so that the drive folders are kept"
                )
            seen[path] = name

    def _find(self, name: str) -> Path:
        for tail in _image_tails(name):
            path = self.folder / f"{tail}{PER_FRAME_SUFFIX}"
            if path.is_file():
                return path
        raise DepthcliError(
            f"predictions folder {self.folder} has no {_image_tails(name)[-1]}{PER_FRAME_SUFFIX} for {name} "
            f"(looked for {_image_tails(name)[0]}{PER_FRAME_SUFFIX} and its shorter tails)"
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        array = load_predictions(self.paths[index])
        return np.squeeze(np.asarray(array, dtype=np.float32))
