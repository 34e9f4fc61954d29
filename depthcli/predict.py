"""Run a trained depth net over images, folders, globs and videos and write what users look at.

Per frame: a colour-mapped disparity picture at the input's own size (PNG, or JPEG as monodepth2's
test_simple.py writes it), monodepth2's scaled disparity `.npy` at network resolution (what its
test_simple.py and `--save_pred_disps` save, and what `depthcli eval --predictions` reads), and
optionally metric depth as a 16-bit PNG. Output names mirror input names; unreadable inputs are
collected and reported, never allowed to stop the good ones.

Throughput (`predict_frames`): still images are decoded and resized to the network size in DataLoader
worker processes, batches run through the net (bf16 autocast and channels-last where the hardware
does bf16 natively, `--amp auto`), and a writer thread encodes and writes each batch's outputs while
the next batch runs. Video frames are decoded in order in the main process.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from depthcli.atomic import atomic_write_bytes
from depthcli.devices import resolve_device
from depthcli.errors import DepthcliError
from depthcli.geometry import disp_to_depth
from depthcli.inference import IMAGE_RESIZES, model_device, run_depth_net
from depthcli.nets import check_input_size
from depthcli.nets.loading import load_depth_model
from depthcli.paths import refuse_output_overwriting_inputs
from depthcli.precision import autocast_factory, resolve_amp
from depthcli.predict_inputs import InputFrame, iter_network_inputs, plan_inputs, plan_split
from depthcli.threads import configure_threads
from depthcli.visualize import colorize_disparity, colormap_lut

# What each `--save` kind writes, as a suffix appended to the input's stem.
OUTPUT_SUFFIXES = {"png": "_disp.png", "jpg": "_disp.jpeg", "npy": "_disp.npy", "depth16": "_depth.png"}
# Colour-mapped kinds: the same picture, lossless or small and ~30x faster to encode (monodepth2's format).
COLOUR_KINDS = ("png", "jpg")
# quality 95 without chroma subsampling: disparity colours change from pixel to pixel
JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
DEFAULT_SAVE = ("png", "npy")
# 16-bit depth PNGs store metres x 256 (the KITTI depth benchmark convention): 1/256 m steps, max 255.99 m.
DEPTH16_SCALE = 256.0


@dataclass
class PredictOptions:
    """Everything `predict` needs besides the model and the inputs (one object per job)."""

    size: tuple[int, int]
    save: tuple[str, ...] = DEFAULT_SAVE
    colormap: str = "magma"
    batch_size: int = 8
    scale_factor: float | None = None
    min_depth: float = 0.1
    max_depth: float = 100.0
    image_resize: str = "torch"  # depthcli.inference.IMAGE_RESIZES
    workers: int = 2  # decoding processes for still images (0: decode in the main process)
    amp: str = "off"  # resolved precision of the net: "bf16", "fp16" or "off"


# Batches whose outputs may wait for the writer thread before the next forward waits for them.
PENDING_WRITES = 2


@dataclass
class PredictResult:
    """What was written where, and which inputs failed (label, reason)."""

    out_dir: Path
    frames_done: int = 0
    written: dict[str, list[Path]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)


def parse_save(text: str | None, scale_factor: float | None) -> tuple[str, ...]:
    """`"png,npy,depth16"` -> kinds; default png+npy, plus depth16 when a scale factor is given."""
    if text is None:
        return DEFAULT_SAVE + (("depth16",) if scale_factor is not None else ())
    kinds = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [kind for kind in kinds if kind not in OUTPUT_SUFFIXES]
    if unknown or not kinds:
        raise DepthcliError(f"--save {text!r}: choose a comma list of {', '.join(OUTPUT_SUFFIXES)}")
    if "depth16" in kinds and scale_factor is None:
        raise DepthcliError(
            "--save depth16 needs --scale-factor F (metric depth = F x the network's relative depth); "
            "without a known scale only disparity can be saved"
        )
    return kinds


def output_paths(frame: InputFrame, out_dir: Path, save: Sequence[str]) -> dict[str, Path]:
    """Where each saved kind of `frame` goes."""
    return {kind: out_dir / f"{frame.out_stem}{OUTPUT_SUFFIXES[kind]}" for kind in save}


def ensure_writable(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be created or written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DepthcliError(f"--out {out_dir} is a file; predict writes into a folder: choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise DepthcliError(f"output folder {out_dir} is not writable ({exc.strerror}); choose another --out") from None


def check_existing(frames: Sequence[InputFrame], out_dir: Path, save: Sequence[str]) -> None:
    """Refuse to overwrite silently: name the first existing output and how many there are."""
    existing = [path for frame in frames for path in output_paths(frame, out_dir, save).values() if path.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise DepthcliError(f"output {existing[0]} already exists{more}; pass --overwrite to replace it")


def predict_frames(
    model: torch.nn.Module,
    frames: Sequence[InputFrame],
    out_dir: Path,
    options: PredictOptions,
    on_progress: Callable[[int], None] | None = None,
) -> PredictResult:
    """Predict every frame in batches on the model's device and write its outputs (see the module docstring).

    `on_progress(n)` is called after every n frames handled (written or failed).
    """
    result = PredictResult(out_dir=out_dir, written={kind: [] for kind in options.save})
    autocast = autocast_factory(options.amp, model_device(model))
    pending: deque[tuple[Future, int]] = deque()
    batch: list[tuple[InputFrame, torch.Tensor, tuple[int, int]]] = []

    def collect(block_beyond: int) -> None:
        """Book the finished writes (in order); wait while more than `block_beyond` batches are pending."""
        while pending and (len(pending) > block_beyond or pending[0][0].done()):
            future, count = pending.popleft()
            for paths in future.result():  # re-raises a failed write here
                for kind, path in paths.items():
                    result.written[kind].append(path)
            result.frames_done += count
            if on_progress is not None:
                on_progress(count)

    def flush(writer: ThreadPoolExecutor) -> None:
        if not batch:
            return
        with autocast():
            disps = run_depth_net(model, torch.stack([tensor for _, tensor, _ in batch]), options.size)
        disps = disps[:, 0].float().cpu().numpy()
        jobs = [(frame, original_hw, disp) for (frame, _, original_hw), disp in zip(batch, disps, strict=True)]
        pending.append((writer.submit(_write_batch, jobs, out_dir, options), len(jobs)))
        batch.clear()
        collect(PENDING_WRITES)

    inputs = iter_network_inputs(frames, options.size, options.workers, options.image_resize)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="depthcli-writer") as writer:
        for frame, tensor, original_hw, problem in inputs:
            if tensor is None:
                result.failures.append((frame.label, problem or "unreadable"))
                if on_progress is not None:
                    on_progress(1)
                continue
            batch.append((frame, tensor, original_hw))
            if len(batch) >= options.batch_size:
                flush(writer)
        flush(writer)
        collect(0)
    return result


def _write_batch(jobs, out_dir: Path, options: PredictOptions) -> list[dict[str, Path]]:
    return [write_outputs(frame, original_hw, disp, out_dir, options) for frame, original_hw, disp in jobs]


def write_outputs(
    frame: InputFrame, original_hw: tuple[int, int], disp: np.ndarray, out_dir: Path, options: PredictOptions
) -> dict[str, Path]:
    """Write one frame's outputs from its network-resolution disparity `disp` (h, w)."""
    paths = output_paths(frame, out_dir, options.save)
    height, width = original_hw
    disp = np.ascontiguousarray(disp, dtype=np.float32)
    full = cv2.resize(disp, (width, height), interpolation=cv2.INTER_LINEAR)
    bgr = None  # the colour picture, made once for however many colour kinds are saved
    for kind, path in paths.items():
        if kind == "npy":  # monodepth2's scaled disparity, 1/max_depth .. 1/min_depth, at network size
            scaled, _ = disp_to_depth(disp, options.min_depth, options.max_depth)
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(scaled, dtype=np.float32))
            atomic_write_bytes(path, buffer.getvalue())
        elif kind in COLOUR_KINDS:
            if bgr is None:
                bgr = np.ascontiguousarray(colorize_disparity(full, options.colormap)[:, :, ::-1])
            atomic_write_bytes(path, _encode(bgr, kind))
        else:  # depth16
            _, depth = disp_to_depth(full.astype(np.float64), options.min_depth, options.max_depth)
            metric = depth * options.scale_factor * DEPTH16_SCALE
            atomic_write_bytes(path, _encode(np.clip(np.rint(metric), 0, 65535).astype(np.uint16), "png"))
    return paths


