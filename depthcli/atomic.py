"""Write-then-rename, so that an interrupted job never leaves a half-written file that looks valid."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from depthcli.errors import DepthcliError
from depthcli.paths import check_output_file


def current_umask() -> int:
    """The process umask, read from /proc where possible (no window in which another thread sees umask 0).

    Elsewhere POSIX only lets us read it by setting it, so it is set back at once.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _final_mode(final_path: Path) -> int:
    """Mode the finished file should get: the existing file's, else what a plain `open()` would create.

    `tempfile.mkstemp` creates 0600 files; without this every artefact would be private to its owner.
    """
    try:
        return final_path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `final_path`; on success it replaces `final_path` atomically.

    On any exception (including KeyboardInterrupt) the temporary file is removed and the previous
    `final_path`, if any, is left untouched. The temp file lives in the same directory so that
    `os.replace` is a rename on one filesystem. A folder, device or pipe at `final_path` is refused:
    the rename would replace it.
    """
    final_path = check_output_file(final_path)
    directory = final_path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final_path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DepthcliError(f"cannot write into {directory}: {exc.strerror}; choose a writable location") from exc
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        os.chmod(tmp_path, _final_mode(final_path))
        os.replace(tmp_path, final_path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise DepthcliError(f"could not write {final_path}: {exc.strerror} (previous file, if any, kept)") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(final_path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `final_path` atomically (see `atomic_path`)."""
    with atomic_path(final_path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(final_path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `final_path` atomically."""
    atomic_write_bytes(final_path, text.encode("utf-8"))
