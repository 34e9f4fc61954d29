"""A kill in the middle of a training run, for the resume tests: `on_step=kill_after(n)` stops `train` after
step n and its save, as Ctrl-C or a lost machine would."""

from __future__ import annotations

from collections.abc import Callable


class Killed(Exception):
    """What `kill_after` raises out of `train`."""


def kill_after(last_step: int) -> Callable[[int, dict[str, float]], None]:
    def kill(step: int, losses: dict[str, float]) -> None:
        if step == last_step:
            raise Killed

    return kill
