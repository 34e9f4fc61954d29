"""Evaluation sets: ground truth (and images, for checkpoints) of a split, loaded lazily per image.

Sources, chosen by the protocol's `gt` switch (docs/evaluation.md):
- KITTI raw root + split (a file or a shipped name such as ``eigen``): ``velodyne`` GT is projected from
  the scans, storing the velodyne x (``gt_depth velo-x``, the Eigen quirk) or the camera z; ``improved``
  GT is read from KITTI's 16-bit PNGs placed in each drive folder as
  ``DRIVE/proj_depth/groundtruth/image_02/%010d.png`` (``image_03`` for side r), where monodepth2's
  ``export_gt_depth.py`` looks; ``dense`` GT is the exact depth a synthetic world writes beside its frames
  (``DRIVE/depth_true/data/%010d.npy``).
- NYU (``nyu``): any layout ``depthcli.data.nyu.open_nyu`` reads; default images: the layout's test split.
  ``--split`` may name another ``splits.mat`` (its ``testNdxs``) or a text file of zero-based indices.
- An eval cache (``.h5`` from ``depthcli cache build`` without ``--size``): see `eval_cache`.
- monodepth2's ``gt_depths.npz`` (``--gt-npz FILE``): GT as exported, in split order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from depthcli.data import kitti, nyu
from depthcli.data.gt_npz import load_gt_depths
from depthcli.data.images import read_depth_png, read_rgb
from depthcli.data.standard_splits import read_split_argument
from depthcli.errors import DepthcliError
from depthcli.evaluation.protocols import Protocol, get_protocol

FRAME_FORMATS = ("auto", "png", "jpg", "jpeg92")
# monodepth2's own PNG -> JPEG conversion: ImageMagick `convert -quality 92 -sampling-factor 2x2,1x1,1x1`.
JPEG92_PARAMS = (
    cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
)  # fmt: skip


@dataclass
class EvalSet:
    """The images to score, in split order: a name per image and lazy loaders for GT and RGB.

    Lazy, because KITTI's 697 GT maps are 1.3 GB at full size and each is needed once per pass.
    """

    names: list[str]
    source: str  # the split file or cache, for error messages
    load_gt: Callable[[int], np.ndarray]  # index -> (H,W) float32 metres, 0 = invalid
    load_image: Callable[[int], np.ndarray] | None = None  # index -> uint8 HxWx3 RGB
    intrinsics: Callable[[int], np.ndarray] | None = None  # index -> 3x3 pixel K at GT size (0-based centres)
    drives: tuple[str, ...] = ()  # KITTI drive folders, for honest-selection checks
    gt_source: str = ""  # where GT came from, for JSON rows
    dense_gt: bool = False  # GT is dense and exact (NYU, synthetic worlds): edge and point-cloud metrics apply
    frames_read: set[str] = field(default_factory=set)  # image formats `load_image` has delivered so far

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_arrays(cls, gt_depths: Sequence[np.ndarray], source: str = "ground truth", dense: bool = False) -> EvalSet:
        """GT maps already in memory (no images): for scoring predictions from Python."""
        names = [f"image {i}" for i in range(len(gt_depths))]
        return cls(names, source, lambda i: gt_depths[i], gt_source=source, dense_gt=dense)

    def frames_label(self) -> str:
        """What fed a checkpoint: `png`, `jpg`, `jpeg92`, `png+jpg` (mixed), or `none` (no image read)."""
        return "+".join(sorted(self.frames_read)) or "none"


def entry_name(entry: kitti.SplitEntry) -> str:
    return f"{entry.folder} {entry.frame_index} {entry.side}"


def encode_jpeg92(rgb: np.ndarray) -> bytes:
    """An RGB frame as the JPEG file monodepth2's conversion makes (quality 92, 4:2:0 chroma subsampling).

    ImageMagick keeps full chroma above quality 90 unless told otherwise, hence monodepth2's explicit
    `-sampling-factor 2x2,1x1,1x1`. Same settings through OpenCV's libjpeg; bytes may still differ.
    """
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), JPEG92_PARAMS)
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return encoded.tobytes()


def kitti_image_loader(
    root: Path, entries: Sequence[kitti.SplitEntry], frames: str, used: set[str]
) -> Callable[[int], np.ndarray]:
    """RGB of an entry in the asked format; `auto` prefers PNG and accepts JPEG (users often convert).

    `jpeg92` reads the PNG and passes it through JPEG at monodepth2's settings (quality 92, 4:2:0 chroma),
    for comparing with numbers from converted datasets. Each format delivered is added to `used`.
    """
    if frames not in FRAME_FORMATS:
        raise DepthcliError(f"--frames {frames!r} is not one of {', '.join(FRAME_FORMATS)}")

    def load(index: int) -> np.ndarray:
        entry = entries[index]
        path = kitti.image_path(root, entry.folder, entry.frame_index, entry.side, "jpg" if frames == "jpg" else "png")
        if frames == "auto" and not path.is_file() and path.with_suffix(".jpg").is_file():
            path = path.with_suffix(".jpg")
        image = read_rgb(path)
        if frames == "jpeg92":
            encoded = np.frombuffer(encode_jpeg92(image), np.uint8)
            image = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        used.add("jpeg92" if frames == "jpeg92" else path.suffix[1:])
        return image

    return load


def gt_path(root: str | os.PathLike, entry: kitti.SplitEntry, gt: str) -> Path:
    """Where the GT of a split entry lives for a GT source (see the module docstring)."""
    drive = Path(root) / entry.folder
    if gt == "improved":
        camera = f"image_0{kitti.SIDE_TO_CAMERA[entry.side]}"
        return drive / "proj_depth" / "groundtruth" / camera / f"{entry.frame_index:010d}.png"
    if gt == "dense":
        return drive / "depth_true" / "data" / f"{entry.frame_index:010d}.npy"
    return kitti.velodyne_path(root, entry.folder, entry.frame_index)


GT_WHAT = {
    "velodyne": "velodyne scan (velodyne GT is projected from velodyne_points)",
    "improved": "improved ground-truth PNG (layout DRIVE/proj_depth/groundtruth/image_02/)",
    "dense": "dense true depth (DRIVE/depth_true/data/, written by `depthcli synth kitti`)",
}


@lru_cache(maxsize=64)
def kitti_intrinsics(calib_dir: Path, cam: int) -> np.ndarray:
    """3x3 pixel intrinsics of a rectified camera in depthcli's 0-based convention (cx, cy minus 1)."""
    k = kitti.rectified_projection(calib_dir, cam)[:3, :3].copy()
    k[0, 2] -= 1.0
    k[1, 2] -= 1.0
    return k


