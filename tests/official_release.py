"""Release folders of the official projects, regenerated from committed key/shape lists (numpy + torch only).

`tests/fixtures/official/make_fixtures.py` builds the official networks, fills them with `release_state`
and records their outputs; the tests rebuild the very same files from the committed key lists, so no
weight file is committed. Values come from numpy's legacy `RandomState` (its streams never change
between numpy releases): convolution and linear weights ~ N(0, 1 / (2 fan_in)), biases and BatchNorm
means ~ 0.1 N(0, 1), BatchNorm scales in [0.8, 1.2) and running variances in [0.5, 1.5), so that every
tensor, the BatchNorm statistics included, shapes the output and a wrong mapping cannot go unnoticed.
(At the full 1 / fan_in variance the 40-odd residual blocks and summed fusions of HRNet grow the
features a thousandfold and the sigmoid disparity saturates at 1, which would hide every error.)

This module must import nothing from depthcli: it also runs in the scratch environment of the
official code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official"
PROJECTS = ("monodepth2", "diffnet", "radepth")
# Trainers count BatchNorm updates; any integer will do, it does not affect inference.
BATCHES_TRACKED = 1000
# Each release file draws from its own stream: fixture seed + offset.
FILE_SEED_OFFSETS = {"encoder.pth": 0, "depth.pth": 100, "pose_encoder.pth": 200, "pose.pth": 300}
DEPTH_IMAGE_SEED_OFFSET, POSE_FRAMES_SEED_OFFSET = 1, 2


def _values(name: str, shape: list[int], rng: np.random.RandomState) -> torch.Tensor:
    if name.endswith("num_batches_tracked"):
        return torch.tensor(BATCHES_TRACKED, dtype=torch.int64)
    if name.endswith("running_var"):
        data = 0.5 + rng.random_sample(shape)
    elif name.endswith("running_mean") or name.endswith("bias"):
        data = 0.1 * rng.standard_normal(shape)
    elif len(shape) == 1:  # BatchNorm scale
        data = 0.8 + 0.4 * rng.random_sample(shape)
    else:
        fan_in = int(np.prod(shape[1:]))
        data = rng.standard_normal(shape) / np.sqrt(2 * fan_in)
    return torch.from_numpy(np.asarray(data, dtype=np.float32).reshape(shape))


def release_state(keys: list[list], seed: int, aliases: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """State dict with the official `[name, shape]` list's names, in its order, filled from `seed`.

    `aliases` maps a name to another name of the same list holding the same tensor (DIFFNet's decoder is
    registered twice); aliased names copy their target instead of drawing new values.
    """
    rng = np.random.RandomState(seed)
    aliases = aliases or {}
    state = {name: _values(name, shape, rng) for name, shape in keys if name not in aliases}
    return {name: state[aliases[name]].clone() if name in aliases else state[name] for name, _ in keys}


def file_state(facts: dict, filename: str) -> dict[str, torch.Tensor]:
    """The tensors of one release file of the fixture `facts` (without encoder.pth's size entries)."""
    aliases = facts.get("aliases", {}).get(filename)
    return release_state(facts["files"][filename], facts["seed"] + FILE_SEED_OFFSETS[filename], aliases)


def _images(count: int, facts: dict, offset: int) -> np.ndarray:
    width, height = facts["size"]
    rng = np.random.RandomState(facts["seed"] + offset)
    return rng.randint(0, 256, size=(count, height, width, 3)).astype(np.uint8)


def depth_image(facts: dict) -> np.ndarray:
    """The uint8 RGB image (H, W, 3) at the training size whose official disparity the fixture records."""
    return _images(1, facts, DEPTH_IMAGE_SEED_OFFSET)[0]


def pose_frames(facts: dict) -> np.ndarray:
    """The two uint8 RGB frames (2, H, W, 3) whose official poses the fixture records (frame 0 first)."""
    return _images(2, facts, POSE_FRAMES_SEED_OFFSET)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W,3) or (H,W,3) -> float (N,3,H,W) in [0, 1], as torchvision's ToTensor does."""
    batch = images if images.ndim == 4 else images[None]
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div(255)


def load_fixture(project: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(key lists and facts, recorded official outputs) of `project`."""
    facts = json.loads((FIXTURES / f"{project}.json").read_text(encoding="utf-8"))
    with np.load(FIXTURES / f"{project}_outputs.npz") as outputs:
        return facts, dict(outputs)


def release_files(facts: dict) -> dict[str, dict[str, torch.Tensor]]:
    """Every file of the release the fixture describes, as the official trainer's `save_model` writes it."""
    files = {}
    for filename in facts["files"]:
        state = file_state(facts, filename)
        if filename == "encoder.pth":
            state.update(height=facts["size"][1], width=facts["size"][0], use_stereo=False)
        files[filename] = state
    return files


def write_release(folder: Path, facts: dict, skip: tuple[str, ...] = ()) -> Path:
    """Write the release files of `facts` (all but `skip`) into `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for filename, state in release_files(facts).items():
        if filename not in skip:
            torch.save(state, folder / filename)
    return folder


def linked_copy(src: Path, dst: Path, own: tuple[str, ...] = ()) -> Path:
    """`dst` holding symlinks to `src`'s files, except real copies of the `own` ones, which a test may change."""
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.name in own:
            (dst / path.name).write_bytes(path.read_bytes())
        else:
            (dst / path.name).symlink_to(path)
    return dst
