"""Colour-mapped disparity images, normalised the way monodepth2 users are used to reading them."""

from __future__ import annotations

import functools

import matplotlib
import numpy as np

from depthcli.errors import DepthcliError

# monodepth2's test_simple.py clips the colour range at the 95th percentile so that a few very near
# pixels do not wash out the rest of the picture.
VMAX_PERCENTILE = 95.0
_LUT_SIZE = 256


@functools.lru_cache(maxsize=8)
def colormap_lut(name: str) -> np.ndarray:
    """The `(256, 3)` uint8 RGB table of matplotlib colormap `name` (e.g. "magma")."""
    try:
        cmap = matplotlib.colormaps[name].resampled(_LUT_SIZE)
    except KeyError:
        raise DepthcliError(
            f"colormap {name!r} is unknown; use a matplotlib colormap name such as magma, viridis, plasma"
        ) from None
    rgba = cmap(np.arange(_LUT_SIZE))
    return (rgba[:, :3] * 255).astype(np.uint8)


def colorize_disparity(
    disp: np.ndarray, colormap: str = "magma", vmax_percentile: float = VMAX_PERCENTILE
) -> np.ndarray:
    """Map an `(H, W)` disparity to an `(H, W, 3)` uint8 RGB image.

    The range runs from the image's minimum to its `vmax_percentile`-th percentile (values above are
    saturated); a constant image maps to the colormap's first colour. Binning follows matplotlib
    (`floor(x * 256)`, the top value in the last bin), so results equal monodepth2's
    `ScalarMappable(...).to_rgba` output.
    """
    disp = np.asarray(disp, dtype=np.float64)
    if disp.ndim != 2:
        raise ValueError(f"expected an (H, W) disparity, got shape {disp.shape}")
    return colorize_in_range(disp, *disparity_range(disp, vmax_percentile), colormap)


def disparity_range(disp: np.ndarray, vmax_percentile: float = VMAX_PERCENTILE) -> tuple[float, float]:
    """The colour range `colorize_disparity` gives `disp`: its minimum and its `vmax_percentile`-th percentile."""
    return float(np.min(disp)), float(np.percentile(disp, vmax_percentile))


def colorize_in_range(values: np.ndarray, vmin: float, vmax: float, colormap: str = "magma") -> np.ndarray:
    """`values` (H, W) -> (H, W, 3) uint8 RGB, `vmin`..`vmax` spread over the colormap and clipped outside
    it (a shared range makes two pictures comparable, e.g. a prediction and its ground truth)."""
    values = np.asarray(values, dtype=np.float64)
    span = vmax - vmin
    normalised = (values - vmin) / span if span > 0 else np.zeros_like(values)
    index = np.clip(np.floor(normalised * _LUT_SIZE), 0, _LUT_SIZE - 1).astype(np.intp)
    return colormap_lut(colormap)[index]