def intrinsics_from_normalised(k_norm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Normalised (4x4 or 3x3) intrinsics -> 3x3 pixels at `shape` (H,W); `cx = cx_n W - 0.5`."""
    height, width = shape
    k = np.eye(3)
    k[0, 0], k[0, 2] = k_norm[0, 0] * width, k_norm[0, 2] * width - 0.5
    k[1, 1], k[1, 2] = k_norm[1, 1] * height, k_norm[1, 2] * height - 0.5
    return k


def no_ground_truth(index: int) -> np.ndarray:
    raise RuntimeError("this evaluation set holds images only")


def kitti_frames(
    root: str | os.PathLike, split: str | os.PathLike, frames: str = "auto"
) -> tuple[EvalSet, list[kitti.SplitEntry], Path]:
    """The images of a KITTI split (no GT yet) -> (set, its entries, the checked root)."""
    root = kitti.check_kitti_root(root)
    entries, label = read_split_argument(split)
    used: set[str] = set()
    images = EvalSet(
        names=[entry_name(entry) for entry in entries],
        source=label,
        load_gt=no_ground_truth,
        load_image=kitti_image_loader(root, entries, frames, used),
        drives=tuple(sorted({entry.folder for entry in entries})),
        frames_read=used,
    )
    return images, entries, root


def kitti_eval_set(
    root: str | os.PathLike,
    split: str | os.PathLike,
    protocol: str | Protocol = "kitti-eigen",
    frames: str = "auto",
) -> EvalSet:
    """A KITTI raw root + split. Every GT file is checked up front, so that a split line without velodyne
    (or GT PNG) fails at once with its line number instead of after an hour of inference."""
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    images, entries, root = kitti_frames(root, split, frames)
    paths = [gt_path(root, entry, protocol.gt) for entry in entries]
    for entry, path in zip(entries, paths, strict=True):
        if not path.is_file():
            raise DepthcliError(
                f"split {images.source} line {entry.line} ({entry_name(entry)}): no {GT_WHAT[protocol.gt]} at "
                f"{path}; remove the line or add the file"
            )
    depth_value = "velo_x" if protocol.gt_depth == "velo-x" else "cam_z"

    def load_gt(index: int) -> np.ndarray:
        entry = entries[index]
        if protocol.gt == "improved":
            return read_depth_png(paths[index], scale=256.0)
        if protocol.gt == "dense":
            return np.load(paths[index], allow_pickle=False).astype(np.float32)
        calib = kitti.calib_dir_of(root, entry.folder)
        return kitti.velodyne_depth_map(
            calib, paths[index], cam=kitti.SIDE_TO_CAMERA[entry.side], depth_value=depth_value
        )

    def intrinsics(index: int) -> np.ndarray:
        entry = entries[index]
        return kitti_intrinsics(kitti.calib_dir_of(root, entry.folder), kitti.SIDE_TO_CAMERA[entry.side])

    what = {"velodyne": f"velodyne ({protocol.gt_depth})", "improved": "improved PNGs", "dense": "depth_true"}
    images.load_gt, images.intrinsics = load_gt, intrinsics
    images.gt_source = f"{what[protocol.gt]} under {root}"
    images.dense_gt = protocol.gt == "dense"
    return images


def read_index_list(path: str | os.PathLike, length: int) -> np.ndarray:
    """NYU image selection: a ``splits.mat`` (its test indices) or a text file of zero-based indices."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return nyu.read_nyu_splits(path, length)["test"]
    lines = kitti.read_split_lines(path)
    indices = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit() or int(text) >= length:
            raise DepthcliError(
                f"split file {path} line {number}: {text!r} is not a zero-based image index below {length}"
            )
        indices.append(int(text))
    if not indices:
        raise DepthcliError(f"split file {path} has no entries")
    return np.asarray(indices, dtype=np.int64)


def nyu_eval_set(root: str | os.PathLike, split: str | os.PathLike | None = None) -> EvalSet:
    """NYU frames to score: `split` (see `read_index_list`) or the layout's own test split."""
    source = nyu.open_nyu(root)
    if split is not None:
        indices, where = read_index_list(split, len(source)), str(split)
    elif "test" in source.splits:
        indices, where = source.splits["test"], f"{root} (test split)"
    else:
        raise DepthcliError(
            f"{root} defines no test split (no splits.mat beside the labelled .mat, no test/ or val/ folder); "
            "pass --split"
        )
    if len(indices) == 0:
        raise DepthcliError(f"{where} selects no images")
    indices = [int(i) for i in indices]
    k_norm = nyu.nyu_normalised_intrinsics()
    used: set[str] = set()

    def load_image(i: int) -> np.ndarray:
        used.add("nyu")
        return source[indices[i]][0]

    return EvalSet(
        names=[f"nyu {index}" for index in indices],
        source=where,
        load_gt=lambda i: source[indices[i]][1],
        load_image=load_image,
        intrinsics=lambda i: intrinsics_from_normalised(k_norm, source[indices[i]][1].shape),
        gt_source=f"NYU depth maps in {root}",
        dense_gt=True,
        frames_read=used,
    )


def npz_eval_set(gt_file: str | os.PathLike, images: EvalSet | None) -> EvalSet:
    """GT from monodepth2's `gt_depths.npz`; names, images and drives from `images` (the split) when given."""
    depths = load_gt_depths(gt_file)
    if images is not None and len(images) != len(depths):
        raise DepthcliError(
            f"{gt_file} holds {len(depths)} depth maps but split {images.source} has {len(images)} frames; "
            "export the GT of that split"
        )
    if images is None:
        return EvalSet([f"image {i}" for i in range(len(depths))], str(gt_file), lambda i: depths[i],
                       gt_source=f"gt_depths.npz {gt_file}")  # fmt: skip
    return EvalSet(
        names=images.names,
        source=images.source,
        load_gt=lambda i: depths[i],
        load_image=images.load_image,
        intrinsics=None,  # the file does not say which camera made it
        drives=images.drives,
        gt_source=f"gt_depths.npz {gt_file}",
        frames_read=images.frames_read,
    )
