"""Seeds that make a run reproducible and resumable bit for bit, whatever the number of DataLoader workers.

Every sample is produced under its own seed derived from (seed, epoch, index), the sampler permutation
comes from (seed, epoch), and the main process RNG states travel in the checkpoint
(`capture_rng_state` / `restore_rng_state`), so a resumed run takes exactly the steps an uninterrupted
run would have taken.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python RNGs (call before building the task so its init is reproducible)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python runs (unlike `hash`)."""
    return int(
        np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1
    )


class ResumableSampler(Sampler):
    """DistributedSampler (also for one process) yielding `(index, sample_seed)` from a resumable position."""

    def __init__(self, dataset: Dataset, seed: int, rank: int, world_size: int) -> None:
        self.base = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.seed, self.epoch, self.skip = seed, 0, 0

    def set_position(self, epoch: int, skip: int) -> None:
        """Start `epoch`'s permutation after its first `skip` indices (those already trained on)."""
        self.base.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self.base):
            if position >= self.skip:
                yield index, derive_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return len(self.base) - self.skip


class SeededDataset(Dataset):
    """Wraps a dataset: key `(index, seed)` produces sample `index` with every RNG seeded from `seed`,
    leaving the caller's RNGs as they were (what `ResumableSampler` feeds it)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        numpy_state, python_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(numpy_state)
                random.setstate(python_state)


def capture_rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / python RNG states as tensors and plain values (weights_only-loadable)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": version,
            "state": torch.tensor(python_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the RNG states `capture_rng_state` took."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"].tolist()), python_state["gauss_next"]))
