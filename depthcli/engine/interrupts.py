"""Stopping a run cleanly on SIGTERM (what cluster schedulers send before they kill a job) or Ctrl-C.

While `stop_requests()` is active, SIGTERM and the first Ctrl-C (SIGINT) only note the request: the loop
finishes its step, saves and raises `TrainingInterrupted`, whose exit status follows the shell's
convention (128 + signal: 143 for SIGTERM, 130 for Ctrl-C) and whose message is the command that
resumes the run. A second Ctrl-C stops at once (KeyboardInterrupt). DataLoader workers ignore both
signals (`ignore_stop_signals`): a terminal's Ctrl-C and a scheduler's SIGTERM reach every process of
the job, and a worker that died of it would fail the step that the save needs.

A validation that fails mid-run stops the run too, after the loop saved it: `validation_failure` is
what it reports.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from depthcli.errors import DepthcliError

SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


class TrainingInterrupted(DepthcliError):
    """The run stopped on a signal after saving; exit status 128 + the signal's number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_status = 128 + signum


class StopRequest:
    """The signal that asked the run to stop (None until one did)."""

    signum: int | None = None


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Within the block SIGTERM and a first Ctrl-C set `request.signum` instead of ending the process.

    Signal handlers can only be installed from the main thread; elsewhere the block changes nothing.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def note(signum: int, _frame) -> None:
        if signum == signal.SIGINT and request.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if request.signum is None:
            again = " (Ctrl-C again stops at once)" if signum == signal.SIGINT else ""
            sys.stderr.write(f"\n{SIGNAL_NAMES[signum]}: saving after this step{again}\n")
        request.signum = signum

    previous = {signum: signal.signal(signum, note) for signum in SIGNAL_NAMES}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader `worker_init_fn`: the main process decides when the run stops (module docstring)."""
    for signum in SIGNAL_NAMES:
        signal.signal(signum, signal.SIG_IGN)


def validation_failure(
    failure: Exception | None, step: int, data: str | None, saved: Path, resume_command: str
) -> Exception:
    """What a run raises once it saved after its validation failed (`failure`; None: it failed on rank 0,
    seen from another rank): one line naming the data and how to continue when the data is at fault (a
    DepthcliError or an OSError, e.g. a damaged cache), the original error otherwise (a bug keeps its
    traceback)."""
    if failure is not None and not isinstance(failure, (DepthcliError, OSError)):
        return failure
    text = str(failure).strip()
    reason = "on rank 0" if failure is None else text.splitlines()[0][:200] if text else type(failure).__name__
    return DepthcliError(
        f"validation at step {step} failed ({reason}){f' on {data}' if data else ''}; the run is saved in "
        f"{saved}: repair or rebuild the validation data (or drop --val-data), then continue with "
        f"`{resume_command}`"
    )
