"""Each protocol switch against hand-made cases where the variants give different, known answers."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_harness import run_cli
from PIL import Image, JpegImagePlugin

from depthcli.data.kitti import read_split
from depthcli.errors import DepthcliError
from depthcli.evaluation.evaluate import EvalOptions, evaluate_predictions
from depthcli.evaluation.ground_truth import EvalSet, encode_jpeg92, kitti_eval_set, kitti_image_loader
from depthcli.evaluation.protocols import PROTOCOLS, build_protocol, resize_align_corners
from depthcli.inference import images_to_batch


def score(preds, gts, protocol, **options):
    eval_set = EvalSet([f"img{i}" for i in range(len(gts))], "hand-made", lambda i: gts[i])
    return evaluate_predictions(np.asarray(preds, np.float32), eval_set, EvalOptions(protocol, **options)).metrics


# ---------------------------------------------------------------- crop: garg / eigen / none


def test_crops_select_their_rows():
    """Rows 130 (Eigen's crop only), 200 (both), 360 (Garg's only), 10 (neither) of a 375x1242 GT."""
    gt = np.zeros((375, 1242), np.float32)
    pred = np.full((1, 375, 1242), 10.0, np.float32)
    for row, predicted in ((130, 20.0), (200, 10.0), (360, 15.0), (10, 12.0)):
        gt[row, 600] = 10.0
        pred[0, row, 600] = predicted  # abs_rel 1.0, 0.0, 0.5, 0.2
    expected = {"garg": (0.0 + 0.5) / 2, "eigen": (1.0 + 0.0) / 2, "none": (1.0 + 0.0 + 0.5 + 0.2) / 4}
    for crop, value in expected.items():
        protocol = build_protocol("kitti-eigen", crop=crop)
        metrics = score(pred, [gt], protocol, pred_type="depth", median_scaling=False)
        assert metrics["abs_rel"] == pytest.approx(value), crop
    # Eigen's crop as monodepth v1 computes it: [0.3324324 H, 0.91351351 H) x [0.0359477 W, 0.96405229 W)
    assert int(0.3324324 * 375) == 124 and int(0.91351351 * 375) == 342  # so row 130 in, row 360 out


# ---------------------------------------------------------------- cap: 80 / 100, and GT capped or not


def test_cap_masks_gt_and_clamps_predictions():
    gt = np.zeros((375, 1242), np.float32)
    gt[200, 600], gt[201, 600] = 50.0, 90.0
    pred = np.full((1, 375, 1242), 500.0, np.float32)
    cap80 = score(pred, [gt], "kitti-eigen", pred_type="depth", median_scaling=False)
    assert cap80["abs_rel"] == pytest.approx(30 / 50)  # 90 m GT dropped, prediction clamped to 80
    cap100 = score(pred, [gt], build_protocol("kitti-eigen", cap=100), pred_type="depth", median_scaling=False)
    assert cap100["abs_rel"] == pytest.approx((50 / 50 + 10 / 90) / 2)
    legacy = score(pred, [gt], build_protocol("kitti-benchmark-legacy", crop="garg"), pred_type="depth",
                   median_scaling=False)  # fmt: skip
    assert legacy["abs_rel"] == pytest.approx((30 / 50 + 10 / 90) / 2)  # GT beyond 80 kept, clamp at 80


# ---------------------------------------------------------------- Sq Rel: over gt or over gt²


def test_sq_rel_formulas():
    gt = np.zeros((375, 1242), np.float32)
    pred = np.full((1, 375, 1242), 1.0, np.float32)
    gt[200, 600], gt[201, 600] = 2.0, 4.0
    pred[0, 200, 600], pred[0, 201, 600] = 4.0, 8.0
    legacy = score(pred, [gt], "kitti-eigen", pred_type="depth", median_scaling=False)
    squared = score(pred, [gt], build_protocol("kitti-eigen", sq_rel="squared"), pred_type="depth",
                    median_scaling=False)  # fmt: skip
    assert legacy["sq_rel"] == pytest.approx((4 / 2 + 16 / 4) / 2)  # mean(err² / gt) = 3
    assert squared["sq_rel"] == pytest.approx((4 / 4 + 16 / 16) / 2)  # mean(err² / gt²) = 1
    assert legacy["abs_rel"] == squared["abs_rel"] == pytest.approx(1.0)


# ---------------------------------------------------------------- resize: disparity with cv2, or depth bilinear


def test_resize_modes_give_their_known_answers():
    """Disparity (1, 0.5) on 2 pixels scored against 3 GT pixels of depth (1, 1.5, 2).

    monodepth2: cv2 resizes the disparity with half-pixel centres -> (1, 0.75, 0.5) -> depth (1, 4/3, 2).
    packnet-sfm: depth (1, 2) resized with corners aligned -> (1, 1.5, 2), exact.
    """
    gt = [np.array([[1.0, 1.5, 2.0]], np.float32)]
    pred = np.array([[[1.0, 0.5]]], np.float32)
    options = {"pred_type": "disp", "median_scaling": False}
    cv2_way = score(pred, gt, build_protocol("kitti-eigen", crop="none", resize="disp-cv2"), **options)
    packnet = score(pred, gt, build_protocol("kitti-eigen", crop="none", resize="depth-bilinear"), **options)
    assert cv2_way["abs_rel"] == pytest.approx((1.5 - 4 / 3) / 1.5 / 3)
    assert packnet["abs_rel"] == pytest.approx(0.0, abs=1e-12)


def test_align_corners_resize_equals_torch():
    image = np.random.default_rng(0).random((7, 11))
    for height, width in ((15, 30), (4, 5), (7, 11), (1, 3)):
        ours = resize_align_corners(image, height, width)
        theirs = F.interpolate(
            torch.from_numpy(image)[None, None], (height, width), mode="bilinear", align_corners=True
        )
        np.testing.assert_allclose(ours, theirs[0, 0].numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- GT depth: velodyne x or camera z


def _tiny_kitti(root, velo_points: np.ndarray) -> None:
    """A 100x40 rig whose camera sits 1 m behind the scanner: camera z = velodyne x + 1."""
    date = root / "2011_01_01"
    drive = date / "2011_01_01_drive_0001_sync"
    (drive / "velodyne_points" / "data").mkdir(parents=True)
    (date / "calib_cam_to_cam.txt").write_text(
        "S_rect_02: 1.000000e+02 4.000000e+01\n"
        "R_rect_00: 1 0 0 0 1 0 0 0 1\n"
        "P_rect_02: 50 0 51 0 0 50 31 0 0 0 1 0\n"  # 1-based principal point (51, 31): 0-based (50, 30)
    )
    (date / "calib_velo_to_cam.txt").write_text("R: 0 -1 0 0 0 -1 1 0 0\nT: 0 0 1\n")
    points = np.concatenate([velo_points, np.ones((len(velo_points), 1))], axis=1).astype(np.float32)
    points.tofile(drive / "velodyne_points" / "data" / "0000000000.bin")
    (root / "split.txt").write_text("2011_01_01/2011_01_01_drive_0001_sync 0 l\n")


def test_gt_depth_axis_velodyne_x_or_camera_z(tmp_path, monkeypatch):
    # (10, 0, 0) lands at pixel (row 30, col 50); (20, 2, 0) at col round(50 - 100/21 + 1) - 1 = 45
    _tiny_kitti(tmp_path, np.array([[10.0, 0.0, 0.0], [20.0, 2.0, 0.0]]))
    velo_x = kitti_eval_set(tmp_path, tmp_path / "split.txt", "kitti-eigen").load_gt(0)
    cam_z = kitti_eval_set(tmp_path, tmp_path / "split.txt", "kitti-eigen-corrected").load_gt(0)
    assert (velo_x[30, 50], velo_x[30, 45], cam_z[30, 50], cam_z[30, 45]) == (10.0, 20.0, 11.0, 21.0)
    assert np.count_nonzero(velo_x) == np.count_nonzero(cam_z) == 2
    pred = np.full((1, 40, 100), 5.0, np.float32)
    pred[0, 30, 50], pred[0, 30, 45] = 11.0, 21.0  # the true camera-axis depths
    np.save(tmp_path / "p.npy", pred)
    out = tmp_path / "out.json"
    base = ["eval", "--predictions", tmp_path / "p.npy", "--data", tmp_path, "--split", tmp_path / "split.txt"]
    base += ["--pred-type", "depth", "--no-median-scaling", "--json", out]
    assert run_cli(monkeypatch, *base) == 0
    (legacy,) = json.loads(out.read_text())
    assert legacy["abs_rel"] == pytest.approx((1 / 10 + 1 / 20) / 2)  # the Eigen quirk's error
    assert legacy["sq_rel"] == pytest.approx((1 / 10 + 1 / 20) / 2)  # err² / gt with err = 1
    assert run_cli(monkeypatch, *base, "--protocol", "kitti-eigen-corrected") == 0
    (corrected,) = json.loads(out.read_text())
    assert corrected["abs_rel"] == corrected["sq_rel"] == 0.0
    assert corrected["variant"]["gt_depth"] == "cam-z" and corrected["variant"]["sq_rel"] == "squared"
    assert run_cli(monkeypatch, *base, "--gt-depth", "cam-z") == 0  # one switch on the legacy preset
    (switched,) = json.loads(out.read_text())
    assert switched["protocol"] == "kitti-eigen [gt_depth=cam-z]" and switched["abs_rel"] == 0.0


# ---------------------------------------------------------------- test frames: PNG, JPEG, PNG through JPEG q92


def test_jpeg92_is_quality_92_with_420_chroma(kitti_mini):
    """The re-encoding monodepth2's README asks for: `convert -quality 92 -sampling-factor 2x2,1x1,1x1`."""
    rgb = np.asarray(Image.open(next((kitti_mini / "2011_09_26").rglob("0000000000.png"))).convert("RGB"))
    encoded = encode_jpeg92(rgb)
    decoded = Image.open(io.BytesIO(encoded))
    assert JpegImagePlugin.get_sampling(decoded) == 2  # 4:2:0 (PIL's code for 2x2,1x1,1x1)
    # libjpeg's quality scaling of the standard luminance table (IJG): q >= 50 -> scale 200 - 2q = 16 %
    standard_luma_first_row = [16, 11, 10, 16, 24, 40, 51, 61]
    expected = [max(1, (value * 16 + 50) // 100) for value in standard_luma_first_row]
    table = decoded.quantization[0]
    assert list(table)[:8] == expected  # Pillow lists the table in natural (row-major) order
    used: set[str] = set()
    loader = kitti_image_loader(kitti_mini, read_split(kitti_mini / "eval_files.txt"), "jpeg92", used)
    through_jpeg = loader(0)
    assert used == {"jpeg92"} and through_jpeg.shape == rgb.shape
    difference = np.abs(through_jpeg.astype(int) - rgb)
    assert 0 < difference.mean() < 6  # lossy: 4:2:0 chroma blurs colour edges (3.4 grey levels on this frame)


def test_frames_auto_prefers_png_and_records_what_it_read(kitti_mini_links):
    entries = read_split(kitti_mini_links / "eval_files.txt")[:2]
    frame = kitti_mini_links / entries[1].folder / "image_02" / "data" / "0000000001.png"
    rgb = cv2.imread(str(frame))
    frame.unlink()
    cv2.imwrite(str(frame.with_suffix(".jpg")), rgb)
    used: set[str] = set()
    loader = kitti_image_loader(kitti_mini_links, entries, "auto", used)
    loader(0)
    assert used == {"png"}
    loader(1)
    assert used == {"png", "jpg"} and EvalSet([], "", lambda i: None, frames_read=used).frames_label() == "jpg+png"
    with pytest.raises(DepthcliError, match="0000000001.png"):
        kitti_image_loader(kitti_mini_links, entries, "png", set())(1)


# ---------------------------------------------------------------- image resize: torch or PIL Lanczos


def test_pil_lanczos_resize_is_the_official_test_scripts():
    """monodepth2's test_simple.py: PIL `resize((w, h), LANCZOS)` on the 8-bit image, then ToTensor (/255)."""
    rgb = np.random.default_rng(3).integers(0, 256, (75, 248, 3), dtype=np.uint8)
    ours = images_to_batch([rgb], (64, 32), "pil-lanczos")
    pil = np.asarray(Image.fromarray(rgb).resize((64, 32), Image.LANCZOS), dtype=np.float32) / 255
    np.testing.assert_array_equal(ours[0].permute(1, 2, 0).numpy(), pil)
    bilinear = images_to_batch([rgb], (64, 32), "torch")
    assert bilinear.shape == ours.shape and not torch.equal(bilinear, ours)


# ---------------------------------------------------------------- presets and bad switches


def test_presets_state_every_switch():
    eigen, corrected = PROTOCOLS["kitti-eigen"].variant(), PROTOCOLS["kitti-eigen-corrected"].variant()
    assert {key for key in eigen if eigen[key] != corrected[key]} == {"preset", "gt_depth", "sq_rel"}
    benchmark = PROTOCOLS["kitti-benchmark"].variant()
    assert (benchmark["gt"], benchmark["crop"], benchmark["max_depth"], benchmark["sq_rel"]) == (
        "improved", "none", 100.0, "squared",
    )  # fmt: skip
    assert PROTOCOLS["kitti-benchmark"].table[:4] == ("silog", "sq_rel", "abs_rel", "irmse")  # the devkit's


@pytest.mark.parametrize(
    ("switch", "message"),
    [({"crop": "square"}, "--crop"), ({"cap": 0.0}, "--cap"), ({"sq_rel": "x"}, "--sq-rel"), ({"gt": "lidar"}, "--gt")],
)
def test_bad_switches_are_one_line_errors(switch, message):
    with pytest.raises(DepthcliError, match=message):
        build_protocol("kitti-eigen", **switch)
