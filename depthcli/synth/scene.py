"""What every synthetic world shares: boxes with materials, a view renderer and Lambertian shading.

A world is a set of axis-aligned boxes plus one enclosing box seen from inside (the street's ground,
open to the sky, or a room). Rendering is exact ray casting (depth = ray parameter), albedo comes from
view-independent procedural textures (depthcli.synth.textures), and shading is Lambertian with a
fixed light, so a surface point has the same colour in every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from depthcli.synth.raycast import Hits, hit_box, hit_inside, reciprocal
from depthcli.synth.textures import Noise

NEAR = 0.05  # boxes with a corner closer than this (camera z) are tested against the whole image


@dataclass
class World:
    """Boxes (`lo`, `hi` (M,3), `kind`, `colour` (M,3), `param` (M,) per-box pattern parameter, `salt`)
    inside an enclosure `[enclosure_lo, enclosure_hi]` (infinite bounds = open), plus a texture source."""

    lo: np.ndarray
    hi: np.ndarray
    kind: np.ndarray
    colour: np.ndarray
    param: np.ndarray
    salt: np.ndarray
    enclosure_lo: np.ndarray
    enclosure_hi: np.ndarray
    noise: Noise
    light: np.ndarray  # unit vector towards the light
    enclosure_albedo: Callable  # (world, points, axis, sign, footprint) -> (N,3)
    box_albedo: Callable  # (world, box, axis, sign, points, footprint) -> (N,3)
    background: Callable | None = None  # (world, rays, focal) -> (N,3) where nothing is hit (sky)
    ambient: float = 0.4
    extra: dict = field(default_factory=dict)


def boxes_from_list(rows: list[tuple]) -> dict[str, np.ndarray]:
    """[(lo, hi, kind, colour, param, salt), ...] -> the World box arrays."""
    if not rows:
        empty = np.zeros((0, 3))
        return dict(
            lo=empty, hi=empty, kind=np.zeros(0, np.int32), colour=empty, param=np.zeros(0), salt=np.zeros(0, np.int64)
        )
    lo, hi, kind, colour, param, salt = zip(*rows, strict=True)
    return dict(
        lo=np.asarray(lo, np.float64),
        hi=np.asarray(hi, np.float64),
        kind=np.asarray(kind, np.int32),
        colour=np.asarray(colour, np.float32),
        param=np.asarray(param, np.float64),
        salt=np.asarray(salt, np.int64),
    )


def pixel_rays(K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H*W, 3) camera rays K^-1 [u, v, 1] for pixel centres u = 0..W-1, v = 0..H-1 (z = 1: t is depth)."""
    width, height = size
    rays = np.ones((height, width, 3), np.float32)
    rays[..., 0] = ((np.arange(width) - K[0, 2]) / K[0, 0]).astype(np.float32)[None, :]
    rays[..., 1] = ((np.arange(height) - K[1, 2]) / K[1, 1]).astype(np.float32)[:, None]
    return rays.reshape(-1, 3)


def _box_corners(world: World, index: int) -> np.ndarray:
    lo, hi = world.lo[index], world.hi[index]
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def _distances(world: World, origin: np.ndarray) -> np.ndarray:
    """Euclidean distance from `origin` to each box (0 inside)."""
    return np.linalg.norm(np.clip(origin, world.lo, world.hi) - origin, axis=1)


def _cast_culled(world: World, origin, rays, candidates) -> Hits:
    """Hits of `rays` (float32, from one origin) against the enclosure and the boxes, where
    `candidates` yields (box index, ray indices that may see it). Boxes are visited nearest first and
    each skips rays already stopped nearer than the box (cheap occlusion culling)."""
    hits = Hits.empty(len(rays))
    inv = reciprocal(rays)
    hit_inside(origin, rays, inv, world.enclosure_lo, world.enclosure_hi, hits)
    ray_length = np.linalg.norm(rays, axis=1)
    distance = _distances(world, origin)
    for index, rows in candidates(np.argsort(distance, kind="stable")):
        t_current = hits.t[rows]
        maybe = t_current * ray_length[rows] > distance[index]
        rows, t_current = rows[maybe], t_current[maybe]
        if rows.size:
            lo, hi = world.lo[index].astype(np.float32), world.hi[index].astype(np.float32)
            closer, t, axis, sign = hit_box(origin, rays[rows], inv[rows], lo, hi, t_current)
            target = rows[closer]
            hits.t[target], hits.box[target], hits.axis[target], hits.sign[target] = t, index, axis, sign
    return hits


