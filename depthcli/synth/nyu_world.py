"""NYU-like rooms: a closed room (walls, floor, ceiling) with furniture, seen from varied poses.

World coordinates: x and z span the floor, y points down, the floor is y = 0 and the ceiling
y = -height. Rooms are at most about 6 x 7 x 2.9 m, so every depth lies within NYU's 0.5-10 m.
"""

from __future__ import annotations

import numpy as np

from depthcli.synth import textures as tx
from depthcli.synth.scene import World, boxes_from_list, cast_camera, surface_coordinates

FULL_SIZE = (640, 480)
_KINECT = {"fx": 518.857901, "fy": 519.469611, "cx": 325.582449, "cy": 253.736166}
MIN_DEPTH, MAX_DEPTH = 0.5, 10.0

WOOD, FABRIC, PAINTED, PICTURE = range(4)
_WALL_COLOURS = [(0.85, 0.82, 0.75), (0.7, 0.78, 0.82), (0.88, 0.8, 0.7), (0.75, 0.8, 0.68), (0.9, 0.9, 0.88)]
_WOOD_COLOURS = [(0.55, 0.38, 0.22), (0.7, 0.55, 0.35), (0.4, 0.27, 0.16), (0.8, 0.7, 0.55)]
_FABRIC_COLOURS = [(0.45, 0.15, 0.15), (0.2, 0.3, 0.5), (0.35, 0.45, 0.3), (0.6, 0.55, 0.5), (0.3, 0.3, 0.32)]


def intrinsics_for(size: tuple[int, int]) -> np.ndarray:
    """The Kinect colour camera of NYU v2 scaled to `size` (pixel centres at integers)."""
    sx, sy = size[0] / FULL_SIZE[0], size[1] / FULL_SIZE[1]
    return np.array(
        [
            [_KINECT["fx"] * sx, 0, sx * (_KINECT["cx"] + 0.5) - 0.5],
            [0, _KINECT["fy"] * sy, sy * (_KINECT["cy"] + 0.5) - 0.5],
            [0, 0, 1],
        ]
    )


def _pick(rng, options) -> np.ndarray:
    return np.asarray(options[rng.integers(len(options))], np.float32)


def make_room(rng: np.random.Generator) -> World:
    """A room of random size with a random floor/wall style and 4-9 pieces of furniture."""
    width, depth, height = rng.uniform(3.0, 6.0), rng.uniform(3.0, 7.0), rng.uniform(2.4, 2.9)
    rows = []
    for _ in range(int(rng.integers(4, 10))):
        piece = rng.integers(4)
        salt = int(rng.integers(1 << 30))
        along_wall = rng.random() < 0.7
        if piece == 0:  # cabinet / wardrobe / shelf
            size = np.array([rng.uniform(0.6, 1.8), rng.uniform(0.8, 2.1), rng.uniform(0.35, 0.6)])
            colour, kind = _pick(rng, _WOOD_COLOURS), WOOD
        elif piece == 1:  # bed / sofa
            size = np.array([rng.uniform(1.4, 2.1), rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.8)])
            colour, kind = _pick(rng, _FABRIC_COLOURS), FABRIC
        elif piece == 2:  # table: a top on four legs
            size = np.array([rng.uniform(0.8, 1.6), 0.05, rng.uniform(0.6, 1.0)])
            colour, kind = _pick(rng, _WOOD_COLOURS), WOOD
        else:  # crate / box / appliance
            size = rng.uniform(0.3, 0.9, 3)
            colour, kind = _pick(rng, _WALL_COLOURS) * 0.8, PAINTED
        x = rng.uniform(0.05, width - size[0] - 0.05)
        z = depth - size[2] - 0.02 if along_wall else rng.uniform(0.05, depth - size[2] - 0.05)
        if piece == 2:
            top = 0.75
            rows.append(((x, -top - 0.05, z), (x + size[0], -top, z + size[2]), kind, colour, 0.0, salt))
            for lx in (x + 0.03, x + size[0] - 0.08):
                for lz in (z + 0.03, z + size[2] - 0.08):
                    rows.append(((lx, -top, lz), (lx + 0.05, 0.0, lz + 0.05), kind, colour * 0.8, 0.0, salt))
        else:
            rows.append(((x, -size[1], z), (x + size[0], 0.0, z + size[2]), kind, colour, 0.0, salt))
    for _ in range(int(rng.integers(1, 4))):  # pictures on the walls
        w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
        y0 = -rng.uniform(1.2, 1.9)
        if rng.random() < 0.5:
            x0 = rng.uniform(0.1, width - w - 0.1)
            lo, hi = (x0, y0 - h, depth - 0.03), (x0 + w, y0, depth)
        else:
            z0 = rng.uniform(0.1, depth - w - 0.1)
            lo, hi = (0.0, y0 - h, z0), (0.03, y0, z0 + w)
        rows.append((lo, hi, PICTURE, rng.uniform(0.2, 0.9, 3), 0.0, int(rng.integers(1 << 30))))
    light = np.array([0.35, -1.0, 0.5])
    return World(
        **boxes_from_list(rows),
        enclosure_lo=np.array([0.0, -height, 0.0]),
        enclosure_hi=np.array([width, 0.0, depth]),
        noise=tx.Noise(rng),
        light=light / np.linalg.norm(light),
        enclosure_albedo=_room_albedo,
        box_albedo=_furniture_albedo,
        ambient=0.5,
        extra={
            "floor": int(rng.integers(3)),
            "floor_colour": _pick(rng, _WOOD_COLOURS),
            "wall": int(rng.integers(2)),
            "wall_colour": _pick(rng, _WALL_COLOURS),
        },
    )


