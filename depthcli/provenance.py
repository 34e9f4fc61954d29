"""Where a result came from: command line, versions, git commit, time. Stored with every result row.

A number without its provenance cannot be reproduced; these fields make a JSON row self-describing.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from depthcli import __version__


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the depthcli source tree (with `+dirty` for local changes), None outside a checkout."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if status else commit


def provenance(**details) -> dict:
    """Command line (and the directory it ran in), depthcli / torch / Python versions, git commit, UTC time, plus
    the caller's `details`."""
    try:
        import torch

        torch_version = str(torch.__version__)  # a TorchVersion, which checkpoints (weights_only) cannot hold
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = None
    record = {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "cwd": os.getcwd(),
        "depthcli": __version__,
        "torch": torch_version,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "time_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return record | {key: value for key, value in details.items() if value is not None}
