"""Synthetic worlds: files in the real formats, checked against independent geometry.

The expectations are computed here from the files alone (our own calib parser, closed-form road
depth, reprojection with the true poses), never through depthcli.synth internals.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io
from conftest import SYNTHETIC_KITTI_FRAMES, SYNTHETIC_KITTI_SIZE, SYNTHETIC_NYU_FRAMES, SYNTHETIC_NYU_SIZE
from typer.testing import CliRunner

from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.synth import synth_kitti, synth_nyu

DATE = "2000_01_01"
DRIVE = f"{DATE}/{DATE}_drive_0001_sync"
CAMERA_HEIGHT = 1.65


def parse_calib(path: Path) -> dict[str, np.ndarray]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(": ")
        if key != "calib_time":
            values[key] = np.array(rest.split(), dtype=np.float64)
    return values


def camera_from_velodyne(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(P_rect_02 3x4, 4x4 rectified-camera-0 from velodyne) from the calibration text.

    P is in KITTI's 1-based pixels (first pixel centre at 1), like the real devkit's."""
    cam = parse_calib(root / DATE / "calib_cam_to_cam.txt")
    velo = parse_calib(root / DATE / "calib_velo_to_cam.txt")
    rect = np.eye(4)
    rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :3], tr[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    return cam["P_rect_02"].reshape(3, 4), rect @ tr


def zero_based_K(P: np.ndarray) -> np.ndarray:
    """The 3x3 intrinsics of a 1-based P_rect in 0-based pixels (centres at 0..W-1): cx, cy minus 1."""
    K = P[:, :3].copy()
    K[:2, 2] -= 1
    return K


def frame_files(root: Path, frame: int):
    drive = root / DRIVE
    rgb = cv2.imread(str(drive / "image_02" / "data" / f"{frame:010d}.png"))[:, :, ::-1]
    depth = np.load(drive / "depth_true" / "data" / f"{frame:010d}.npy")
    scan = np.fromfile(drive / "velodyne_points" / "data" / f"{frame:010d}.bin", dtype=np.float32).reshape(-1, 4)
    return rgb, depth, scan


def true_poses(root: Path) -> np.ndarray:
    rows = np.loadtxt(root / DRIVE / "poses_true.txt").reshape(-1, 3, 4)
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3] = rows
    return poses


def test_kitti_layout_and_calibration_keys(synthetic_kitti):
    root = synthetic_kitti
    cam = parse_calib(root / DATE / "calib_cam_to_cam.txt")
    for c in range(4):
        for key in ("S", "K", "D", "R", "T", "S_rect", "R_rect", "P_rect"):
            assert f"{key}_0{c}" in cam
    assert tuple(cam["S_rect_02"]) == SYNTHETIC_KITTI_SIZE
    assert (root / DATE / "calib_velo_to_cam.txt").read_text().startswith("calib_time: ")
    width, height = SYNTHETIC_KITTI_SIZE
    for frame in range(SYNTHETIC_KITTI_FRAMES):
        rgb, depth, scan = frame_files(root, frame)
        assert rgb.shape == (height, width, 3) and depth.shape == (height, width) and depth.dtype == np.float32
        assert scan.shape[0] > 1000
    stamps = (root / DRIVE / "image_02" / "timestamps.txt").read_text().splitlines()
    assert len(stamps) == SYNTHETIC_KITTI_FRAMES and stamps[1].endswith(".100000000")


def test_split_files_have_neighbours_and_hold_out_the_test_segment(synthetic_kitti):
    lines = {
        name: (synthetic_kitti / f"{name}_files.txt").read_text().split("\n")[:-1] for name in ("train", "val", "test")
    }
    frames = {name: {int(line.split()[1]) for line in entries} for name, entries in lines.items()}
    assert all(line.split()[0] == DRIVE and line.split()[2] == "l" for entries in lines.values() for line in entries)
    test_start = min(frames["test"])
    assert frames["test"] == set(range(test_start, SYNTHETIC_KITTI_FRAMES))
    for name in ("train", "val"):
        # both neighbours exist and none of the three frames is a test frame
        assert all(1 <= f and f + 1 < test_start for f in frames[name])
    assert frames["train"] and not frames["train"] & frames["val"]


