"""KITTI-like drives: a camera rig driving along a street of facades, parked cars and poles.

Frames (world coordinates follow the rectified camera at frame 0: x right, y down, z forward):
- the road is the plane y = CAMERA_HEIGHT (camera 2 is 1.65 m above it, no pitch or roll);
- the rendering frame *is* the rectified camera-2 frame that `P_rect_02` projects into;
- the velodyne frame (x forward, y left, z up) is tied to it through the calibration written to disk:
  X_cam2 = R_rect_00 (R X_velo + T) + t_02, where P_rect_02 = K [I | t_02]. All numbers are taken
  back from the formatted calibration text, so the files on disk are exactly the rig rendered here.
- the written K_0x / P_rect_0x follow KITTI's devkit (1-based MATLAB pixels: the first pixel centre is
  at 1), so their principal point is the rendering camera's 0-based one plus 1; focal lengths are the
  same. The Eigen GT recipe's "round, minus 1" therefore puts a scan point on the very pixel where it
  was rendered, as with real KITTI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthcli.synth import textures as tx
from depthcli.synth.scene import World, boxes_from_list, cast_scanner, shade_hits, surface_coordinates

FULL_SIZE = (1242, 375)
CAMERA_HEIGHT = 1.65
FRAME_RATE = 10.0
# Real 2011_09_26 rectified calibration (KITTI raw), used as the rig's template.
_FULL_FOCAL = 721.5377
_FULL_CENTRE = (609.5593, 172.854)
_CAMERA_OFFSETS = {  # t_0x = K^-1 P_rect_0x[:, 3]: rectified camera x relative to rectified camera 0
    0: (0.0, 0.0, 0.0),
    1: (-0.5371479, 0.0, 0.0),
    2: (0.06216904, 2.996796e-4, 2.745884e-3),
    3: (-0.4705470, 2.490929e-3, 2.729905e-3),
}
_R_RECT_00 = (9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01, -4.278459e-03,
              7.402527e-03, 4.351614e-03, 9.999631e-01)  # fmt: skip
_VELO_R = (7.533745e-03, -9.999714e-01, -6.166020e-04, 1.480249e-02, 7.280733e-04, -9.998902e-01,
           9.998621e-01, 7.523790e-03, 1.480755e-02)  # fmt: skip
_VELO_T = (-4.069766e-03, -7.631618e-02, -2.717806e-01)

# Box kinds and their materials.
FACADE_BRICK, FACADE_PLASTER, CAR_BODY, CAR_CABIN, POLE, CRATE = range(6)
_VELODYNE_ELEVATIONS = np.deg2rad(np.linspace(2.0, -24.8, 64))
_VELODYNE_AZIMUTHS = 1800  # 0.2 degree steps
VELODYNE_RANGE = 120.0
_PARKED_INNER = 1.9  # parked cars (1.8 m wide) stand this far inside the kerb line


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6e}" for v in np.ravel(values))


def _parse(text: str) -> dict[str, np.ndarray]:
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        try:
            values[key] = np.array([float(v) for v in rest.split()])
        except ValueError:
            continue
    return values


@dataclass
class Rig:
    """The calibration as written (`cam_to_cam_text`, `velo_to_cam_text`) and as used for rendering."""

    size: tuple[int, int]
    cam_to_cam_text: str
    velo_to_cam_text: str
    K: np.ndarray  # 3x3, camera 2 at `size` as rendered (0-based pixel centres at integers)
    cam2_from_velo: np.ndarray  # 4x4
    cam3_from_cam2: np.ndarray  # 4x4


def intrinsics_for(size: tuple[int, int]) -> np.ndarray:
    """KITTI's rectified camera scaled to `size` with the pixel-centre convention (cx' = s(cx+0.5)-0.5)."""
    sx, sy = size[0] / FULL_SIZE[0], size[1] / FULL_SIZE[1]
    return np.array(
        [
            [_FULL_FOCAL * sx, 0, sx * (_FULL_CENTRE[0] + 0.5) - 0.5],
            [0, _FULL_FOCAL * sy, sy * (_FULL_CENTRE[1] + 0.5) - 0.5],
            [0, 0, 1],
        ]
    )


# Added to a 0-based pixel K (centres at 0..W-1) it gives KITTI's 1-based one: cx + 1, cy + 1.
_ONE_BASED_OFFSET = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])


def make_rig(size: tuple[int, int]) -> Rig:
    """Calibration files in KITTI's syntax (1-based pixels) for images of `size`, and the matrices they define."""
    K = intrinsics_for(size) + _ONE_BASED_OFFSET
    lines = ["calib_time: 01-Jan-2000 00:00:00", "corner_dist: 9.950000e-02"]
    for cam in range(4):
        p_rect = np.concatenate([K, (K @ np.array(_CAMERA_OFFSETS[cam]))[:, None]], axis=1)
        lines += [
            f"S_0{cam}: {_fmt(size)}",
            f"K_0{cam}: {_fmt(K)}",
            f"D_0{cam}: {_fmt(np.zeros(5))}",
            f"R_0{cam}: {_fmt(np.eye(3))}",
            f"T_0{cam}: {_fmt(_CAMERA_OFFSETS[cam])}",
            f"S_rect_0{cam}: {_fmt(size)}",
            f"R_rect_0{cam}: {_fmt(_R_RECT_00 if cam == 0 else np.eye(3))}",
            f"P_rect_0{cam}: {_fmt(p_rect)}",
        ]
    cam_text = "\n".join(lines) + "\n"
    velo_text = f"calib_time: 01-Jan-2000 00:00:00\nR: {_fmt(_VELO_R)}\nT: {_fmt(_VELO_T)}\n"
    velo_text += f"delta_f: {_fmt([0, 0])}\ndelta_c: {_fmt([0, 0])}\n"
    cam, velo = _parse(cam_text), _parse(velo_text)
    p2, p3 = cam["P_rect_02"].reshape(3, 4), cam["P_rect_03"].reshape(3, 4)
    k_parsed = p2[:, :3]
    velo_to_cam0 = np.eye(4)
    velo_to_cam0[:3, :3], velo_to_cam0[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    rect, to_cam2, to_cam3 = np.eye(4), np.eye(4), np.eye(4)
    rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    to_cam2[:3, 3] = np.linalg.solve(k_parsed, p2[:, 3])
    to_cam3[:3, 3] = np.linalg.solve(p3[:, :3], p3[:, 3])
    return Rig(
        size=size,
        cam_to_cam_text=cam_text,
        velo_to_cam_text=velo_text,
        K=k_parsed - _ONE_BASED_OFFSET,
        cam2_from_velo=to_cam2 @ rect @ velo_to_cam0,
        cam3_from_cam2=to_cam3 @ np.linalg.inv(to_cam2),
    )


def lane_centre(road_half: float) -> float:
    """Middle of the right lane, between the centre line and the parked cars."""
    return 0.5 * (road_half - _PARKED_INNER)


def trajectory(rng: np.random.Generator, frames: int, road_half: float) -> np.ndarray:
    """(frames, 4, 4) world_from_cam2: ~1 m/frame forward in the right lane, smooth small yaw
    (lateral drift stays within 2 * amplitude * period / (2 pi) * speed < 0.45 m)."""
    speed = rng.uniform(0.85, 1.15)
    amplitude, period, phase = rng.uniform(0.005, 0.02), rng.uniform(30, 60), rng.uniform(0, 2 * np.pi)
    yaw = amplitude * np.sin(2 * np.pi * np.arange(frames) / period + phase)
    poses = np.tile(np.eye(4), (frames, 1, 1))
    position = np.array([lane_centre(road_half), 0.0, 0.0])
    for i in range(frames):
        c, s = np.cos(yaw[i]), np.sin(yaw[i])
        poses[i, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        poses[i, :3, 3] = position
        position = position + speed * np.array([s, 0.0, c])
    return poses


def _pick(rng, options):
    return np.asarray(options[rng.integers(len(options))], np.float32)


_WALL_COLOURS = [(0.62, 0.35, 0.27), (0.78, 0.72, 0.6), (0.55, 0.55, 0.58), (0.85, 0.8, 0.7), (0.5, 0.42, 0.35),
                 (0.7, 0.55, 0.45), (0.9, 0.88, 0.82), (0.45, 0.5, 0.45)]  # fmt: skip
_CAR_COLOURS = [(0.7, 0.1, 0.1), (0.1, 0.2, 0.6), (0.85, 0.85, 0.85), (0.15, 0.15, 0.15), (0.5, 0.5, 0.55),
                (0.2, 0.45, 0.25), (0.8, 0.7, 0.2)]  # fmt: skip


def make_street(rng: np.random.Generator, road_half: float, length: float) -> World:
    """A street from z = -60 to `length` + 150: road, kerbs, sidewalks, facades, parked cars, poles, crates."""
    rows = []
    ground = CAMERA_HEIGHT
    z_end = length + 150.0
    for side in (-1, 1):
        facade_x = road_half + rng.uniform(2.0, 4.0)
        z = -60.0
        while z < z_end:  # buildings
            width = rng.uniform(8, 25)
            setback = rng.uniform(0, 2.0) if rng.random() < 0.5 else 0.0
            height = rng.uniform(6, 22)
            near = facade_x + setback
            x_lo, x_hi = (-near - 12, -near) if side < 0 else (near, near + 12)
            kind = FACADE_BRICK if rng.random() < 0.45 else FACADE_PLASTER
            rows.append(
                (
                    (x_lo, ground - height, z),
                    (x_hi, ground, z + width),
                    kind,
                    _pick(rng, _WALL_COLOURS),
                    rng.uniform(2.4, 3.6),
                    int(rng.integers(1 << 30)),
                )
            )
            z += width + (rng.uniform(1.5, 5) if rng.random() < 0.25 else 0.0)
        z = -50.0 + rng.uniform(0, 10)
        while z < z_end:  # parked cars along the kerb
            if rng.random() < 0.6:
                x_centre = side * (road_half - _PARKED_INNER + 0.9)
                colour = _pick(rng, _CAR_COLOURS)
                salt = int(rng.integers(1 << 30))
                rows.append(
                    ((x_centre - 0.9, ground - 0.95, z), (x_centre + 0.9, ground, z + 4.3), CAR_BODY, colour, 0.0, salt)
                )
                rows.append(
                    (
                        (x_centre - 0.75, ground - 1.45, z + 1.0),
                        (x_centre + 0.75, ground - 0.95, z + 3.2),
                        CAR_CABIN,
                        colour,
                        0.0,
                        salt,
                    )
                )
            z += 4.3 + rng.uniform(0.8, 4.0)
        z = -50.0 + rng.uniform(0, 15)
        while z < z_end:  # poles on the sidewalk, now and then a crate or bin
            x_centre = side * (road_half + 0.5)
            rows.append(
                (
                    (x_centre - 0.08, ground - 5.5, z - 0.08),
                    (x_centre + 0.08, ground, z + 0.08),
                    POLE,
                    (0.5, 0.5, 0.52),
                    0.0,
                    int(rng.integers(1 << 30)),
                )
            )
            if rng.random() < 0.4:
                x_box = side * (facade_x - rng.uniform(0.5, 1.2))
                size = rng.uniform(0.6, 1.4, 3)
                rows.append(
                    (
                        (x_box - size[0] / 2, ground - size[1], z + 3),
                        (x_box + size[0] / 2, ground, z + 3 + size[2]),
                        CRATE,
                        _pick(rng, _WALL_COLOURS),
                        0.0,
                        int(rng.integers(1 << 30)),
                    )
                )
            z += rng.uniform(12, 30)
    light = np.array([0.45, -0.8, -0.4])
    return World(
        **boxes_from_list(rows),
        enclosure_lo=np.array([-np.inf, -np.inf, -np.inf]),
        enclosure_hi=np.array([np.inf, ground, np.inf]),
        noise=tx.Noise(rng),
        light=light / np.linalg.norm(light),
        enclosure_albedo=_ground_albedo,
        box_albedo=_box_albedo,
        background=_sky,
        ambient=0.38,
        extra={"road_half": road_half},
    )


def _ground_albedo(world: World, points, axis, sign, fp) -> np.ndarray:
    """Asphalt with dashed centre line and edge lines; kerb; paved sidewalk."""
    x, z = points[:, 0], points[:, 2]
    road_half = world.extra["road_half"]
    noise = world.noise
    asphalt = tx.speckled(noise, x, z, fp, (0.34, 0.34, 0.35), frequency=8.0, contrast=0.7)
    patches = noise.fbm(x + 100, z, fp, 0.25, 2)
    asphalt = tx.tint(asphalt, 0.8 + 0.4 * patches)
    paint = tx.band(x, -0.07, 0.07, fp) * tx.stripes(z, 9.0, 3.0, fp)
    paint = np.maximum(paint, tx.band(np.abs(x), road_half - 0.35, road_half - 0.2, fp))
    road = tx.mix(asphalt, (0.88, 0.88, 0.85), paint * (0.75 + 0.25 * noise.fbm(x, z, fp, 4.0, 3)))
    sidewalk = tx.tiles(noise, x, z, fp, (0.62, 0.6, 0.56), size=0.4, salt=7)
    kerb = tx.band(np.abs(x), road_half, road_half + 0.15, fp)
    on_road = tx.band(np.abs(x), -1.0, road_half, fp)
    colour = tx.mix(sidewalk, road, on_road)
    return tx.mix(colour, (0.75, 0.74, 0.72), kerb)


def _box_albedo(world: World, box, axis, sign, points, fp) -> np.ndarray:
    kind, colour, param, salt = world.kind[box], world.colour[box], world.param[box], world.salt[box]
    s, t = surface_coordinates(points, axis)
    height = CAMERA_HEIGHT - points[:, 1]
    noise = world.noise
    out = np.empty((len(box), 3), np.float32)
    for k in np.unique(kind):
        m = kind == k
        sm, tm, fm, cm = s[m], t[m], fp[m], colour[m]
        if k in (FACADE_BRICK, FACADE_PLASTER):
            wall = tx.bricks(noise, sm, tm, fm, cm, salt=3) if k == FACADE_BRICK else tx.plaster(noise, sm, tm, fm, cm)
            spacing = param[m]
            floor_phase = np.mod(height[m], 3.2)
            window = tx.band(floor_phase, 0.9, 2.4, fm) * tx.stripes(sm + 0.3 * spacing, spacing, 1.2, fm)
            frame = tx.band(floor_phase, 0.8, 2.5, fm) * tx.stripes(sm + 0.3 * spacing + 0.1, spacing, 1.4, fm)
            pane = tx.cell_random(
                tx.cell_index(sm + 0.3 * spacing, spacing), tx.cell_index(height[m], 3.2), int(salt[m][0]) % 997
            )
            glass = tx.tint((0.16, 0.2, 0.26), 0.6 + 0.8 * pane)
            glass = tx.mix(glass, (0.35, 0.3, 0.25), tx.band(floor_phase, 1.8, 2.4, fm) * (pane > 0.6))
            vertical = axis[m] != 1
            wall = tx.mix(wall, (0.85, 0.85, 0.82), frame * vertical)
            out[m] = tx.mix(wall, glass, window * vertical)
        elif k == CAR_BODY:
            paint = tx.tint(cm, 0.85 + 0.3 * noise.fbm(sm, tm, fm, 3.0, 3))
            wheels = tx.band(height[m], -1.0, 0.35, fm)
            lights = tx.band(height[m], 0.6, 0.75, fm) * (axis[m] == 2)
            paint = tx.mix(paint, (0.9, 0.85, 0.6), lights * tx.stripes(sm + 0.15, 0.9, 0.25, fm))
            out[m] = tx.mix(paint, (0.08, 0.08, 0.08), wheels)
        elif k == CAR_CABIN:
            glass = tx.tint((0.12, 0.14, 0.18), 0.8 + 0.5 * noise.fbm(sm, tm, fm, 2.0, 3))
            pillars = tx.stripes(sm, 1.1, 0.12, fm) * (axis[m] == 0)
            roof = axis[m] == 1
            out[m] = tx.mix(glass, cm, np.maximum(pillars, roof.astype(np.float32)))
        elif k == POLE:
            out[m] = tx.speckled(noise, sm * 4, tm, fm, cm, frequency=3.0, contrast=0.5)
        else:
            out[m] = tx.planks(noise, sm, tm, fm, cm * 0.8 + 0.15, width=0.12, salt=int(k))
    return out


def _sky(world: World, rays: np.ndarray, focal: float) -> np.ndarray:
    """Sky colour by world direction only (a surface at infinity: the same from every position)."""
    direction = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    elevation = np.clip(-direction[:, 1], 0.0, 1.0)
    base = tx.mix((0.82, 0.86, 0.9), (0.35, 0.55, 0.85), np.sqrt(elevation))
    up = np.maximum(elevation, 0.05)
    s, t = direction[:, 0] / up, direction[:, 2] / up
    fp = (1.0 / focal) / up**2
    clouds = np.clip((world.noise.fbm(s, t + 300, fp, 0.6, 5) - 0.45) * 3.0, 0, 1)
    return tx.mix(base, (0.95, 0.95, 0.97), clouds * 0.8)


def velodyne_rays() -> np.ndarray:
    """Unit directions of a 64-beam scanner (velodyne frame: x forward, y left, z up), 0.2 deg azimuth."""
    azimuth = -np.pi + 2 * np.pi * np.arange(_VELODYNE_AZIMUTHS) / _VELODYNE_AZIMUTHS
    elevation, azimuth = np.meshgrid(_VELODYNE_ELEVATIONS, azimuth, indexing="ij")
    return np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1
    ).reshape(-1, 3)


def velodyne_scan(world: World, world_from_velo: np.ndarray) -> np.ndarray:
    """(N, 4) float32 (x, y, z, reflectance) in the velodyne frame: exact hits on the true surfaces."""
    directions = velodyne_rays()
    hits, rays, origin = cast_scanner(world, world_from_velo, directions, _VELODYNE_AZIMUTHS, VELODYNE_RANGE)
    keep = np.isfinite(hits.t) & (hits.t < VELODYNE_RANGE) & (hits.t > 2.0)
    index = np.flatnonzero(keep)
    # reflectance = albedo grey level; a coarse footprint (laser spot ~ 2 cm/m) keeps only the broad texture
    _, grey = shade_hits(world, hits.subset(index), rays[index], origin, 50.0)
    points = directions[index] * hits.t[index, None]
    return np.concatenate([points, grey[:, None]], axis=1).astype(np.float32)
