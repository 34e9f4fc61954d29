"""Triton kernels; imported lazily so that CPU-only installs never pay for (or need) triton.

Everything here has a PyTorch reference in the module that uses it; the kernels are an optimisation
selected automatically for CUDA tensors (see `depthcli.losses.photometric`).
"""

from __future__ import annotations

import functools
import importlib.util
import os


@functools.cache
def triton_available() -> bool:
    """True when the `triton` package can be imported (it may still lack a GPU to run on)."""
    return importlib.util.find_spec("triton") is not None


def interpreter_enabled() -> bool:
    """True when triton runs kernels on CPU tensors through its interpreter (`TRITON_INTERPRET=1`).

    The variable is read by triton at import time, so it must be set before anything imports triton.
    """
    return os.environ.get("TRITON_INTERPRET") == "1"
