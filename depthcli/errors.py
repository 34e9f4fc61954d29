"""The one exception type that reaches the user as a single actionable line instead of a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class DepthcliError(Exception):
    """Bad input or environment: the message names the file/value, what is wrong and what to do.

    The CLI prints it as one line and exits with status 2. Science code raises it for anything a user
    can cause (bad paths, malformed files, unsupported sizes); programming errors stay ordinary
    exceptions so that they keep their tracebacks.
    """


@contextlib.contextmanager
def out_of_memory_as_error(what: str, advice: str) -> Iterator[None]:
    """Inside the block, running out of memory becomes one line: "not enough memory to {what}; {advice}".

    numpy raises MemoryError; torch a RuntimeError ("can't allocate memory" on CPU, torch.OutOfMemoryError
    on CUDA). Other errors pass through unchanged.
    """
    try:
        yield
    except MemoryError:
        raise DepthcliError(f"not enough memory to {what}; {advice}") from None
    except RuntimeError as exc:
        text = str(exc).lower()
        if "can't allocate memory" in text or "out of memory" in text:
            raise DepthcliError(f"not enough memory to {what}; {advice}") from None
        raise