def test_road_depth_matches_closed_form(synthetic_kitti):
    """No pitch or roll: the road (y = h below the camera) has depth f_y h / (v - c_y) at row v."""
    P, _ = camera_from_velodyne(synthetic_kitti)
    _, depth, _ = frame_files(synthetic_kitti, 0)
    fy, cy = P[1, 1], P[1, 2] - 1  # 1-based P -> row v of the 0-based depth array
    height = depth.shape[0]
    # camera 2 sits t_02 (from P) off camera 0; the rig puts camera 2 itself at 1.65 m
    checked = 0
    for v in range(height - 12, height):
        expected = fy * CAMERA_HEIGHT / (v - cy)
        row = depth[v]
        matching = np.abs(row - expected) < 1e-3 * expected
        assert matching.mean() > 0.3, f"row {v}: road depth {expected:.3f} m found in only {matching.mean():.0%}"
        checked += matching.sum()
    assert checked > 1000


def test_velodyne_points_land_on_their_true_depth(synthetic_kitti):
    P, cam0_from_velo = camera_from_velodyne(synthetic_kitti)
    for frame in (0, 6):
        _, depth, scan = frame_files(synthetic_kitti, frame)
        points = np.concatenate([scan[:, :3].astype(np.float64), np.ones((len(scan), 1))], axis=1)
        projected = points @ (P @ cam0_from_velo).T
        ahead = (scan[:, 0] >= 0) & (projected[:, 2] > 0.1)
        u = np.round(projected[ahead, 0] / projected[ahead, 2]).astype(int) - 1  # 1-based P -> 0-based pixels
        v = np.round(projected[ahead, 1] / projected[ahead, 2]).astype(int) - 1
        z = projected[ahead, 2]
        inside = (u >= 0) & (v >= 0) & (u < depth.shape[1]) & (v < depth.shape[0])
        assert inside.sum() > 500
        dense = depth[v[inside], u[inside]]
        agree = np.abs(dense - z[inside]) < 0.02 * z[inside]
        assert agree.mean() > 0.9, f"frame {frame}: only {agree.mean():.1%} of the points match the dense depth"
        # velodyne frame: z up, the scanner ~1.73 m above the road, so many returns sit at z = -1.73
        assert (np.abs(scan[:, 2] + 1.73) < 0.1).mean() > 0.2
        assert 0 <= scan[:, 3].min() and scan[:, 3].max() <= 1


