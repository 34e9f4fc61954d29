"""Checks on the paths a command reads and writes, made before any work: one line naming the path.

- `check_input_file`: a file a command reads must exist and be a regular file (not a folder, device,
  pipe or socket: reading /dev/null or a FIFO gives nothing or blocks for ever).
- `check_output_file`: a file a command writes may exist only as a regular file (an atomic rename onto
  a device would replace the device).
- `refuse_output_overwriting_inputs`: no output may be one of the command's own inputs, so that
  `--out` pointing at the split file, the checkpoint or the dataset never destroys it.
- `glob_paths`: a glob pattern's matches, without following symlinked folders (a loop never ends).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from depthcli.errors import DepthcliError

GLOB_CHARS = frozenset("*?[")
Labelled = Iterable[tuple[str, str | os.PathLike | None]]  # (what the path is, e.g. "--out", path)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_input_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """`path` if it is an existing regular file (symlinks followed), else one line saying which it is."""
    path = Path(path)
    suffix = f"; {hint}" if hint else ""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DepthcliError(f"{what} {path} does not exist{suffix}") from None
    except OSError as exc:
        raise DepthcliError(f"{what} {path} cannot be read ({exc.strerror}){suffix}") from None
    if not stat.S_ISREG(mode):
        kind = _kind(mode)
        raise DepthcliError(f"{what} {path} is {kind}, not a regular file{suffix}")
    return path


def check_output_file(path: str | os.PathLike, what: str = "output") -> Path:
    """`path` if nothing exists there yet or a regular file does (which the command may then replace)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        return path
    if not stat.S_ISREG(mode):
        raise DepthcliError(f"{what} {path} is {_kind(mode)}, not a regular file; give a file path to write")
    return path


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """Device and inode of the file `path` names (symlinks followed); None when nothing is there."""
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def refuse_output_overwriting_inputs(outputs: Labelled, inputs: Labelled) -> None:
    """One line naming the pair when an output would replace one of the inputs.

    Compared by device + inode, so the same file under any name (relative, `..`, a symlink, a hard
    link) is caught. An output that does not exist yet cannot be an existing input; `None` is skipped.
    """
    existing: dict[tuple[int, int], tuple[str, str | os.PathLike]] = {}
    for label, path in inputs:
        identity = _identity(path) if path is not None else None
        if identity is not None:
            existing.setdefault(identity, (label, path))
    for label, path in outputs:
        identity = _identity(path) if path is not None else None
        if identity in existing:
            input_label, input_path = existing[identity]
            raise DepthcliError(
                f"{label} {path} is the same file as {input_label} {input_path}; writing it would destroy that "
                f"input: choose another {label}"
            )


def glob_paths(pattern: str) -> list[Path]:
    """Sorted matches of `pattern` (which holds one of GLOB_CHARS); its `**` skips symlinked folders.

    `glob.glob` follows them, so a tree with a link back to an ancestor never finishes; `Path.glob`
    does not, the same rule `--recursive` follows. As with `glob.glob`, hidden names match only when
    the pattern spells out a leading dot.
    """
    parts = Path(pattern).parts
    first_wild = next(i for i, part in enumerate(parts) if GLOB_CHARS & set(part))
    base = Path(*parts[:first_wild]) if first_wild else Path()
    rest = parts[first_wild:]
    try:
        matches = sorted(base.glob(str(PurePosixPath(*rest))))
    except ValueError as exc:  # e.g. `**` inside a name: pathlib only takes it as a whole component
        raise DepthcliError(f"input pattern {pattern!r} is not a valid glob ({exc})") from None
    if any(part.startswith(".") for part in rest):
        return matches
    return [match for match in matches if not any(p.startswith(".") for p in match.relative_to(base).parts)]