def _room_albedo(world: World, points, axis, sign, fp) -> np.ndarray:
    """Floor (planks, tiles or carpet), plaster ceiling, striped or plain wallpaper with a skirting board."""
    noise, style = world.noise, world.extra
    s, t = surface_coordinates(points, axis)
    out = np.empty((len(points), 3), np.float32)
    floor = (axis == 1) & (sign < 0)
    ceiling = (axis == 1) & (sign > 0)
    wall = axis != 1
    f = floor
    if style["floor"] == 0:
        out[f] = tx.planks(noise, s[f], t[f], fp[f], style["floor_colour"], width=0.14, salt=1)
    elif style["floor"] == 1:
        out[f] = tx.tiles(noise, s[f], t[f], fp[f], (0.8, 0.78, 0.74), size=0.4, salt=2)
    else:
        out[f] = tx.speckled(noise, s[f], t[f], fp[f], style["floor_colour"] * 0.7 + 0.1, frequency=20.0)
    out[ceiling] = tx.plaster(noise, s[ceiling], t[ceiling], fp[ceiling], (0.92, 0.92, 0.9))
    w = wall
    paper = tx.plaster(noise, s[w], t[w], fp[w], style["wall_colour"])
    if style["wall"] == 1:
        pattern = tx.stripes(s[w], 0.25, 0.08, fp[w]) * (0.6 + 0.4 * noise.fbm(s[w], t[w], fp[w], 10.0, 3))
        paper = tx.mix(paper, style["wall_colour"] * 0.6, pattern)
    skirting = tx.band(-points[w, 1], -1.0, 0.1, fp[w])
    out[w] = tx.mix(paper, (0.95, 0.95, 0.93), skirting)
    return out


def _furniture_albedo(world: World, box, axis, sign, points, fp) -> np.ndarray:
    noise = world.noise
    s, t = surface_coordinates(points, axis)
    kind, colour = world.kind[box], world.colour[box]
    out = np.empty((len(box), 3), np.float32)
    for k in np.unique(kind):
        m = kind == k
        if k == WOOD:
            out[m] = tx.planks(noise, s[m], t[m], fp[m], colour[m], width=0.2, salt=5)
        elif k == FABRIC:
            out[m] = tx.speckled(noise, s[m], t[m], fp[m], colour[m], frequency=30.0, contrast=0.5)
        elif k == PICTURE:
            blobs = noise.fbm(s[m] + 40, t[m], fp[m], 3.0, 4)
            out[m] = tx.mix(colour[m], colour[m][:, ::-1], np.clip((blobs - 0.4) * 3, 0, 1))
        else:
            out[m] = tx.tiles(noise, s[m], t[m], fp[m], colour[m], size=0.15, grout=(0.3, 0.3, 0.3), salt=9)
    return out


def camera_pose(rng: np.random.Generator, world: World, attempts: int = 50) -> np.ndarray:
    """world_from_cam for a person-held camera: 1.2-1.7 m high, any heading, tilted a little down,
    outside furniture and with everything in view at least MIN_DEPTH away (checked on a coarse render)."""
    lo, hi = world.enclosure_lo, world.enclosure_hi
    K_coarse = intrinsics_for((80, 60))
    pose = np.eye(4)
    for _ in range(attempts):
        position = np.array(
            [rng.uniform(lo[0] + 0.4, hi[0] - 0.4), -rng.uniform(1.2, 1.7), rng.uniform(lo[2] + 0.4, hi[2] - 0.4)]
        )
        yaw, pitch, roll = rng.uniform(-np.pi, np.pi), rng.uniform(-0.35, 0.05), rng.uniform(-0.05, 0.05)
        pose = np.eye(4)
        pose[:3, :3] = _rotation_y(yaw) @ _rotation_x(pitch) @ _rotation_z(roll)
        pose[:3, 3] = position
        inside = ((position > world.lo - 0.3) & (position < world.hi + 0.3)).all(axis=1)
        if inside.any():
            continue
        hits, rays, _ = cast_camera(world, K_coarse, (80, 60), pose)
        if np.isfinite(hits.t).all() and hits.t.min() > MIN_DEPTH * 1.2:
            return pose
    return pose


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def kinect_raw_depth(depth: np.ndarray, rng: np.random.Generator, focal: float) -> np.ndarray:
    """A Kinect-like raw depth from the exact one: holes along depth discontinuities, beyond range and
    at random dropout blobs, an invalid left border, and disparity quantisation (error grows as z^2)."""
    height, width = depth.shape
    padded = np.pad(depth, 1, mode="edge")
    windows = np.stack(
        [padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    )
    jump = (windows.max(axis=0) - windows.min(axis=0)) > 0.04 * depth
    holes = jump | (depth < MIN_DEPTH) | (depth > 9.0)
    dropout = rng.random((height // 8 + 1, width // 8 + 1)) < 0.03
    holes |= np.kron(dropout, np.ones((8, 8), bool))[:height, :width]
    holes[:, : max(1, width // 80)] = True
    disparity_scale = focal * 0.075 * 8  # Kinect: baseline 7.5 cm, disparity in 1/8 pixel steps
    quantised = disparity_scale / np.maximum(np.round(disparity_scale / np.maximum(depth, 1e-3)), 1.0)
    return np.where(holes, 0.0, quantised).astype(np.float32)
