"""Image sizes as users type them (`640x192`), the one rule a depth net's input size follows, and the
RA-Depth resolution ladder.

The rule: width and height are multiples of 32 and at least 64. The encoders downsample five times,
so any other side cannot round-trip through the decoders, and the decoders' reflection padding needs
at least 2 pixels at the deepest stage. `parse_size` applies it to what users type; the nets apply it
to every input (`check_size`). Synthetic worlds render any size (`parse_image_size`).
"""

from __future__ import annotations

import re

from depthcli.errors import DepthcliError

SIZE_MULTIPLE = 32
MIN_SIDE = 2 * SIZE_MULTIPLE
# Larger than any image a depth net is run on (8K video is 7680x4320): a typo such as 99999x99999
# would otherwise ask for hundreds of GB before failing somewhere deep in torch, OpenCV or numpy.
MAX_SIDE = 8192
MAX_PIXELS = 8192 * 4096

# RA-Depth's test resolutions (docs/protocols.md): training happens at 640x192, robustness is read off this ladder.
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


def check_size(width: int, height: int, what: str) -> None:
    """DepthcliError naming `what` and the nearest valid sizes unless both sides follow the rule."""
    if width % SIZE_MULTIPLE == 0 and height % SIZE_MULTIPLE == 0 and min(width, height) >= MIN_SIDE:
        check_size_bounds(width, height, what)
        return

    def around(value: int) -> list[int]:
        lower = max(MIN_SIDE, value // SIZE_MULTIPLE * SIZE_MULTIPLE)
        upper = max(MIN_SIDE, -(-value // SIZE_MULTIPLE) * SIZE_MULTIPLE)
        return sorted({lower, upper})

    candidates = sorted(
        {(w, h) for w in around(width) for h in around(height)},
        key=lambda size: (abs(size[0] - width) + abs(size[1] - height), size),
    )
    raise DepthcliError(
        f"{what}: depth nets need width and height that are multiples of {SIZE_MULTIPLE} and at least "
        f"{MIN_SIDE}; resize or crop to a nearby valid size such as "
        + " or ".join(format_size(size) for size in candidates[:2])
    )


def check_size_bounds(width: int, height: int, what: str) -> None:
    """Refuse sizes no run can need (see MAX_SIDE / MAX_PIXELS), before anything is allocated."""
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise DepthcliError(
            f"{what} is too large ({format_size((width, height))}): depthcli handles at most {MAX_SIDE} pixels "
            f"per side and {MAX_PIXELS / 1e6:.1f} megapixels; choose a smaller size"
        )


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse `WxH` into `(width, height)`, any positive size within `check_size_bounds`."""
    match = _SIZE_RE.match(text)
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise DepthcliError(f"size {text!r} is not of the form WIDTHxHEIGHT with positive sides (e.g. 640x192)")
    width, height = int(match.group(1)), int(match.group(2))
    check_size_bounds(width, height, f"size {text!r}")
    return width, height


def parse_size(text: str) -> tuple[int, int]:
    """Parse `WxH` into `(width, height)`, a size a depth net accepts (the module's rule)."""
    width, height = parse_image_size(text)
    check_size(width, height, f"size {text!r}")
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
