"""One writer per output: an exclusive lock that the operating system drops when its holder dies.

`exclusive_lock(OUT, "cache build")` holds `flock` on `OUT.lock` for the duration of the block. A
second process asking for the same output fails at once with one line naming the holder's pid; a
process killed with -9 holds nothing (the kernel closes its files), so there is no stale lock to
clear by hand. The lock file is removed on a normal exit; one left by a killed process is reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from depthcli.errors import DepthcliError


def lock_path_for(target: str | os.PathLike) -> Path:
    target = Path(target)
    return target.with_name(target.name + ".lock")


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not written its pid yet"


@contextlib.contextmanager
def exclusive_lock(target: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the lock for `target` (yields the lock file's path) or raise a DepthcliError right away."""
    path = lock_path_for(target)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DepthcliError(f"cannot create lock file {path}: {exc.strerror}; choose a writable output") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DepthcliError(
                f"{target} is being written by another {command} ({holder}, lock {path}); wait for it to finish "
                "or choose another output"
            ) from None
        # The previous holder unlinks the file before letting go: if ours was unlinked meanwhile, lock anew.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
