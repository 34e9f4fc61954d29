"""Readers for the real formats: KITTI raw (on the real sample), NYU layouts (tiny files in the real layouts)."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from depthcli.data import kitti, nyu
from depthcli.data.images import read_depth_png, read_rgb
from depthcli.errors import DepthcliError

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


def _frame(root, index, ext="png"):
    return root / DRIVE / "image_02" / "data" / f"{index:010d}.{ext}"


# ---- images -------------------------------------------------------------------------------------


def test_read_rgb_png_and_jpeg_are_rgb(tmp_path):
    image = np.zeros((6, 8, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / "a.png"), image[..., ::-1])
    cv2.imwrite(str(tmp_path / "a.jpg"), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert np.array_equal(read_rgb(tmp_path / "a.png"), image)
    jpeg = read_rgb(tmp_path / "a.jpg").astype(int)
    assert jpeg.shape == (6, 8, 3) and abs(jpeg[..., 0].mean() - 200) < 3 and jpeg[..., 2].max() < 10


def test_read_rgb_real_kitti_frame(kitti_mini):
    image = read_rgb(_frame(kitti_mini, 0))
    assert image.shape == (375, 1242, 3) and image.dtype == np.uint8
    # Sky is above the road: the top rows are brighter than the bottom rows in this daytime drive.
    assert image[:40].mean() > image[-40:].mean()


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_truncated_and_corrupt_images_name_the_file(tmp_path, kitti_mini, ext):
    source = read_rgb(_frame(kitti_mini, 0))
    whole = tmp_path / f"whole.{ext}"
    cv2.imwrite(str(whole), source[..., ::-1])
    data = whole.read_bytes()
    (tmp_path / f"half.{ext}").write_bytes(data[: len(data) // 2])
    with pytest.raises(DepthcliError, match=f"half.{ext}.*truncated"):
        read_rgb(tmp_path / f"half.{ext}")
    (tmp_path / f"junk.{ext}").write_bytes(b"not an image at all")
    with pytest.raises(DepthcliError, match=f"junk.{ext}.*corrupt"):
        read_rgb(tmp_path / f"junk.{ext}")
    with pytest.raises(DepthcliError, match="missing.png does not exist"):
        read_rgb(tmp_path / "missing.png")


def test_depth_png_is_value_over_256_zero_invalid(tmp_path):
    raw = np.array([[0, 256, 512], [65535, 1, 2560]], np.uint16)
    cv2.imwrite(str(tmp_path / "gt.png"), raw)
    depth = read_depth_png(tmp_path / "gt.png")
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[0, 1, 2], [65535 / 256, 1 / 256, 10]])
    np.testing.assert_allclose(read_depth_png(tmp_path / "gt.png", scale=1000.0)[0, 1], 0.256)
    cv2.imwrite(str(tmp_path / "eight.png"), raw.astype(np.uint8))
    with pytest.raises(DepthcliError, match="16-bit"):
        read_depth_png(tmp_path / "eight.png")


# ---- KITTI --------------------------------------------------------------------------------------


def test_calib_values_of_the_real_sample(kitti_mini):
    calib = kitti.read_calib_file(kitti_mini / "2011_09_26" / "calib_cam_to_cam.txt")
    np.testing.assert_allclose(calib["S_rect_02"], [1242, 375])
    np.testing.assert_allclose(calib["P_rect_02"][[0, 2, 5, 6, 3]], [721.5377, 609.5593, 721.5377, 172.854, 44.85728])
    assert calib["R_rect_00"].shape == (9,) and "calib_time" not in calib
    velo = kitti.read_calib_file(kitti_mini / "2011_09_26" / "calib_velo_to_cam.txt")
    np.testing.assert_allclose(velo["T"], [-4.069766e-03, -7.631618e-02, -2.717806e-01])
    assert velo["R"].shape == (9,)
    assert kitti.rectified_image_hw(kitti_mini / "2011_09_26") == (375, 1242)


def test_missing_calib_key_names_file_and_key(tmp_path, kitti_mini):
    text = (kitti_mini / "2011_09_26" / "calib_cam_to_cam.txt").read_text()
    (tmp_path / "calib_cam_to_cam.txt").write_text(
        "\n".join(line for line in text.splitlines() if "R_rect_00" not in line)
    )
    (tmp_path / "calib_velo_to_cam.txt").write_bytes((kitti_mini / "2011_09_26" / "calib_velo_to_cam.txt").read_bytes())
    with pytest.raises(DepthcliError, match=r"calib_cam_to_cam.txt has no key 'R_rect_00'"):
        kitti.velodyne_to_image(tmp_path)
    (tmp_path / "calib_velo_to_cam.txt").write_text("R: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(DepthcliError, match=r"calib_velo_to_cam.txt has no key 'T'"):
        kitti.velodyne_to_image(tmp_path)


def test_velodyne_reader(kitti_mini, tmp_path):
    path = kitti_mini / DRIVE / "velodyne_points" / "data" / "0000000000.bin"
    points = kitti.read_velodyne(path)
    assert points.dtype == np.float32 and points.shape == (path.stat().st_size // 16, 4)
    assert 50_000 < len(points) < 200_000 and 0 <= points[:, 3].min() and points[:, 3].max() <= 1
    (tmp_path / "cut.bin").write_bytes(path.read_bytes()[:1000])  # 1000 = 62.5 points
    with pytest.raises(DepthcliError, match=r"cut.bin is 1000 bytes, not a multiple of 16"):
        kitti.read_velodyne(tmp_path / "cut.bin")


def _reference_depth_map(calib_dir, velo_path, height, width, use_velo_x=True):
    """docs/protocols.md's velodyne projection, point by point, in plain Python floats with a dict for the nearest."""

    def parse(path):
        table = {}
        for line in path.read_text().splitlines():
            key, _, rest = line.partition(":")
            try:
                table[key] = [float(v) for v in rest.split()]
            except ValueError:
                pass
        return table

    cam, velo = parse(calib_dir / "calib_cam_to_cam.txt"), parse(calib_dir / "calib_velo_to_cam.txt")
    rt = [velo["R"][3 * r : 3 * r + 3] + [velo["T"][r]] for r in range(3)] + [[0, 0, 0, 1]]
    rect = [cam["R_rect_00"][3 * r : 3 * r + 3] + [0] for r in range(3)] + [[0, 0, 0, 1]]
    prj = [cam["P_rect_02"][4 * r : 4 * r + 4] for r in range(3)]

    def matmul(a, b):
        return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]

    p = matmul(prj, matmul(rect, rt))
    nearest = {}
    for x, y, z, _ in np.fromfile(velo_path, np.float32).reshape(-1, 4).astype(float).tolist():
        if x < 0:
            continue
        a, b, c = (p[r][0] * x + p[r][1] * y + p[r][2] * z + p[r][3] for r in range(3))
        u, v = round(a / c) - 1, round(b / c) - 1
        if 0 <= u < width and 0 <= v < height:
            value = x if use_velo_x else c
            if (v, u) not in nearest or value < nearest[(v, u)]:
                nearest[(v, u)] = value
    depth = np.zeros((height, width), np.float32)
    for (v, u), value in nearest.items():
        depth[v, u] = max(value, 0.0)
    return depth


