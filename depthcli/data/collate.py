"""Batching sample dicts so that a tensor shared between keys is collated, handed over and converted once.

Without augmentation a sample's ("color_aug", f, 0) is its ("color", f, 0) (`augment_sample`,
`_CachedDataset._finish`), and validation samples are always so. torch's `default_collate` stacks
every key separately, which doubles the image bytes that a DataLoader worker copies into shared
memory, the main process maps, and the device step turns into float. `collate_samples` stacks a
value once when every sample of the batch holds the same object under both keys; pickling between
processes keeps that sharing (one object, one memo entry) and `depthcli.engine.device_batches.to_device`
converts it once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import default_collate


def collate_samples(samples: list[Any]) -> Any:
    """`default_collate`, except that a dict key whose tensor is, in every sample, the very object held
    under an earlier key gets that key's batched tensor."""
    if not samples or not isinstance(samples[0], dict):
        return default_collate(samples)
    batch: dict = {}
    for key in samples[0]:
        earlier = next((k for k in batch if _same_in_every_sample(samples, key, k)), None)
        batch[key] = batch[earlier] if earlier is not None else default_collate([sample[key] for sample in samples])
    return batch


def _same_in_every_sample(samples: list[dict], key, other) -> bool:
    return all(isinstance(s[key], torch.Tensor) and s[key] is s[other] for s in samples)
