"""Image sizes as users type them (`640x192`) and the RA-Depth resolution ladder."""

from __future__ import annotations

import re

from depthcli.errors import DepthcliError

# RA-Depth's test resolutions (GUIDE 4): training happens at 640x192, robustness is read off this ladder.
RESOLUTION_LADDER: tuple[tuple[int, int], ...] = (
    (416, 128),
    (512, 160),
    (640, 192),
    (832, 256),
    (1024, 320),
)

# The same ladder around 320x96 (the demo's and the CPU benchmarks' training size), in sizes every net takes
# (multiples of 32, at least 64): 208x62 -> 224x64, 256x77 -> 256x64 (nearest valid height), 416x125 ->
# 416x128, 512x154 -> 512x160.
HALF_RESOLUTION_LADDER: tuple[tuple[int, int], ...] = ((224, 64), (256, 64), (320, 96), (416, 128), (512, 160))

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def format_size(size: tuple[int, int]) -> str:
    """`(640, 192)` -> `"640x192"` (width first, as everywhere in the CLI)."""
    return f"{size[0]}x{size[1]}"


def parse_size(text: str, multiple: int = 32) -> tuple[int, int]:
    """Parse `WxH` into `(width, height)`; both must be positive multiples of `multiple`.

    The encoders downsample 5 times, so any other size cannot round-trip through the decoders.
    """
    match = _SIZE_RE.match(text)
    if not match:
        raise DepthcliError(f"size {text!r} is not of the form WIDTHxHEIGHT (for example 640x192)")
    width, height = int(match.group(1)), int(match.group(2))
    if width <= 0 or height <= 0 or width % multiple or height % multiple:
        raise DepthcliError(
            f"size {text!r}: width and height must be positive multiples of {multiple} "
            f"(nearest: {format_size((_round_up(width, multiple), _round_up(height, multiple)))})"
        )
    return width, height


def parse_resolutions(text: str) -> list[tuple[int, int]]:
    """Parse `416x128..1024x320` (a span of the ladder, ends inclusive) or `640x192,1024x320` (a list).

    Spans must start and end on ladder rungs, because "everything between" is only defined there.
    """
    if ".." in text:
        start_text, _, end_text = text.partition("..")
        start, end = parse_size(start_text), parse_size(end_text)
        rungs = list(RESOLUTION_LADDER)
        for end_point in (start, end):
            if end_point not in rungs:
                raise DepthcliError(
                    f"resolution span {text!r}: {format_size(end_point)} is not on the ladder "
                    f"({', '.join(format_size(r) for r in rungs)}); use a comma list for other sizes"
                )
        lo, hi = sorted((rungs.index(start), rungs.index(end)))
        return rungs[lo : hi + 1]
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise DepthcliError(f"resolution list {text!r} is empty; give e.g. 640x192,1024x320")
    return [parse_size(part) for part in parts]


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)