def _hull_mask(u: np.ndarray, v: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixels (of a rectangle of `size`) within about a pixel of the convex hull of points (u, v):
    the only pixels whose rays can meet a box whose corners project there."""
    points = np.round(np.stack([u, v], axis=1) * 16).astype(np.int32)
    hull = cv2.convexHull(points)
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    cv2.polylines(mask, [hull], True, 1, thickness=3, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def cast_camera(world: World, K: np.ndarray, size: tuple[int, int], world_from_cam: np.ndarray):
    """Nearest hits for every pixel -> (Hits, world rays (H*W,3) float32, camera origin (3,)).

    Each box is tested only against the pixels inside its projected bounding rectangle (exact for a
    pinhole: a convex box projects into the hull of its projected corners).
    """
    width, height = size
    rays = pixel_rays(K, size) @ world_from_cam[:3, :3].T.astype(np.float32)
    origin = world_from_cam[:3, 3].astype(np.float32)
    cam_from_world = np.linalg.inv(world_from_cam)
    pixel_index = np.arange(width * height).reshape(height, width)

    def candidates(order):
        for index in order:
            cam = _box_corners(world, index) @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
            if (cam[:, 2] < NEAR).all():
                continue
            if (cam[:, 2] < NEAR).any():
                yield index, pixel_index.ravel()
                continue
            u = K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]
            v = K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]
            u0, u1 = max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())) + 1, width)
            v0, v1 = max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())) + 1, height)
            if u0 < u1 and v0 < v1:
                yield index, pixel_index[v0:v1, u0:u1][_hull_mask(u - u0, v - v0, (u1 - u0, v1 - v0))]

    return _cast_culled(world, origin, rays, candidates), rays, origin


def cast_scanner(world: World, world_from_sensor: np.ndarray, directions: np.ndarray, azimuths: int, max_range: float):
    """Hits of a spinning scanner's rays: `directions` (beams * azimuths, 3) in the sensor frame, beam
    major, azimuth columns evenly spaced from -pi. Boxes are tested only against the columns their
    azimuth span covers (exact: a box's footprint on the sensor's x-y plane is convex).
    -> (Hits, world rays float32, origin)."""
    rays = (directions @ world_from_sensor[:3, :3].T).astype(np.float32)
    origin = world_from_sensor[:3, 3].astype(np.float32)
    sensor_from_world = np.linalg.inv(world_from_sensor)
    grid = np.arange(len(directions)).reshape(-1, azimuths)
    step = 2 * np.pi / azimuths
    in_range = _distances(world, origin) < max_range

    def candidates(order):
        for index in order:
            if not in_range[index]:
                continue
            local = _box_corners(world, index) @ sensor_from_world[:3, :3].T + sensor_from_world[:3, 3]
            angle = np.arctan2(local[:, 1], local[:, 0])
            centre = np.arctan2(local[:, 1].mean(), local[:, 0].mean())
            offset = np.angle(np.exp(1j * (angle - centre)))
            first = int(np.floor((centre + offset.min() + np.pi) / step)) - 1
            last = int(np.ceil((centre + offset.max() + np.pi) / step)) + 2
            columns = np.arange(first, min(last, first + azimuths)) % azimuths
            yield index, grid[:, columns].ravel()

    return _cast_culled(world, origin, rays, candidates), rays, origin


def surface_coordinates(points: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2-D texture coordinates (metres) on an axis-aligned face: the two world axes in the face."""
    s = np.where(axis == 0, points[:, 2], points[:, 0])
    t = np.where(axis == 1, points[:, 2], points[:, 1])
    return s, t


def footprint(hits_t: np.ndarray, rays: np.ndarray, normals: np.ndarray, focal: float) -> np.ndarray:
    """Metres one pixel covers at each hit: range / focal, widened at grazing incidence.

    The geometric mean of the two footprint axes (divide by sqrt|cos|) keeps grazing road texture
    neither blurred away nor aliased.
    """
    length = np.linalg.norm(rays, axis=1)
    cosine = np.abs((rays * normals).sum(axis=1)) / length
    return (hits_t * length / focal / np.sqrt(np.maximum(cosine, 0.02))).astype(np.float32)


def shade_hits(world: World, hits: Hits, rays, origin, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """Colour (N,3) in [0,1] of every hit (background where nothing was hit) and each albedo's grey
    level (a laser's reflectance)."""
    count = len(hits.t)
    colour = np.zeros((count, 3), np.float32)
    hit = np.isfinite(hits.t)
    if world.background is not None and not hit.all():
        colour[~hit] = world.background(world, rays[~hit], focal)
    index = np.flatnonzero(hit)
    part = hits.subset(index)
    points = origin + part.t[:, None] * rays[index]
    normals = part.normals()
    fp = footprint(part.t, rays[index], normals, focal)
    albedo = np.empty((len(index), 3), np.float32)
    inside = part.box < 0
    albedo[inside] = world.enclosure_albedo(world, points[inside], part.axis[inside], part.sign[inside], fp[inside])
    on_box = ~inside
    albedo[on_box] = world.box_albedo(
        world, part.box[on_box], part.axis[on_box], part.sign[on_box], points[on_box], fp[on_box]
    )
    colour[index] = albedo * lambert(world, normals)[:, None]
    grey = np.zeros(count, np.float32)
    grey[index] = albedo.mean(axis=1)
    return colour, grey


def render_view(world: World, K: np.ndarray, size: tuple[int, int], world_from_cam: np.ndarray):
    """-> (rgb (H,W,3) uint8, depth (H,W) float32 camera z in metres, 0 where nothing was hit)."""
    width, height = size
    hits, rays, origin = cast_camera(world, K, size, world_from_cam)
    colour, _ = shade_hits(world, hits, rays, origin, K[0, 0])
    depth = np.where(np.isfinite(hits.t), hits.t, 0.0).astype(np.float32)
    return to_uint8(colour).reshape(height, width, 3), depth.reshape(height, width)


def lambert(world: World, normals: np.ndarray) -> np.ndarray:
    """Shade per point: ambient + diffuse * max(0, n . light); view-independent by construction."""
    diffuse = np.maximum(normals @ world.light, 0.0)
    return (world.ambient + (1 - world.ambient) * diffuse).astype(np.float32)


def to_uint8(colour: np.ndarray) -> np.ndarray:
    return np.clip(np.round(colour * 255.0), 0, 255).astype(np.uint8)