@pytest.mark.parametrize("depth_value", ["velo_x", "cam_z"])
def test_gt_projection_matches_pointwise_reference(kitti_mini, depth_value):
    calib_dir = kitti_mini / "2011_09_26"
    velo = kitti_mini / DRIVE / "velodyne_points" / "data" / "0000000004.bin"
    depth = kitti.velodyne_depth_map(calib_dir, velo, (375, 1242), depth_value=depth_value)
    expected = _reference_depth_map(calib_dir, velo, 375, 1242, use_velo_x=depth_value == "velo_x")
    assert depth.shape == (375, 1242) and depth.dtype == np.float32
    assert np.array_equal(depth > 0, expected > 0) and (depth > 0).sum() > 10_000
    np.testing.assert_allclose(depth, expected, rtol=1e-5, atol=1e-5)


def test_gt_lands_on_the_road_where_flat_ground_predicts(kitti_mini):
    """Bottom-centre pixels see the road: depth there must follow a flat ground plane 1.65 m below the camera.

    A transposed, flipped or mis-calibrated projection puts other surfaces (or nothing) on these pixels.
    """
    calib_dir = kitti_mini / "2011_09_26"
    depth = kitti.velodyne_depth_map(calib_dir, kitti_mini / DRIVE / "velodyne_points" / "data" / "0000000000.bin")
    fy, cy = 721.5377, 172.854 - 1  # P_rect's cy is 1-based; rows here are 0-based
    rows, cols = np.nonzero(depth)
    assert rows.min() > 60, "velodyne sees at most 2 degrees upwards: no GT near the top of the image"
    assert (rows > cy).mean() > 0.7
    road = (rows > 330) & (cols > 400) & (cols < 840)
    ratio = depth[rows[road], cols[road]] / (1.65 * fy / (rows[road] - cy))
    assert road.sum() > 500
    assert 0.95 < np.median(ratio) < 1.15 and np.percentile(ratio, 90) - np.percentile(ratio, 10) < 0.1
    assert 1.0 < depth[depth > 0].min() and depth.max() < 120


