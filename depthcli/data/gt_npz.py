"""monodepth2's `gt_depths.npz`: per-frame ground-truth depth maps of a test split, read without trusting pickle.

monodepth2's `export_gt_depth.py` saves `np.savez_compressed(path, data=np.array(gt_depths))`: with frames
of one size that is a plain (N,H,W) float32 array; KITTI's dates differ in image size, so for the real
Eigen splits it is a 1-D *object* array of (H,W) float32 maps, which numpy stores as a pickle. Unpickling
runs whatever the file names, so object arrays are read with an unpickler that only builds numpy arrays
and dtypes (and refuses anything else); plain arrays are read with `allow_pickle=False`.

Written files follow the same layout; object arrays are pickled with protocol 3 (text global names) and the array
reconstructor named `numpy.core.multiarray._reconstruct`, a name numpy 1.x (monodepth2's environments)
and numpy 2.x both resolve.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depthcli.atomic import atomic_path
from depthcli.errors import DepthcliError

# The array reconstructor numpy's own pickles call, found without importing numpy's private modules.
_RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
_MODERN_NAME, _PORTABLE_NAME = b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and dtypes; any other global in the stream is refused."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _read_member(archive: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _, _, dtype = reader(handle)
        if not dtype.hasobject:
            handle.seek(0)
            return np.lib.format.read_array(handle, allow_pickle=False)
        try:
            return _ArrayOnlyUnpickler(handle, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError) as exc:
            raise DepthcliError(
                f"{path}: member {member} is a pickle that does not hold only numpy arrays ({exc}); not loading it"
            ) from None


def load_gt_depths(path: str | os.PathLike) -> list[np.ndarray]:
    """The depth maps of a monodepth2 `gt_depths.npz` (key `data`), as float32 (H,W) arrays in split order."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if "data.npy" not in archive.namelist():
                raise DepthcliError(
                    f"{path} has no 'data' array (members: {', '.join(archive.namelist()) or 'none'}); "
                    "expected monodepth2's gt_depths.npz from export_gt_depth.py or `depthcli data check --export-gt`"
                )
            data = _read_member(archive, "data.npy", path)
    except FileNotFoundError:
        raise DepthcliError(f"ground-truth file {path} does not exist") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DepthcliError(f"{path} is not a readable .npz file ({exc}); re-export it") from None
    maps = list(data) if isinstance(data, np.ndarray) and (data.dtype == object or data.ndim == 3) else None
    if maps is None or not all(isinstance(m, np.ndarray) and m.ndim == 2 and m.dtype.kind in "fiu" for m in maps):
        shape = getattr(data, "shape", None)
        raise DepthcliError(
            f"{path}: 'data' is {type(data).__name__} {shape}; expected (H,W) depth maps, one per frame"
        )
    if not maps:
        raise DepthcliError(f"{path} holds no depth maps")
    return [np.asarray(depth, dtype=np.float32) for depth in maps]


def save_gt_depths(path: str | os.PathLike, depths: Sequence[np.ndarray]) -> Path:
    """Write depth maps as monodepth2's `gt_depths.npz` (atomically; layout in the module docstring)."""
    depths = [np.asarray(depth, dtype=np.float32) for depth in depths]
    if len({depth.shape for depth in depths}) == 1:
        payload = np.stack(depths)
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, payload, allow_pickle=False)
    else:
        payload = np.empty(len(depths), dtype=object)
        payload[:] = depths
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(payload))
        body = pickle.dumps(payload, protocol=3).replace(_MODERN_NAME, _PORTABLE_NAME)
        buffer = io.BytesIO(header.getvalue() + body)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.npy", buffer.getvalue())
    return Path(path)
