"""Batches on the training device: moving (nested) batches there, uint8 images turned into float in [0, 1]
on arrival, in channels-last when asked (what `depthcli.engine.trainer` hands the task)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


def to_device(batch: Any, device: torch.device, channels_last: bool, _done: dict | None = None) -> Any:
    """`batch` (tensors in dicts, lists, tuples) on `device`; batched uint8 images (B,C,H,W) become float32 in
    [0, 1] there, and 4-D float tensors channels-last when asked.

    Datasets may hand images over as uint8 (a quarter of the bytes to collate and transfer); the sample-dict
    contract the tasks see (float images in [0, 1]) is restored here, on the device. A tensor held under
    several keys (`depthcli.data.collate`) is moved and converted once and stays shared.
    """
    done = {} if _done is None else _done
    if isinstance(batch, torch.Tensor):
        if id(batch) not in done:
            done[id(batch)] = _tensor_to_device(batch, device, channels_last)
        return done[id(batch)]
    if isinstance(batch, dict):
        return {key: to_device(value, device, channels_last, done) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device, channels_last, done) for value in batch)
    return batch


def _tensor_to_device(tensor: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    tensor = tensor.to(device, non_blocking=True)
    if tensor.dim() != 4:
        return tensor
    layout = torch.channels_last if channels_last else torch.contiguous_format
    if tensor.dtype == torch.uint8:  # one pass: the float copy is made in the layout the nets want
        return tensor.to(torch.float32, memory_format=layout).div_(255.0)
    return tensor.contiguous(memory_format=layout) if channels_last and tensor.is_floating_point() else tensor


class DeviceLoader:
    """Iterates a DataLoader, moving each batch to the training device (what `validate` receives)."""

    def __init__(self, loader: DataLoader, device: torch.device, channels_last: bool) -> None:
        self.loader, self.device, self.channels_last = loader, device, channels_last

    def __iter__(self) -> Iterator[dict]:
        for batch in self.loader:
            yield to_device(batch, self.device, self.channels_last)

    def __len__(self) -> int:
        return len(self.loader)