def warp_errors(target, depth, K, source, source_depth, source_from_target) -> tuple[float, float]:
    """Mean |I_target - I_source warped into target with the true depth and pose| (visible, in-image
    pixels with depth) vs the mean error without warping, in grey levels."""
    height, width = depth.shape
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3) @ np.linalg.inv(K).T
    points = np.concatenate([rays * depth.reshape(-1, 1), np.ones((rays.shape[0], 1))], axis=1)
    in_source = points @ source_from_target.T
    pix = in_source[:, :3] @ K.T
    with np.errstate(divide="ignore", invalid="ignore"):  # sky pixels (depth 0) project nowhere
        map_u = (pix[:, 0] / pix[:, 2]).reshape(height, width).astype(np.float32)
        map_v = (pix[:, 1] / pix[:, 2]).reshape(height, width).astype(np.float32)
    warped = cv2.remap(source.astype(np.float32), map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = (depth > 0) & (map_u > 1) & (map_u < width - 2) & (map_v > 1) & (map_v < height - 2)
    if source_depth is not None:  # drop pixels occluded in the source
        seen_depth = cv2.remap(source_depth, map_u, map_v, cv2.INTER_NEAREST)
        valid &= np.abs(seen_depth - in_source[:, 2].reshape(height, width)) < 0.03 * seen_depth
    assert valid.mean() > 0.3
    warped_error = np.abs(warped - target).mean(axis=2)[valid].mean()
    identity_error = np.abs(source.astype(np.float32) - target).mean(axis=2)[valid].mean()
    return warped_error, identity_error


def _warp_error(root: Path, frame: int, offset: int) -> tuple[float, float]:
    P, _ = camera_from_velodyne(root)
    poses = true_poses(root)
    target, depth, _ = frame_files(root, frame)
    source, source_depth, _ = frame_files(root, frame + offset)
    source_from_target = np.linalg.inv(poses[frame + offset]) @ poses[frame]
    return warp_errors(target, depth, zero_based_K(P), source, source_depth, source_from_target)


@pytest.mark.parametrize("offset", [1, -1])
def test_true_depth_and_pose_explain_the_next_frame(synthetic_kitti, offset):
    """What self-supervised training relies on: warping with the truth leaves little photometric error."""
    warped, identity = _warp_error(synthetic_kitti, 5, offset)
    assert identity > 8  # there is real texture and motion
    assert warped < 0.3 * identity
    assert warped < 5.0  # grey levels (0-255)


def test_right_camera_is_the_calibrated_baseline_away(tmp_path):
    synth_kitti(tmp_path, frames=5, size=(208, 64), workers=1, stereo=True)
    cam = parse_calib(tmp_path / DATE / "calib_cam_to_cam.txt")
    P2, P3 = cam["P_rect_02"].reshape(3, 4), cam["P_rect_03"].reshape(3, 4)
    baseline = (P2[0, 3] - P3[0, 3]) / P2[0, 0]
    assert 0.5 < baseline < 0.56  # KITTI's colour cameras are ~0.53 m apart
    right_from_left = np.eye(4)
    right_from_left[0, 3] = -baseline  # the right camera sits +baseline along x
    left, depth, _ = frame_files(tmp_path, 2)
    right = cv2.imread(str(tmp_path / DRIVE / "image_03" / "data" / "0000000002.png"))[:, :, ::-1]
    warped, identity = warp_errors(left, depth, zero_based_K(P2), right, None, right_from_left)
    assert warped < 0.35 * identity


def test_nyu_mat_is_matlab_v73_with_nyu_datasets(synthetic_nyu):
    path = synthetic_nyu / "nyu_depth_v2_labeled.mat"
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    width, height = SYNTHETIC_NYU_SIZE
    n = SYNTHETIC_NYU_FRAMES
    with h5py.File(path, "r") as handle:
        assert handle.userblock_size == 512
        images, depths, raw = handle["images"][()], handle["depths"][()], handle["rawDepths"][()]
    assert images.shape == (n, 3, width, height) and images.dtype == np.uint8
    assert depths.shape == (n, width, height) and depths.dtype == np.float32
    assert raw.shape == depths.shape and raw.dtype == np.float32
    assert 0.5 <= depths.min() and depths.max() <= 10.0
    holes = raw == 0
    assert 0.01 < holes.mean() < 0.6
    assert np.all(np.abs(raw[~holes] - depths[~holes]) < 0.02 * depths[~holes] ** 2 + 0.01)
    # (N,3,W,H) -> (N,H,W,3): the floor is the nearest surface at the bottom of a tilted-down view
    rgb = images.transpose(0, 3, 2, 1)
    assert rgb.shape == (n, height, width, 3) and rgb.std() > 20


def test_nyu_splits_are_one_based_columns(synthetic_nyu):
    splits = scipy.io.loadmat(synthetic_nyu / "splits.mat")
    train, test = splits["trainNdxs"], splits["testNdxs"]
    assert train.shape[1] == 1 and test.shape[1] == 1
    together = np.concatenate([train.ravel(), test.ravel()])
    assert sorted(together.astype(int)) == list(range(1, SYNTHETIC_NYU_FRAMES + 1))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = dict(frames=5, size=(64, 24))
    synth_kitti(tmp_path / "a", seed=3, workers=2, **kwargs)
    synth_kitti(tmp_path / "b", seed=3, workers=1, **kwargs)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    for name, seed in (("n1", 3), ("n2", 3), ("n3", 4)):
        synth_nyu(tmp_path / name, frames=2, size=(48, 36), seed=seed, workers=2 if name == "n1" else 1)
    n1, n2, n3 = (_tree(tmp_path / name) for name in ("n1", "n2", "n3"))
    assert n1 == n2
    assert n1.keys() == n3.keys() and n1 != n3


def test_worlds_of_different_seeds_share_no_drive(tmp_path):
    """A training world and a test world rendered with other seeds must not trip the drive-overlap warning."""
    from depthcli.evaluation.selection import data_drives, eval_selection_warnings

    for seed in (0, 1, 366):
        synth_kitti(tmp_path / f"w{seed}", frames=5, size=(32, 16), seed=seed, workers=1)
    assert data_drives(tmp_path / "w0") == {DRIVE}
    assert data_drives(tmp_path / "w1") == {"1999_12_31/1999_12_31_drive_0001_sync"}
    assert data_drives(tmp_path / "w366") == {"1998_12_31/1998_12_31_drive_0001_sync"}  # 1999 has 365 days
    test_drives = data_drives(tmp_path / "w1", tmp_path / "w1" / "test_files.txt")
    assert eval_selection_warnings({"data": str(tmp_path / "w0")}, test_drives, "kitti") == []
    (warning,) = eval_selection_warnings({"data": str(tmp_path / "w1")}, test_drives, "kitti")
    assert "shares 1 drive(s)" in warning  # the same world still warns


def test_cli_writes_and_reports(tmp_path):
    result = CliRunner().invoke(app, ["synth", "kitti", str(tmp_path / "k"), "--frames", "5", "--size", "50x20"])
    assert result.exit_code == 0, result.output
    assert f"5 frames written to {tmp_path / 'k'}" in result.output
    assert (tmp_path / "k" / DRIVE / "image_02" / "data" / "0000000004.png").is_file()


def test_unwritable_output_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DepthcliError, match=str(blocker / "out")):
        synth_kitti(blocker / "out", frames=5, size=(32, 16))
    with pytest.raises(DepthcliError, match="frames"):
        synth_nyu(tmp_path / "n", frames=1)


