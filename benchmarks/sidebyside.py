"""Side-by-side timing on a shared machine: what the machine is, and sides timed in alternating rounds.

Other jobs share the cores, so absolute times drift by factors; a ratio is only meaningful when both
sides ran under the same load. Each round times every side once in turn, each round gives its own
ratio, and the median over rounds is what the benchmarks report (with every round's ratio printed).
Also where the real KITTI sample the benchmarks read lives (`kitti_sample_root`).
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from depthcli.precision import cpu_has_native_bf16
from depthcli.threads import usable_cores


def machine_line(device: torch.device) -> str:
    """One line: CPU (or GPU) model, bf16 capability, cores, torch, threads, load average now."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = "native bf16 (AVX-512-BF16/AMX)" if cpu_has_native_bf16() else "no native bf16"
    return (
        f"{model}, {flags}, {usable_cores()} usable cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"{load_line()}"
    )


def kitti_sample_root() -> Path:
    """The real KITTI frames in tests/data (or under DEPTHCLI_SHARED_DATA, as the tests read them)."""
    override = os.environ.get("DEPTHCLI_SHARED_DATA")
    data = Path(override) if override else Path(__file__).resolve().parents[1] / "tests" / "data"
    return data / "kitti_raw_mini"


def load_line() -> str:
    if not hasattr(os, "getloadavg"):
        return "load average n/a"
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min)"


@dataclass
class Side:
    """A named thing to time. `run()` does one round's work and returns the wall seconds per unit it
    measured, or `(wall, cpu)` seconds per unit where it can also measure this process's CPU time
    (which other jobs' load barely changes, with one thread: a steadier ratio than wall time)."""

    name: str
    run: Callable[[], float | tuple[float, float]]
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    def record(self) -> None:
        result = self.run()
        wall, cpu = result if isinstance(result, tuple) else (result, None)
        self.seconds.append(wall)
        if cpu is not None:
            self.cpu_seconds.append(cpu)


def alternate(sides: list[Side], rounds: int, log: Callable[[str], None] = print) -> None:
    """`rounds` rounds, each running every side once in turn (the order rotates so no side always goes first)."""
    for round_index in range(rounds):
        shift = round_index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            side.record()
        log(f"  round {round_index + 1}/{rounds}: " + ", ".join(f"{s.name} {s.seconds[-1]:.3f} s" for s in sides))


def ratios(slow: Side, fast: Side, cpu: bool = False) -> list[float]:
    """Per-round speed-up of `fast` over `slow` (slow's seconds / fast's seconds), wall or CPU time."""
    if cpu:
        return [a / b for a, b in zip(slow.cpu_seconds, fast.cpu_seconds, strict=True)]
    return [a / b for a, b in zip(slow.seconds, fast.seconds, strict=True)]
