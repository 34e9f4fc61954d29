"""Batches on the training device: moving (nested) batches there, uint8 images turned into float in [0, 1]
on arrival, in channels-last when asked (what `depthcli.engine.trainer` hands the task)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from depthcli.data.augment import as_float_image


def to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """`batch` (tensors in dicts, lists, tuples) on `device`; batched uint8 images (B,C,H,W) become float32 in
    [0, 1] there, and 4-D float tensors channels-last when asked.

    Datasets may hand images over as uint8 (a quarter of the bytes to collate and transfer); the sample-dict
    contract the tasks see (float images in [0, 1]) is restored here, on the device.
    """
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if batch.dim() == 4:
            batch = as_float_image(batch)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {key: to_device(value, device, channels_last) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device, channels_last) for value in batch)
    return batch


class DeviceLoader:
    """Iterates a DataLoader, moving each batch to the training device (what `validate` receives)."""

    def __init__(self, loader: DataLoader, device: torch.device, channels_last: bool) -> None:
        self.loader, self.device, self.channels_last = loader, device, channels_last

    def __iter__(self) -> Iterator[dict]:
        for batch in self.loader:
            yield to_device(batch, self.device, self.channels_last)

    def __len__(self) -> int:
        return len(self.loader)