def test_eigen_quirk_velodyne_x_exceeds_camera_z_by_the_mount_offset(kitti_mini):
    calib_dir = kitti_mini / "2011_09_26"
    velo = kitti_mini / DRIVE / "velodyne_points" / "data" / "0000000000.bin"
    velo_x = kitti.velodyne_depth_map(calib_dir, velo)
    cam_z = kitti.velodyne_depth_map(calib_dir, velo, depth_value="cam_z")
    both = (velo_x > 0) & (cam_z > 0)
    # calib_velo_to_cam T_z = -0.27 m: the velodyne sits 0.27 m behind the camera.
    assert abs(np.median(velo_x[both] - cam_z[both]) - 0.2718) < 0.02


def test_split_reader_and_paths(kitti_mini, tmp_path):
    entries = kitti.read_split(kitti_mini / "eval_files.txt")
    assert len(entries) == 10 and entries[3] == kitti.SplitEntry(DRIVE, 3, "l", 4)
    assert kitti.image_path(kitti_mini, DRIVE, 3, "l") == _frame(kitti_mini, 3)
    assert kitti.image_path(kitti_mini, DRIVE, 3, "r", "jpg").parts[-3:] == ("image_03", "data", "0000000003.jpg")
    (tmp_path / "bad.txt").write_text(f"{DRIVE} 1 l\n{DRIVE} x l\n")
    with pytest.raises(DepthcliError, match="bad.txt line 2"):
        kitti.read_split(tmp_path / "bad.txt")


def test_neighbours_skip_drive_ends_and_missing_frames_name_the_line(kitti_mini, tmp_path):
    samples, skipped = kitti.resolve_samples(kitti_mini, kitti.read_split(kitti_mini / "eval_files.txt"))
    assert skipped == 2 and [s.entry.frame_index for s in samples] == list(range(1, 9))
    assert samples[0].frame_paths[-1] == _frame(kitti_mini, 0) and samples[0].frame_paths[1] == _frame(kitti_mini, 2)
    eval_samples, eval_skipped = kitti.resolve_samples(
        kitti_mini, kitti.read_split(kitti_mini / "eval_files.txt"), (0,)
    )
    assert len(eval_samples) == 10 and eval_skipped == 0
    (tmp_path / "split.txt").write_text(f"{DRIVE} 1 l\n\n{DRIVE} 42 l\n")
    with pytest.raises(DepthcliError, match=r"line 3 points at missing frame .*0000000042.png"):
        kitti.resolve_samples(kitti_mini, kitti.read_split(tmp_path / "split.txt"))


def test_normalised_intrinsics_round_trip_through_pixels(kitti_mini):
    p_rect = kitti.rectified_projection(kitti_mini / "2011_09_26")
    k = kitti.normalised_intrinsics(p_rect, (1242, 375))
    # pixel-centre convention: cx_px = cx_n * W - 0.5 gives back P_rect's cx at full size, made 0-based
    # (KITTI's P_rect counts the first pixel centre as 1, depthcli as 0)
    assert k[0, 0] * 1242 == pytest.approx(721.5377, rel=1e-6)
    assert k[0, 2] * 1242 - 0.5 == pytest.approx(609.5593 - 1, rel=1e-6)
    assert k[1, 2] * 375 - 0.5 == pytest.approx(172.854 - 1, rel=1e-6)


def test_not_a_kitti_root(tmp_path):
    with pytest.raises(DepthcliError, match="does not exist"):
        kitti.check_kitti_root(tmp_path / "nope")
    with pytest.raises(DepthcliError, match="not a KITTI raw layout"):
        kitti.check_kitti_root(tmp_path)


# ---- NYU ----------------------------------------------------------------------------------------


def _write_labelled_mat(path, n=4, width=10, height=6, raw=True):
    """The v7.3 layout as h5py sees it: column-major MATLAB arrays appear with reversed axes."""
    rng = np.random.default_rng(0)
    images_hwc = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    depths_hw = rng.uniform(0.5, 9.5, (n, height, width)).astype(np.float32)
    with h5py.File(path, "w") as handle:
        handle["images"] = images_hwc.transpose(0, 3, 2, 1)  # (N, 3, W, H)
        handle["depths"] = depths_hw.transpose(0, 2, 1)  # (N, W, H)
        if raw:
            handle["rawDepths"] = (depths_hw * (depths_hw > 2)).transpose(0, 2, 1)
    return images_hwc, depths_hw


