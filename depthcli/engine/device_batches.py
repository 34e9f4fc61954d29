"""Batches on the training device: moving (nested) batches there, in channels-last when asked, and the
autocast context the nets run in (what `depthcli.engine.trainer` hands the task)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


def autocast_factory(amp: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """The `net_autocast` of a task: no-op for amp "off", else autocast to bf16 / fp16 on `device`."""
    if amp == "off":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """`batch` (tensors in dicts, lists, tuples) on `device`; 4-D float tensors channels-last when asked."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
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
