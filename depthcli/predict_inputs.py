"""What `depthcli predict` reads: files, folders, globs, KITTI splits and videos, planned into frames
with unique output names, then decoded in order (an unreadable input is reported, never fatal).

`iter_network_inputs` also resizes every frame to the network size: still images are decoded in
DataLoader worker processes (while the net runs on the previous batch), video frames in order here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from depthcli.data.images import read_rgb
from depthcli.errors import DepthcliError
from depthcli.inference import images_to_batch
from depthcli.paths import GLOB_CHARS, check_input_file, glob_paths

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


@dataclass(frozen=True)
class InputFrame:
    """One image to predict: a still image file, or frame `frame_index` of a video file."""

    source: Path
    frame_index: int | None
    out_stem: PurePosixPath  # relative to the output folder, without suffix: "sub/img" or "clip/000010"

    @property
    def label(self) -> str:
        return str(self.source) if self.frame_index is None else f"{self.source} (frame {self.frame_index})"


def plan_inputs(
    inputs: Sequence[str | os.PathLike], recursive: bool = False, every: int = 1, exclude: Path | None = None
) -> tuple[list[InputFrame], list[tuple[str, str]]]:
    """Expand files, folders, globs and videos into frames with unique output stems.

    Returns `(frames, failures)`; a video that cannot be opened is a failure, not an error, so that
    the rest still runs. Paths under `exclude` (the output folder) are skipped, so re-running into a
    folder inside the input does not predict on its own outputs.
    """
    if every < 1:
        raise DepthcliError(f"--every {every}: must be 1 or more")
    if not inputs:
        raise DepthcliError("no INPUT given; pass image files, folders, globs or videos")
    frames: list[InputFrame] = []
    failures: list[tuple[str, str]] = []
    for text in inputs:
        for path, rel in _expand_input(str(text), recursive, exclude):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                video_frames, problem = _plan_video(path, rel, every)
                frames.extend(video_frames)
                if problem:
                    failures.append((str(path), problem))
            else:
                frames.append(InputFrame(path, None, rel.with_suffix("")))
    _check_unique_stems(frames)
    return frames, failures


def plan_split(inputs: Sequence[str | os.PathLike], split: str | os.PathLike) -> list[InputFrame]:
    """The frames of a KITTI split under the one INPUT root, with outputs named like the images inside it
    (DATE/DRIVE/image_02/data/FRAME_*), the layout `depthcli eval --predictions FOLDER` reads."""
    from depthcli.data.kitti import check_kitti_root, image_path
    from depthcli.data.standard_splits import read_split_argument

    if len(inputs) != 1:
        raise DepthcliError("--split takes exactly one INPUT: the KITTI raw root the split's frames are under")
    root = check_kitti_root(inputs[0])
    frames = []
    for entry in read_split_argument(split)[0]:
        path = image_path(root, entry.folder, entry.frame_index, entry.side, "png")
        path = path if path.is_file() or not path.with_suffix(".jpg").is_file() else path.with_suffix(".jpg")
        frames.append(InputFrame(path, None, PurePosixPath(path.relative_to(root).with_suffix("").as_posix())))
    return frames


def _expand_input(text: str, recursive: bool, exclude: Path | None) -> list[tuple[Path, PurePosixPath]]:
    """One INPUT -> (file, output-relative path) pairs; folders keep their inner structure."""
    path = Path(text)
    if not path.exists() and GLOB_CHARS & set(text):
        matches = glob_paths(text)
        if not matches:
            raise DepthcliError(f"input pattern {text!r} matches nothing; check the quoting and the path")
        return [pair for match in matches for pair in _expand_input(str(match), recursive, exclude)]
    if not path.is_dir():
        check_input_file(path, "input", "give image files, folders, globs or videos")
        return [(path, PurePosixPath(path.name))]
    # `**` never enters symlinked folders (a link back up the tree would never end), as in `glob_paths`
    pattern = "**/*" if recursive else "*"
    excluded = exclude.resolve() if exclude is not None else None
    files = []
    for child in sorted(path.glob(pattern)):
        rel = child.relative_to(path)
        if not child.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if excluded is not None and child.resolve().is_relative_to(excluded):
            continue
        files.append((child, PurePosixPath(rel.as_posix())))
    if not files:
        hint = "" if recursive else " (use --recursive to look into subfolders)"
        raise DepthcliError(f"input folder {path} holds no files{hint}")
    return files


def _plan_video(path: Path, rel: PurePosixPath, every: int) -> tuple[list[InputFrame], str | None]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return [], "cannot be opened as a video"
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers do not store it: count by decoding headers
            count = 0
            while capture.grab():
                count += 1
    finally:
        capture.release()
    if count == 0:
        return [], "video holds no frames"
    folder = rel.with_suffix("")
    return [InputFrame(path, index, folder / f"{index:06d}") for index in range(0, count, every)], None


def _check_unique_stems(frames: list[InputFrame]) -> None:
    seen: dict[PurePosixPath, InputFrame] = {}
    for frame in frames:
        other = seen.setdefault(frame.out_stem, frame)
        if other is not frame:
            raise DepthcliError(
                f"inputs {other.label} and {frame.label} would both write {frame.out_stem}_*; "
                "rename one or predict them into different --out folders"
            )


def iter_images(frames: Sequence[InputFrame]) -> Iterator[tuple[InputFrame, np.ndarray | None, str | None]]:
    """Yield `(frame, rgb, None)` or `(frame, None, reason)` in order; videos are decoded sequentially."""
    start = 0
    while start < len(frames):
        frame = frames[start]
        if frame.frame_index is None:
            try:
                yield frame, read_rgb(frame.source), None
            except DepthcliError as exc:
                suffix = frame.source.suffix.lower()
                not_image = suffix not in IMAGE_SUFFIXES
                yield frame, None, f"not an image file ({suffix or 'no suffix'})" if not_image else str(exc)
            start += 1
            continue
        stop = start
        while stop < len(frames) and frames[stop].source == frame.source and frames[stop].frame_index is not None:
            stop += 1
        yield from _iter_video(frames[start:stop])
        start = stop


def _iter_video(frames: Sequence[InputFrame]) -> Iterator[tuple[InputFrame, np.ndarray | None, str | None]]:
    wanted = {frame.frame_index: frame for frame in frames}
    capture = cv2.VideoCapture(str(frames[0].source))
    index = 0
    try:
        while wanted and capture.grab():
            frame = wanted.pop(index, None)
            if frame is not None:
                ok, bgr = capture.retrieve()
                if ok and bgr is not None:
                    yield frame, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None
                else:
                    yield frame, None, "frame cannot be decoded"
            index += 1
    finally:
        capture.release()
    for frame in wanted.values():
        yield frame, None, "video ended before this frame"


def _prepared(rgb: np.ndarray | None, problem: str | None, size: tuple[int, int], image_resize: str):
    """`(network input (3,h,w), original (h, w), None)` of a decoded image, or `(None, None, problem)`."""
    if rgb is None:
        return None, None, problem
    return images_to_batch([rgb], size, image_resize)[0], rgb.shape[:2], None


class _StillImages(Dataset):
    """Decode + resize still images (in DataLoader workers): `(position, *_prepared(...))`."""

    def __init__(self, frames: Sequence[InputFrame], size: tuple[int, int], image_resize: str) -> None:
        self.frames, self.size, self.image_resize = frames, size, image_resize

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, position: int):
        ((_, rgb, problem),) = iter_images(self.frames[position : position + 1])
        return position, *_prepared(rgb, problem, self.size, self.image_resize)


def iter_network_inputs(
    frames: Sequence[InputFrame], size: tuple[int, int], workers: int, image_resize: str = "torch"
) -> Iterator[tuple[InputFrame, torch.Tensor | None, tuple[int, int] | None, str | None]]:
    """`(frame, network input, original (h, w), None)` or `(frame, None, None, problem)`, in input order.

    Each frame is resized exactly as `depthcli eval` resizes (`images_to_batch`). Runs of still images
    are decoded by `workers` processes (0: here); runs of video frames here, in order.
    """
    start = 0
    while start < len(frames):
        is_video = frames[start].frame_index is not None
        stop = start
        while stop < len(frames) and (frames[stop].frame_index is not None) == is_video:
            stop += 1
        run = frames[start:stop]
        if is_video:
            for frame, rgb, problem in iter_images(run):
                yield frame, *_prepared(rgb, problem, size, image_resize)
        else:
            still = _StillImages(run, size, image_resize)
            loader = DataLoader(still, batch_size=None, num_workers=min(workers, len(run)), collate_fn=_as_is)
            for position, *prepared in loader:
                yield run[position], *prepared
        start = stop


def _as_is(item):
    return item
