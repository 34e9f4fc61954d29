"""Mixed precision: which precision a job's networks run at on its device, decided in one place.

`amp="auto"` runs the networks under bf16 autocast where the hardware does bf16 natively: CUDA GPUs
that support it, and CPUs with AVX-512-BF16 or AMX (oneDNN then uses bf16 dot products; the
monodepth2 depth net's forward is about 2.4x faster than in float32). Elsewhere it falls back to
float32 with a one-time note. The losses stay float32 whatever the setting: tasks cast network outputs
with `.float()` before any loss maths.

torch is imported inside the functions, so that the CLI can validate `--amp` without loading it.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from depthcli.errors import DepthcliError

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
# CPU feature flags (Linux /proc/cpuinfo names) that give native bf16 matrix maths.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

if TYPE_CHECKING:
    import torch

_notes_given: set[str] = set()


class PerformanceNote(UserWarning):
    """A setting was adjusted for speed or capability (shown once per process)."""


def note_once(message: str) -> None:
    if message not in _notes_given:
        _notes_given.add(message)
        warnings.warn(message, PerformanceNote, stacklevel=3)


@functools.cache
def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU does bf16 dot products in hardware (AVX-512-BF16 or AMX-BF16 flags)."""
    if sys.platform != "linux":
        return False
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in CPU_BF16_FLAGS)
    return False


def device_has_native_bf16(device: torch.device) -> bool:
    import torch

    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve_amp(amp: str, device: torch.device) -> str:
    """The precision a run uses on `device`: "bf16", "fp16" or "off" (float32).

    "auto" picks bf16 where the device has native bf16 and float32 elsewhere (with a one-time note);
    an explicit "bf16" without native support still runs (emulated, slower than float32), with a note.
    """
    if amp not in AMP_CHOICES:
        raise DepthcliError(f"--amp {amp!r} is not one of {', '.join(AMP_CHOICES)}")
    native = device_has_native_bf16(device)
    if amp == "auto":
        if native:
            return "bf16"
        note_once(f"--amp auto: this {device.type} has no native bf16 (AVX-512-BF16/AMX or a bf16 GPU); using float32")
        return "off"
    if amp == "bf16" and not native:
        note_once(f"--amp bf16: this {device.type} has no native bf16; it is emulated and slower than --amp off")
    return amp


def autocast_factory(amp: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A context-manager factory that runs networks at the resolved precision `amp` ("off": no autocast)."""
    import torch

    if amp == "off":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
