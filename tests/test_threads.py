"""CPU thread choice: OMP_NUM_THREADS respected, explicit counts, idle cores from /proc/stat, passive waiting."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from depthcli import threads
from depthcli.threads import CpuLoadMonitor, configure_threads, idle_core_threads, prefer_passive_omp_wait

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _stat_line(busy_s: float, idle_s: float) -> str:
    """A /proc/stat "cpu" line: user, nice, system, idle, iowait, irq, softirq, steal (in clock ticks)."""
    user, idle = round(busy_s * CLOCK_TICKS), round(idle_s * CLOCK_TICKS)
    return f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"


def test_others_busy_is_machine_busy_minus_own_cpu_time(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    clock = {"now": 100.0, "own": 5.0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(threads.os, "times", lambda: SimpleNamespace(user=clock["own"], system=0.0))
    stat.write_text(_stat_line(busy_s=1000.0, idle_s=500.0))
    monitor = CpuLoadMonitor(stat)
    # 10 s later: the machine was busy for 15 CPU-seconds, 5 of them ours -> others kept 1 core busy
    clock["now"], clock["own"] = 110.0, 10.0
    stat.write_text(_stat_line(busy_s=1015.0, idle_s=505.0))
    assert monitor.others_busy() == pytest.approx(1.0, abs=0.02)
    # the next 10 s: the machine fully busy with our 2 threads alone -> nobody else
    clock["now"], clock["own"] = 120.0, 30.0
    stat.write_text(_stat_line(busy_s=1035.0, idle_s=505.0))
    assert monitor.others_busy() == pytest.approx(0.0, abs=0.02)
    assert CpuLoadMonitor(tmp_path / "missing").others_busy() is None


@pytest.mark.parametrize(
    "others, cores, expected",
    [(0.0, 2, 2), (0.4, 2, 2), (0.6, 2, 1), (1.7, 2, 1), (6.0, 2, 1), (2.2, 8, 6), (None, 4, 4)],
)
def test_idle_core_threads(others, cores, expected):
    assert idle_core_threads(others, cores) == expected


def test_omp_num_threads_is_respected(monkeypatch, restore_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert configure_threads(0) == 1 and torch.get_num_threads() == 1
    assert configure_threads(2) == 2 and torch.get_num_threads() == 2  # an explicit count wins
    with pytest.raises(ValueError):
        configure_threads(-1)


def test_auto_threads_use_the_idle_cores(tmp_path, monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_default_threads", lambda: 2)
    busy = SimpleNamespace(others_busy=lambda: 1.5)
    assert configure_threads(0, monitor=busy) == 1 and torch.get_num_threads() == 1
    idle = SimpleNamespace(others_busy=lambda: 0.1)
    assert configure_threads(0, monitor=idle) == 2 and torch.get_num_threads() == 2


def test_passive_wait_is_a_default_not_an_override(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    prefer_passive_omp_wait()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    prefer_passive_omp_wait()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
