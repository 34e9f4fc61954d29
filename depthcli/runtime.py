"""How a job uses the machine: CPU threads, mixed precision and memory format, decided in one place.

Threads. torch's default pool takes every core and its OpenMP workers spin while they wait. On a
machine that other jobs share, a parallel region then waits for whichever worker the scheduler has
parked, and a training step can take ~100x longer than on an idle machine (measured: 2 threads on
2 busy cores, 30-50 s per step; 1 thread, 2.5-5 s). So `configure_threads` respects
`OMP_NUM_THREADS`, takes an explicit count, or else uses the cores other processes leave idle
(sampled from /proc/stat), and the CLI asks OpenMP to sleep rather than spin while waiting
(`OMP_WAIT_POLICY=PASSIVE`, set before torch loads, unless the user set it).

Precision. `amp="auto"` runs the networks under bf16 autocast where the hardware does bf16 natively:
CUDA GPUs that support it, and CPUs with AVX-512-BF16 or AMX (oneDNN then uses bf16 dot products,
about 2.4x faster convolutions than float32). Elsewhere it falls back to float32 with a one-time
note. The losses stay float32 whatever the setting: tasks cast network outputs with `.float()`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
# CPU feature flags (Linux /proc/cpuinfo names) that give native bf16 matrix maths.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PASSIVE_WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}

_notes_given: set[str] = set()


class PerformanceNote(UserWarning):
    """A setting was adjusted for speed or capability (shown once per process)."""


def note_once(message: str) -> None:
    if message not in _notes_given:
        _notes_given.add(message)
        warnings.warn(message, PerformanceNote, stacklevel=3)


def prefer_passive_omp_wait() -> None:
    """Ask OpenMP workers to sleep instead of spin while they wait (must run before torch is imported).

    Idle-machine cost is small (convolutions keep every worker busy); on a shared machine it removes
    most of the slowdown described in the module docstring. A value the user set is kept.
    """
    for key, value in PASSIVE_WAIT_ENV.items():
        os.environ.setdefault(key, value)


# ------------------------------------------------------------------------------------------ threads
def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class CpuLoadMonitor:
    """Cores kept busy by *other* processes since the last reading (Linux /proc/stat; None elsewhere)."""

    def __init__(self, stat_path: str | Path = "/proc/stat") -> None:
        self.stat_path = Path(stat_path)
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall seconds, machine busy CPU-seconds, this process's CPU-seconds), or None without /proc/stat."""
        try:
            fields = self.stat_path.read_text().split("\n", 1)[0].split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        ticks = [float(value) for value in fields[1:]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
        tick_s = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        own = os.times()
        return time.monotonic(), (sum(ticks[:8]) - idle) * tick_s, own.user + own.system

    def others_busy(self) -> float | None:
        """Average number of cores other processes used since the previous call (or construction)."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] - last[0] <= 0:
            return None
        busy = (now[1] - last[1]) - (now[2] - last[2])
        return max(0.0, busy / (now[0] - last[0]))


def idle_core_threads(others_busy: float | None, cores: int) -> int:
    """Threads for the cores others leave idle: `round(cores - others_busy)`, at least 1, at most `cores`."""
    if others_busy is None:
        return cores
    return max(1, min(cores, int(cores - others_busy + 0.5)))


def configure_threads(threads: int = 0, monitor: CpuLoadMonitor | None = None, sample_s: float = 0.3) -> int:
    """Set torch's intra-op thread count and return it.

    `threads` > 0 is used as given. Otherwise `OMP_NUM_THREADS`, when set, is respected (torch has
    already applied it). Otherwise the count is the number of cores other processes leave idle, measured
    by `monitor` since its last reading (a fresh monitor samples for `sample_s` seconds).
    """
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if threads == 0 and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    if threads == 0:
        if monitor is None:
            monitor = CpuLoadMonitor()
            time.sleep(sample_s)
        threads = idle_core_threads(monitor.others_busy(), min(usable_cores(), _default_threads()))
    torch.set_num_threads(threads)
    return threads


@functools.cache
def _default_threads() -> int:
    """torch's own choice at start-up (physical cores), remembered before anything changes it."""
    return torch.get_num_threads()


# ---------------------------------------------------------------------------------------- precision
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
        from depthcli.errors import DepthcliError

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
    if amp == "off":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def fused_adam_supported(device: torch.device) -> bool:
    """torch's fused Adam runs on CPU and CUDA; one kernel over all parameters instead of ~10 per tensor."""
    return device.type in ("cpu", "cuda")