def _encode(image: np.ndarray, kind: str) -> bytes:
    extension, params = (".jpg", JPEG_PARAMS) if kind == "jpg" else (".png", [])
    ok, encoded = cv2.imencode(extension, image, params)
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode a {kind.upper()}")
    return encoded.tobytes()


def predict(
    inputs: Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    save: Sequence[str] | None = None,
    colormap: str = "magma",
    batch_size: int = 8,
    device: str = "auto",
    scale_factor: float | None = None,
    recursive: bool = False,
    every: int = 1,
    overwrite: bool = False,
    image_resize: str = "torch",
    split: str | os.PathLike | None = None,
    workers: int = 2,
    amp: str = "auto",
    threads: int = 0,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PredictResult:
    """The whole job, as `depthcli predict` runs it. Every check happens before the first prediction.

    `size` defaults to the checkpoint's training size; `on_start(total)` is called once the inputs
    are planned (total = frames + inputs that already failed). With `split`, the one input is a KITTI
    root and the split's frames are predicted (`plan_split`). `workers` decoding processes (0: none),
    `amp` the net's precision ("auto": bf16 where the device does it natively, disparities within 1e-2;
    "off": float32, the numbers `eval` computes), `threads` CPU threads (0: `OMP_NUM_THREADS`, else the
    idle cores).
    """
    out_dir = Path(out_dir)
    if batch_size < 1:
        raise DepthcliError(f"--batch-size {batch_size}: must be 1 or more")
    if workers < 0:
        raise DepthcliError(f"--workers {workers}: must be 0 or more")
    if scale_factor is not None and not (math.isfinite(scale_factor) and scale_factor > 0):
        raise DepthcliError(f"--scale-factor {scale_factor}: must be a positive finite number")
    kinds = parse_save(None if save is None else ",".join(save), scale_factor)
    if any(kind in COLOUR_KINDS for kind in kinds):
        colormap_lut(colormap)  # an unknown colormap fails now, not once per image
    if size is not None:
        check_input_size(*size)
    if image_resize not in IMAGE_RESIZES:
        raise DepthcliError(f"--image-resize {image_resize!r}: choose one of {', '.join(IMAGE_RESIZES)}")
    torch_device = resolve_device(device)
    if split is not None:
        frames, failures = plan_split(inputs, split), []
    else:
        frames, failures = plan_inputs(inputs, recursive=recursive, every=every, exclude=out_dir)
    refuse_output_overwriting_inputs(
        [("output", path) for frame in frames for path in output_paths(frame, out_dir, kinds).values()],
        [("--checkpoint", checkpoint), *(("input", frame.source) for frame in frames)],
    )
    if not overwrite:
        check_existing(frames, out_dir, kinds)
    precision = resolve_amp(amp, torch_device)
    if torch_device.type == "cpu":
        configure_threads(threads)
    model = load_depth_model(checkpoint, device=torch_device)
    if precision != "off":  # NHWC convolutions: faster with bf16 on CPU (oneDNN) and GPU
        model.net.to(memory_format=torch.channels_last)
    ensure_writable(out_dir)
    options = PredictOptions(
        size=tuple(size) if size is not None else model.size,
        save=kinds,
        colormap=colormap,
        batch_size=batch_size,
        scale_factor=scale_factor,
        min_depth=model.min_depth,
        max_depth=model.max_depth,
        image_resize=image_resize,
        workers=workers,
        amp=precision,
    )
    if on_start is not None:
        on_start(len(frames) + len(failures))
    if on_progress is not None and failures:
        on_progress(len(failures))
    result = predict_frames(model.net, frames, out_dir, options, on_progress=on_progress)
    result.failures = failures + result.failures
    return result
