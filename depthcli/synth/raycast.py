"""Vectorised ray casting against the two primitives the worlds are built from: axis-aligned boxes
seen from outside (buildings, cars, furniture) and one box seen from inside (a room, or the
ground-and-sky "box" of a street). Exact geometry is the point: depth is the ray parameter.

Rays are `origin + t * direction` with *unnormalised* directions; a camera passes `K^-1 [u, v, 1]`
rotated into the world, so `t` is the camera z (the depth) directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-9


@dataclass
class Hits:
    """Nearest hit per ray: `t` (inf = none), `box` (index, -1 = the enclosing surface / none),
    `axis` (0/1/2: the axis of the face normal) and `sign` (+1/-1: the normal's direction)."""

    t: np.ndarray
    box: np.ndarray
    axis: np.ndarray
    sign: np.ndarray

    @classmethod
    def empty(cls, count: int) -> Hits:
        return cls(
            np.full(count, np.inf, np.float32),
            np.full(count, -1, np.int32),
            np.zeros(count, np.int8),
            np.zeros(count, np.int8),
        )

    def subset(self, index: np.ndarray) -> Hits:
        return Hits(self.t[index], self.box[index], self.axis[index], self.sign[index])

    def normals(self) -> np.ndarray:
        """(N, 3) unit face normals."""
        normal = np.zeros((len(self.t), 3), np.float32)
        normal[np.arange(len(self.t)), self.axis] = self.sign
        return normal


def reciprocal(directions: np.ndarray) -> np.ndarray:
    safe = np.where(np.abs(directions) < _EPS, np.where(directions < 0, -_EPS, _EPS), directions)
    return 1.0 / safe


def hit_box(origin, rays: np.ndarray, inv: np.ndarray, lo, hi, t_current: np.ndarray):
    """Slab test of `rays` (n, 3) from `origin` (3,) against one box `[lo, hi]`, hit from outside.

    `inv` is `reciprocal(rays)` (computed once per view). Returns the rays whose entry point is nearer
    than `t_current`: (their positions in `rays`, t, normal axis, normal sign).
    """
    t_lo = (lo - origin) * inv
    t_hi = (hi - origin) * inv
    t_near = np.minimum(t_lo, t_hi)
    t_far = np.maximum(t_lo, t_hi)
    t_enter = np.maximum(np.maximum(t_near[:, 0], t_near[:, 1]), t_near[:, 2])
    t_exit = np.minimum(np.minimum(t_far[:, 0], t_far[:, 1]), t_far[:, 2])
    closer = np.flatnonzero((t_enter <= t_exit) & (t_enter > 1e-6) & (t_enter < t_current))
    axis = np.argmax(t_near[closer], axis=1).astype(np.int8)
    sign = np.where(rays[closer, axis] > 0, -1, 1).astype(np.int8)
    return closer, t_enter[closer], axis, sign


def hit_inside(origin, directions: np.ndarray, inv: np.ndarray, lo, hi, hits: Hits) -> None:
    """Where rays leave the box `[lo, hi]` that contains `origin` (a room's walls, floor and ceiling).

    Axes whose bounds are both infinite are skipped (a street is bounded by its ground only, open to
    the sky). Sets `hits.box = -1` where this is nearest.
    """
    t_exit = np.full(len(directions), np.inf, np.float32)
    axis = np.zeros(len(directions), np.int8)
    for k in range(3):
        if not (np.isfinite(lo[k]) or np.isfinite(hi[k])):
            continue
        bound = np.where(directions[:, k] > 0, np.float32(hi[k]), np.float32(lo[k]))
        with np.errstate(invalid="ignore"):
            t_axis = (bound - origin[k]) * inv[:, k]
        t_axis = np.where(t_axis > 0, t_axis, np.inf)  # open side (inf bound) or parallel ray: no exit
        nearer = t_axis < t_exit
        t_exit[nearer], axis[nearer] = t_axis[nearer], k
    closer = np.isfinite(t_exit) & (t_exit < hits.t)
    hits.t[closer] = t_exit[closer]
    hits.box[closer] = -1
    hits.axis[closer] = axis[closer]
    hits.sign[closer] = np.where(directions[closer, axis[closer]] > 0, -1, 1)
