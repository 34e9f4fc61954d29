"""Procedural textures fixed to world surfaces, band-limited to the pixel footprint.

Every texture is a function of a surface point's own coordinates (metres), never of the view, so a
point looks the same from every frame (what photometric self-supervision needs). To avoid aliasing
that would flicker between frames, each texture takes the `footprint` (metres covered by one pixel at
that point) and fades out detail finer than about a pixel: noise octaves above the pixel rate are
replaced by their mean, hard edges become coverage ramps one footprint wide.
"""

from __future__ import annotations

import numpy as np

_TABLE = 256


class Noise:
    """Smooth value noise from a periodic 256x256 random lattice (seeded, so worlds are reproducible)."""

    def __init__(self, rng: np.random.Generator):
        self.table = rng.random((_TABLE, _TABLE), dtype=np.float32)

    def value(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Noise in [0, 1] at lattice coordinates (s, t); cubic-smoothed bilinear interpolation."""
        s0, t0 = np.floor(s), np.floor(t)
        fs, ft = (s - s0).astype(np.float32), (t - t0).astype(np.float32)
        fs, ft = fs * fs * (3 - 2 * fs), ft * ft * (3 - 2 * ft)
        i0 = s0.astype(np.int32) & (_TABLE - 1)
        j0 = (t0.astype(np.int32) & (_TABLE - 1)) * _TABLE
        i1 = (i0 + 1) & (_TABLE - 1)
        j1 = (j0 + _TABLE) & (_TABLE * _TABLE - 1)
        table = self.table.ravel()
        top = np.take(table, j0 + i0)
        top += (np.take(table, j0 + i1) - top) * fs
        bottom = np.take(table, j1 + i0)
        bottom += (np.take(table, j1 + i1) - bottom) * fs
        return top + (bottom - top) * ft

    def fbm(self, s, t, footprint, base_frequency: float, octaves: int, gain: float = 0.55) -> np.ndarray:
        """Fractal noise in about [0, 1]; octaves finer than the footprint fade to their mean (0.5)."""
        total = np.zeros(np.shape(s), np.float32)
        weight_sum = 0.0
        frequency, amplitude = base_frequency, 1.0
        for octave in range(octaves):
            visible = np.clip(1.5 - 2.0 * footprint * frequency, 0.0, 1.0).astype(np.float32)
            weight_sum += amplitude
            if not visible.any():  # this octave and all finer ones are below the pixel rate
                total += 0.5 * sum(amplitude * gain**k for k in range(octaves - octave))
                weight_sum += sum(amplitude * gain**k for k in range(1, octaves - octave))
                break
            shift = 17.3 * octave
            layer = self.value(s * frequency + shift, t * frequency - 1.7 * shift)
            total += amplitude * (0.5 + visible * (layer - 0.5))
            frequency *= 2.0
            amplitude *= gain
        return total / weight_sum


def band(x: np.ndarray, lo, hi, footprint) -> np.ndarray:
    """Anti-aliased coverage of the interval [lo, hi] in x: 1 inside, 0 outside, ramps a footprint wide."""
    inside = np.minimum(x - lo, hi - x)
    width = np.maximum(np.asarray(hi - lo, np.float32), 0)
    return np.clip(inside / footprint + 0.5, 0.0, np.minimum(1.0, width / footprint)).astype(np.float32)


def stripes(x: np.ndarray, period, width, footprint) -> np.ndarray:
    """Anti-aliased coverage of stripes `width` wide repeating every `period` (starting at x = 0).

    When the footprint approaches the period the pattern fades to its mean coverage width / period.
    """
    phase = np.mod(x, period)
    inside = np.where(phase < width, np.minimum(phase, width - phase), -np.minimum(phase - width, period - phase))
    coverage = np.clip(inside / footprint + 0.5, 0.0, 1.0)
    fade = np.clip(2.0 * footprint / period - 0.5, 0.0, 1.0)
    return ((1 - fade) * coverage + fade * (width / period)).astype(np.float32)


def cell_index(x: np.ndarray, period) -> np.ndarray:
    """Integer cell of a periodic pattern (bricks, planks, tiles) for per-cell colour variation."""
    return np.floor(x / period).astype(np.int64)


def cell_random(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic pseudo-random number in [0, 1) per integer cell (i, j) (integer hash)."""
    h = (i * 73856093) ^ (j * 19349663) ^ (salt * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return ((h & 0xFFFFFF) / float(0x1000000)).astype(np.float32)


def mix(a, b, weight) -> np.ndarray:
    """Per-point blend of colours a and b ((N,3) or (3,)) with weight (N,) in [0, 1]."""
    weight = np.asarray(weight, np.float32)[..., None]
    return (np.asarray(a, np.float32) * (1 - weight) + np.asarray(b, np.float32) * weight).astype(np.float32)


def tint(colour, shade) -> np.ndarray:
    """Colour (3,) or (N,3) scaled per point by shade (N,)."""
    return (np.asarray(colour, np.float32) * np.asarray(shade, np.float32)[..., None]).astype(np.float32)


def bricks(noise: Noise, s, t, footprint, colour, mortar=(0.75, 0.73, 0.7), salt=0) -> np.ndarray:
    """Running-bond brick wall (0.25 x 0.075 m bricks, 1 cm mortar) with per-brick colour variation."""
    row = cell_index(t, 0.085)
    offset = np.where(row % 2 == 0, 0.0, 0.13)
    column = cell_index(s + offset, 0.26)
    per_brick = 0.75 + 0.5 * cell_random(column, row, salt)
    grain = noise.fbm(s, t, footprint, 8.0, 4)
    brick = tint(colour, per_brick * (0.8 + 0.4 * grain))
    mortar_cover = 1 - stripes(t, 0.085, 0.075, footprint) * stripes(s + offset, 0.26, 0.25, footprint)
    return mix(brick, mortar, mortar_cover)


def plaster(noise: Noise, s, t, footprint, colour) -> np.ndarray:
    """Rendered wall: broad stains plus fine grain."""
    stains = noise.fbm(s, t, footprint, 0.4, 3)
    grain = noise.fbm(s + 50, t, footprint, 6.0, 5)
    return tint(colour, 0.7 + 0.35 * stains + 0.3 * (grain - 0.5))


def planks(noise: Noise, s, t, footprint, colour, width=0.15, salt=0) -> np.ndarray:
    """Wood planks along s: per-plank tone, grain stretched along the plank, dark seams."""
    plank = cell_index(t, width)
    along = cell_index(s + 0.7 * plank, 1.2)
    tone = 0.7 + 0.45 * cell_random(plank, along, salt)
    grain = noise.fbm(s * 0.15, t * 4.0, footprint * 0.6, 6.0, 5)
    wood = tint(colour, tone * (0.75 + 0.5 * grain))
    seams = 1 - stripes(t, width, width - 0.006, footprint) * stripes(s + 0.7 * plank, 1.2, 1.19, footprint)
    return mix(wood, np.asarray(colour, np.float32) * 0.35, seams)


def tiles(noise: Noise, s, t, footprint, colour, size=0.3, grout=(0.55, 0.55, 0.52), salt=0) -> np.ndarray:
    """Square tiles with per-tile tone and speckle, grout lines."""
    i, j = cell_index(s, size), cell_index(t, size)
    tone = 0.8 + 0.3 * cell_random(i, j, salt)
    speckle = noise.fbm(s, t, footprint, 12.0, 4)
    tile = tint(colour, tone * (0.8 + 0.4 * speckle))
    grout_cover = 1 - stripes(s, size, size - 0.008, footprint) * stripes(t, size, size - 0.008, footprint)
    return mix(tile, grout, grout_cover)


def speckled(noise: Noise, s, t, footprint, colour, frequency=10.0, contrast=0.6) -> np.ndarray:
    """Fine isotropic noise (carpet, asphalt, fabric, foliage)."""
    grain = noise.fbm(s, t, footprint, frequency, 5)
    broad = noise.fbm(s + 31, t + 7, footprint, frequency / 16, 3)
    return tint(colour, 1.0 + contrast * (grain - 0.5) + 0.4 * (broad - 0.5))