def test_nyu_labelled_mat_is_read_lazily_in_image_order(tmp_path):
    images, depths = _write_labelled_mat(tmp_path / "nyu_depth_v2_labeled.mat")
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [3]]), "testNdxs": np.array([[2], [4]])})
    source = nyu.open_nyu(tmp_path)
    assert isinstance(source, nyu.NyuLabeledMat) and len(source) == 4 and source._handle is None
    rgb, depth = source[2]
    assert rgb.shape == (6, 10, 3) and np.array_equal(rgb, images[2])
    np.testing.assert_array_equal(depth, depths[2])
    np.testing.assert_array_equal(source.raw_depth(1), depths[1] * (depths[1] > 2))
    assert source.splits["train"].tolist() == [0, 2] and source.splits["test"].tolist() == [1, 3]
    source.close()


def test_nyu_splits_are_zero_based_and_checked(tmp_path):
    scipy.io.savemat(tmp_path / "s.mat", {"trainNdxs": np.array([[1], [1449]]), "testNdxs": np.array([[7]])})
    splits = nyu.read_nyu_splits(tmp_path / "s.mat", 1449)
    assert splits["train"].tolist() == [0, 1448] and splits["test"].tolist() == [6]
    with pytest.raises(DepthcliError, match="outside"):
        nyu.read_nyu_splits(tmp_path / "s.mat", 100)
    scipy.io.savemat(tmp_path / "t.mat", {"trainNdxs": np.array([[1]])})
    with pytest.raises(DepthcliError, match="no 'testNdxs'"):
        nyu.read_nyu_splits(tmp_path / "t.mat")


def test_nyu_frame_h5_folder(tmp_path):
    rng = np.random.default_rng(1)
    expected = {}
    for split, scene, name in [("train", "office_0001", "00001"), ("val", "official", "00002")]:
        (tmp_path / split / scene).mkdir(parents=True)
        rgb = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
        depth = rng.uniform(1, 5, (4, 5)).astype(np.float32)
        with h5py.File(tmp_path / split / scene / f"{name}.h5", "w") as handle:
            handle["rgb"], handle["depth"] = rgb, depth
        expected[split] = (rgb, depth)
    source = nyu.open_nyu(tmp_path)
    assert isinstance(source, nyu.NyuFrameH5Folder) and len(source) == 2
    assert source.splits["train"].tolist() == [0] and source.splits["test"].tolist() == [1]
    rgb, depth = source[1]
    assert np.array_equal(rgb, expected["val"][0].transpose(1, 2, 0)) and np.array_equal(depth, expected["val"][1])


@pytest.mark.parametrize("unit, scale", [("mm", 1000.0), ("256", 256.0)])
def test_nyu_png_pairs_with_depth_unit(tmp_path, nyu_real_sample, unit, scale):
    rgb = read_rgb(nyu_real_sample / "rgb.png")
    depth = np.load(nyu_real_sample / "depth.npy")
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    cv2.imwrite(str(tmp_path / "rgb" / "kitchen.png"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "depth" / "kitchen.png"), np.round(depth * scale).astype(np.uint16))
    source = nyu.open_nyu(tmp_path, depth_unit=unit)
    assert isinstance(source, nyu.NyuPngFolder) and len(source) == 1
    got_rgb, got_depth = source[0]
    assert np.array_equal(got_rgb, rgb)
    np.testing.assert_allclose(got_depth, depth, atol=0.5 / scale + 1e-6)
    assert 0.7 < got_depth.min() and got_depth.max() < 6  # the sample's documented 0.72-5.87 m
    (tmp_path / "rgb" / "orphan.png").write_bytes((tmp_path / "rgb" / "kitchen.png").read_bytes())
    with pytest.raises(DepthcliError, match="orphan.png has no depth partner"):
        nyu.open_nyu(tmp_path)


def test_not_a_nyu_layout(tmp_path):
    with pytest.raises(DepthcliError, match="does not exist"):
        nyu.open_nyu(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DepthcliError, match="not a NYU layout"):
        nyu.open_nyu(tmp_path)
    (tmp_path / "fake.mat").write_text("not hdf5")
    with pytest.raises(DepthcliError, match="fake.mat is not a readable HDF5"):
        nyu.open_nyu(tmp_path)