def test_kitti_readers_round_trip(synthetic_kitti):
    """The project's KITTI reader accepts the synthetic root; its velodyne GT (KITTI's 1-based
    rounding: pixel = round(P X) - 1) matches the dense depth at the same pixel."""
    from depthcli.data import kitti

    entries = kitti.read_split(synthetic_kitti / "train_files.txt")
    samples, skipped = kitti.resolve_samples(synthetic_kitti, entries)
    assert skipped == 0 and len(samples) == len(entries)
    calib_dir = kitti.calib_dir_of(synthetic_kitti, DRIVE)
    assert kitti.rectified_image_hw(calib_dir) == SYNTHETIC_KITTI_SIZE[::-1]
    velo = kitti.velodyne_path(synthetic_kitti, DRIVE, 4)
    gt = kitti.velodyne_depth_map(calib_dir, velo, depth_value="cam_z")
    _, depth, _ = frame_files(synthetic_kitti, 4)
    rows, cols = np.nonzero(gt)
    agree = np.abs(depth[rows, cols] - gt[rows, cols]) < 0.02 * gt[rows, cols]
    assert len(rows) > 500 and agree.mean() > 0.85


def test_nyu_reader_round_trip(synthetic_nyu):
    from depthcli.data import nyu

    mat = nyu.NyuLabeledMat(synthetic_nyu / "nyu_depth_v2_labeled.mat", synthetic_nyu / "splits.mat")
    with h5py.File(synthetic_nyu / "nyu_depth_v2_labeled.mat", "r") as handle:
        expected_rgb = handle["images"][3].transpose(2, 1, 0)
        expected_depth = handle["depths"][3].T
    rgb, depth = mat[3]
    mat.close()
    assert len(mat) == SYNTHETIC_NYU_FRAMES
    assert np.array_equal(rgb, expected_rgb) and np.array_equal(depth, expected_depth)
    assert sorted(np.concatenate([mat.splits["train"], mat.splits["test"]])) == list(range(SYNTHETIC_NYU_FRAMES))


def test_cache_builds_and_verifies_from_synthetic_kitti(synthetic_kitti, tmp_path):
    from depthcli.data.cache import build_cache
    from depthcli.data.cache_file import verify_cache

    out = build_cache("kitti", synthetic_kitti, tmp_path / "w.h5", split=synthetic_kitti / "train_files.txt")
    assert verify_cache(out) == []


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_render_leaves_no_half_world(interruption, tmp_path, monkeypatch):
    import depthcli.synth.generate as generate

    written = []

    def failing_write(path, points):
        written.append(path)
        if len(written) == 3:
            raise interruption

    monkeypatch.setattr(generate.writers, "write_velodyne", failing_write)
    with pytest.raises(type(interruption)):
        synth_kitti(tmp_path / "world", frames=5, size=(32, 16), workers=1)
    assert len(written) == 3 and list(tmp_path.iterdir()) == [], "neither the world nor its staging folder remain"


def test_world_goes_only_into_a_new_or_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    synth_nyu(tmp_path / "empty", frames=2, size=(16, 12), workers=1)
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["nyu_depth_v2_labeled.mat", "splits.mat"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "empty").stat().st_mode & 0o777 == 0o777 & ~umask, "not left private like a temp folder"
    with pytest.raises(DepthcliError, match="empty.* is a folder with files in it; synth writes a whole new world"):
        synth_nyu(tmp_path / "empty", frames=2, size=(16, 12), workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
