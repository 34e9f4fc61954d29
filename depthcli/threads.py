"""CPU threads for a job on a machine other jobs may share, decided in one place.

torch's default pool takes every core and its OpenMP workers spin while they wait. On a machine that
other jobs share, each parallel region then waits for whichever worker the scheduler has parked, and a
training step can take ~10-100x longer than on an idle machine (measured on 2 busy cores: 2 spinning
threads 30-50 s per step, 2 sleeping-while-waiting threads 8 s, 1 thread 2.5-5 s). So:

- `prefer_passive_omp_wait()` asks OpenMP to sleep rather than spin while waiting
  (`OMP_WAIT_POLICY=PASSIVE`); it must run before torch is imported (the CLI does it first thing);
- `configure_threads()` respects `OMP_NUM_THREADS`, takes an explicit count, or else uses the cores
  other processes leave idle, sampled from /proc/stat (`CpuLoadMonitor`).

This module imports torch only inside `configure_threads`, so that the CLI can call the first before.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

PASSIVE_WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def prefer_passive_omp_wait() -> None:
    """Ask OpenMP workers to sleep instead of spin while they wait (must run before torch is imported).

    On a shared machine it removes most of the slowdown described in the module docstring; a value
    the user set is kept.
    """
    for key, value in PASSIVE_WAIT_ENV.items():
        os.environ.setdefault(key, value)


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
    import torch

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
    import torch

    return torch.get_num_threads()
