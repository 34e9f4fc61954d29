"""monodepth2's own code as the reference side of the speed benchmarks (nothing of it is in this repo).

Get it from the package index:

    pip install --no-deps monodepth2==1.0.0          # its modules install top-level: trainer, networks, ...
    # or, to keep them out of site-packages: pip download --no-deps monodepth2==1.0.0 && unzip the wheel
    # into a folder and pass it as --monodepth2 DIR (or MONODEPTH2_DIR=DIR)

Its `trainer.py` imports `datasets` (its own KITTI loader, not in the wheel), `tensorboardX`, `six` and
`IPython` at module level; only the training step is timed here, so missing ones are replaced by
empty modules, and the data loader it builds in `Trainer.__init__` gets a placeholder dataset (the
benchmark feeds the step itself). Its networks need torchvision's ResNet: `torchvision_standin`
stands in where torchvision is not installed. The wheel's `compute_losses` calls `.cuda()` on its
tie-breaking noise (the GitHub source uses `device=`), so on a CPU-only machine `cpu_cuda_calls()`
turns `.cuda()` into a no-op around its step.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys
import types
import urllib
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from reference import torchvision_standin

HOW_TO_GET = (
    "monodepth2's code is not installed: `pip install --no-deps monodepth2==1.0.0`, or unpack that wheel "
    "into a folder and pass --monodepth2 DIR"
)
SCALES = (0, 1, 2, 3)
FRAME_IDS = (0, -1, 1)


class Monodepth2Missing(RuntimeError):
    pass


class _PlaceholderDataset(torch.utils.data.Dataset):
    """What `Trainer.__init__` builds its loaders from; never iterated (the benchmark feeds batches)."""

    def __init__(self, data_path, filenames, *args, **kwargs) -> None:
        self.filenames = filenames

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index):
        raise RuntimeError("the benchmark feeds monodepth2's step directly")


class _SummaryWriter:
    def __init__(self, *args, **kwargs) -> None:
        pass


def _missing(name: str) -> bool:
    return name not in sys.modules and importlib.util.find_spec(name) is None


def _stub(name: str, **attributes) -> None:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    sys.modules[name] = module


@functools.cache
def load(directory: str | None = None) -> types.SimpleNamespace:
    """Import monodepth2's trainer, networks, layers and options (raises Monodepth2Missing with how to get them)."""
    directory = directory or os.environ.get("MONODEPTH2_DIR")
    if directory:
        sys.path.insert(0, str(Path(directory).resolve()))
    if _missing("networks") or _missing("trainer"):
        raise Monodepth2Missing(HOW_TO_GET)
    torchvision_standin.install()
    stubs = {"datasets": {"KITTIRAWDataset": _PlaceholderDataset, "KITTIOdomDataset": _PlaceholderDataset},
             "tensorboardX": {"SummaryWriter": _SummaryWriter}, "IPython": {"embed": lambda *a, **k: None},
             "six": {}, "six.moves": {"urllib": urllib}}  # fmt: skip
    added = [name for name in stubs if _missing(name.split(".")[0])]
    for name in added:
        _stub(name, **stubs[name])
    try:
        modules = {name: importlib.import_module(name) for name in ("trainer", "networks", "layers", "options")}
    finally:  # the stubs served the imports only (matplotlib, for one, inspects any module named IPython)
        for name in added:
            sys.modules.pop(name, None)
    # whatever `datasets` resolved to (another package of that name, say), the Trainer builds placeholders
    modules["trainer"].datasets = types.SimpleNamespace(**stubs["datasets"])
    return types.SimpleNamespace(**modules)


def build_trainer(md2: types.SimpleNamespace, size: tuple[int, int], batch_size: int, log_dir: Path):
    """monodepth2's `Trainer` as its `train.py` builds it (ResNet-18 from scratch, separate pose ResNet)."""
    width, height = size
    args = ["--data_path", str(log_dir), "--log_dir", str(log_dir), "--model_name", "bench",
            "--width", str(width), "--height", str(height), "--batch_size", str(batch_size),
            "--num_workers", "0", "--weights_init", "scratch", "--png"]  # fmt: skip
    if not torch.cuda.is_available():
        args.append("--no_cuda")
    options = md2.options.MonodepthOptions().parser.parse_args(args)
    md2.trainer.readlines = lambda path: ["2011_09_26/2011_09_26_drive_0001_sync 1 l"] * batch_size
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        trainer = md2.trainer.Trainer(options)
    trainer.set_train()
    return trainer


def trainer_inputs(images: dict[int, torch.Tensor], K: torch.Tensor) -> dict:
    """monodepth2's input dict from float (B,3,H,W) frames at scale 0 and pixel intrinsics (B,4,4) at scale 0.

    Its dataset resizes every frame to 4 pyramid levels and scales K by 2**-s (its normalised K times
    the level's size); the colour-jittered copies equal the frames (no jitter), as on our side.
    """
    inputs = {}
    height, width = images[0].shape[-2:]
    for frame, image in images.items():
        for scale in SCALES:
            level = image if scale == 0 else F.interpolate(image, (height // 2**scale, width // 2**scale), mode="area")
            inputs[("color", frame, scale)] = level
            inputs[("color_aug", frame, scale)] = level
    for scale in SCALES:
        K_scale = K.clone()
        K_scale[:, :2] /= 2**scale
        inputs[("K", scale)] = K_scale
        inputs[("inv_K", scale)] = torch.linalg.inv(K_scale)
    return inputs


@contextlib.contextmanager
def cpu_cuda_calls() -> Iterator[None]:
    """`.cuda()` as a no-op where there is no CUDA (the wheel's compute_losses calls it)."""
    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def trainer_step(trainer, inputs: dict) -> float:
    """One step of monodepth2's `run_epoch` body: process_batch, zero_grad, backward, Adam step."""
    with cpu_cuda_calls():
        _, losses = trainer.process_batch(dict(inputs))
        trainer.model_optimizer.zero_grad()
        losses["loss"].backward()
        trainer.model_optimizer.step()
    return float(losses["loss"])
