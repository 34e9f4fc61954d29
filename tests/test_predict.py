"""`depthcli predict`: outputs, names, sizes, failures, overwrite protection, videos, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthcli.checkpoints import save_checkpoint
from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.nets import build_depth_net
from depthcli.predict import predict
from depthcli.predict_inputs import plan_inputs
from depthcli.visualize import colorize_disparity

NET_SIZE = (128, 64)  # (W, H)
MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_depth_net("monodepth2")
    path = tmp_path_factory.mktemp("ckpt") / "md2.ckpt"
    config = {"net": "monodepth2", "size": list(NET_SIZE), "min_depth": MIN_DEPTH, "max_depth": MAX_DEPTH}
    save_checkpoint(path, {"kind": "depth", "config": config, "model": model.state_dict(), "step": 7})
    return path


def _write_image(path: Path, width: int, height: int, seed: int) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    return rgb


def _read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def test_colorize_matches_monodepth2_matplotlib_mapping():
    disp = np.random.default_rng(1).random((20, 30)).astype(np.float32) ** 3
    # monodepth2's test_simple.py: Normalize(min, 95th percentile) + ScalarMappable("magma")
    vmax = np.percentile(disp, 95)
    norm = matplotlib.colors.Normalize(vmin=disp.min(), vmax=vmax)
    mapper = matplotlib.cm.ScalarMappable(norm=norm, cmap="magma")
    expected = (mapper.to_rgba(disp)[:, :, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(colorize_disparity(disp, "magma"), expected)
    with pytest.raises(DepthcliError, match="colormap"):
        colorize_disparity(disp, "no-such-map")


def test_folder_with_two_sizes_and_bad_files(tmp_path, checkpoint):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_image(src / "wide.png", 200, 100, seed=1)
    _write_image(src / "sub" / "tall.jpg", 90, 150, seed=2)
    good = (src / "wide.png").read_bytes()
    (src / "broken.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    (src / "notes.txt").write_text("not an image\n")

    result = CliRunner().invoke(
        app, ["predict", str(src), "--checkpoint", str(checkpoint), "--out", str(out), "--recursive", "-b", "2"]
    )
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.output and "notes.txt" in result.output
    assert "2 input(s) failed" in result.output
    assert str(out) in result.output

    assert _read_png(out / "wide_disp.png").shape == (100, 200, 3)
    assert _read_png(out / "sub" / "tall_disp.png").shape == (150, 90, 3)
    wide = np.load(out / "wide_disp.npy")
    assert wide.shape == (NET_SIZE[1], NET_SIZE[0]) and wide.dtype == np.float32
    assert np.load(out / "sub" / "tall_disp.npy").shape == (NET_SIZE[1], NET_SIZE[0])
    # monodepth2's scaled disparity: 1/max_depth + (1/min_depth - 1/max_depth) * sigmoid
    assert 1 / MAX_DEPTH < wide.min() and wide.max() < 1 / MIN_DEPTH
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(
        ["wide_disp.png", "wide_disp.npy", "tall_disp.png", "tall_disp.npy"]
    )
    # the colour PNG is the disparity brought back to the input size, then colour-mapped (min .. 95th
    # percentile, so the same picture for the sigmoid or the scaled disparity, up to rounding at a LUT step)
    full = cv2.resize(wide, (200, 100), interpolation=cv2.INTER_LINEAR)
    difference = np.abs(_read_png(out / "wide_disp.png")[:, :, ::-1].astype(int) - colorize_disparity(full))
    assert np.mean(difference == 0) > 0.99 and difference.max() <= 8


def test_npy_is_the_network_output(tmp_path, checkpoint):
    rgb = _write_image(tmp_path / "img.png", NET_SIZE[0], NET_SIZE[1], seed=3)
    predict([tmp_path / "img.png"], checkpoint, tmp_path / "out", device="cpu", amp="off")
    payload = torch.load(checkpoint, weights_only=True)
    model = build_depth_net("monodepth2")
    model.load_state_dict(payload["model"])
    with torch.no_grad():
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # already at network size
        sigmoid = model.eval()(image)[("disp", 0)][0, 0].numpy().astype(np.float64)
    expected = 1 / MAX_DEPTH + (1 / MIN_DEPTH - 1 / MAX_DEPTH) * sigmoid  # what monodepth2's test_simple.py saves
    np.testing.assert_allclose(np.load(tmp_path / "out" / "img_disp.npy"), expected, rtol=1e-6, atol=1e-6)


def test_real_kitti_frames(tmp_path, checkpoint, kitti_mini):
    frames = kitti_mini / "2011_09_26" / "2011_09_26_drive_0000_sync" / "image_02" / "data"
    result = predict([frames], checkpoint, tmp_path / "out", size=(256, 64), batch_size=5, device="cpu")
    names = sorted(p.stem for p in frames.glob("*.png"))
    assert not result.failures and result.frames_done == len(names) > 0
    for name in names:
        assert _read_png(tmp_path / "out" / f"{name}_disp.png").shape == (375, 1242, 3)
        assert np.load(tmp_path / "out" / f"{name}_disp.npy").shape == (64, 256)


def test_jpeg_is_the_png_picture_within_jpeg_error(tmp_path, checkpoint):
    _write_image(tmp_path / "img.png", 150, 70, seed=4)
    result = predict([tmp_path / "img.png"], checkpoint, tmp_path / "out", save=["png", "jpg"], device="cpu")
    assert [path.name for path in result.written["jpg"]] == ["img_disp.jpeg"]
    lossless = _read_png(tmp_path / "out" / "img_disp.png").astype(int)
    jpeg = cv2.imread(str(tmp_path / "out" / "img_disp.jpeg"), cv2.IMREAD_COLOR).astype(int)
    assert jpeg.shape == lossless.shape == (70, 150, 3)
    # quality 95, no chroma subsampling: a few levels of 255 on average even for this pixel-noise disparity,
    # and far closer to the lossless picture than the same colours mirrored
    error = np.abs(jpeg - lossless).mean()
    assert error < 4 and error < np.abs(jpeg - lossless[:, ::-1]).mean() / 4


def test_depth16_is_scaled_metric_depth(tmp_path, checkpoint):
    _write_image(tmp_path / "img.png", 150, 70, seed=4)
    out = tmp_path / "out"
    result = predict([tmp_path / "img.png"], checkpoint, out, scale_factor=5.4, device="cpu")
    assert set(result.written) == {"png", "npy", "depth16"}
    stored = _read_png(out / "img_depth.png")
    assert stored.dtype == np.uint16 and stored.shape == (70, 150)
    scaled_disp = cv2.resize(np.load(out / "img_disp.npy"), (150, 70), interpolation=cv2.INTER_LINEAR)
    depth = 1.0 / scaled_disp.astype(np.float64)
    expected = np.clip(np.rint(5.4 * depth * 256), 0, 65535)
    assert np.abs(stored.astype(np.float64) - expected).max() <= 1


def test_never_overwrites_silently(tmp_path, checkpoint):
    _write_image(tmp_path / "in" / "a.png", 64, 32, seed=5)
    _write_image(tmp_path / "in" / "b.png", 64, 32, seed=6)
    out = tmp_path / "out"
    predict([tmp_path / "in" / "a.png"], checkpoint, out, device="cpu")
    before = (out / "a_disp.npy").read_bytes()
    with pytest.raises(DepthcliError, match="a_disp.* already exists.*--overwrite"):
        predict([tmp_path / "in"], checkpoint, out, device="cpu")
    assert not (out / "b_disp.png").exists()  # checked before any work
    _write_image(tmp_path / "in" / "a.png", 64, 32, seed=7)
    predict([tmp_path / "in"], checkpoint, out, device="cpu", overwrite=True)
    assert (out / "b_disp.png").exists() and (out / "a_disp.npy").read_bytes() != before


def test_video_every_nth_frame(tmp_path, checkpoint):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    assert writer.isOpened()
    for index in range(7):
        writer.write(np.full((64, 96, 3), 30 * index, dtype=np.uint8))
    writer.release()
    frames, failures = plan_inputs([video], every=3)
    assert not failures and [f.frame_index for f in frames] == [0, 3, 6]
    out = tmp_path / "out"
    result = predict([video], checkpoint, out, every=3, device="cpu")
    assert result.frames_done == 3 and not result.failures
    assert sorted(p.name for p in (out / "clip").glob("*_disp.png")) == [
        "000000_disp.png",
        "000003_disp.png",
        "000006_disp.png",
    ]
    assert _read_png(out / "clip" / "000003_disp.png").shape == (64, 96, 3)


def test_glob_input_and_name_collisions(tmp_path, checkpoint):
    _write_image(tmp_path / "x" / "a.png", 64, 32, seed=8)
    _write_image(tmp_path / "x" / "b.png", 64, 32, seed=9)
    frames, _ = plan_inputs([str(tmp_path / "x" / "*.png")])
    assert [str(f.out_stem) for f in frames] == ["a", "b"]
    _write_image(tmp_path / "x" / "out" / "a_disp.png", 64, 32, seed=10)  # earlier outputs inside the input
    frames, _ = plan_inputs([tmp_path / "x"], recursive=True, exclude=tmp_path / "x" / "out")
    assert [str(f.out_stem) for f in frames] == ["a", "b"]
    _write_image(tmp_path / "x" / "a.jpg", 64, 32, seed=10)
    with pytest.raises(DepthcliError, match="both write a_"):
        plan_inputs([tmp_path / "x"])
    with pytest.raises(DepthcliError, match="matches nothing"):
        plan_inputs([str(tmp_path / "x" / "*.tif")])


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty folder", "holds no files"),
        ("missing input", "does not exist"),
        ("unwritable output", "not writable"),
        ("truncated checkpoint", "cannot be read"),
        ("foreign checkpoint", "not a depthcli checkpoint"),
        ("depth16 without scale", "needs --scale-factor"),
        ("bad device", "--device"),
        ("size not multiple of 32", "multiples of 32"),
    ],
)
def test_bad_input(tmp_path, checkpoint, case, message):
    image = tmp_path / "img.png"
    _write_image(image, 64, 32, seed=11)
    inputs, ckpt, out, extra = [image], checkpoint, tmp_path / "out", {}
    if case == "empty folder":
        (tmp_path / "empty").mkdir()
        inputs = [tmp_path / "empty"]
    elif case == "missing input":
        inputs = [tmp_path / "nope.png"]
    elif case == "unwritable output":
        out = image / "sub"  # below a regular file: cannot be created, even as root
    elif case == "truncated checkpoint":
        ckpt = tmp_path / "cut.ckpt"
        ckpt.write_bytes(checkpoint.read_bytes()[:5000])
    elif case == "foreign checkpoint":
        ckpt = tmp_path / "foreign.pth"
        torch.save({"encoder.conv1.weight": torch.zeros(1)}, ckpt)
    elif case == "depth16 without scale":
        extra = {"save": ["png", "depth16"]}
    elif case == "bad device":
        extra = {"device": "tpu"}
    elif case == "size not multiple of 32":
        extra = {"size": (96, 50)}
    with pytest.raises(DepthcliError, match=message):
        predict(inputs, ckpt, out, **extra)
    assert not (tmp_path / "out").exists()  # nothing created before the error


def test_cli_rejects_size_not_multiple_of_32(tmp_path, checkpoint):
    _write_image(tmp_path / "img.png", 64, 32, seed=12)
    cmd = [sys.executable, "-m", "depthcli", "predict", str(tmp_path / "img.png"), "--checkpoint", str(checkpoint)]
    done = subprocess.run(cmd + ["--out", str(tmp_path / "out"), "--size", "100x64"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "100x64" in done.stderr and "multiples of 32" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_device_names_like_eval_and_sweep(monkeypatch):
    from depthcli.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("cuda:x", "cpu:0", "gpu", "cuda:"):
        with pytest.raises(DepthcliError, match="cuda:N"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DepthcliError, match="only 2 CUDA device"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DepthcliError, match="no CUDA device"):
        resolve_device("cuda:0")


def test_bf16_outputs_within_a_hundredth_of_float32_and_workers_change_nothing(tmp_path, checkpoint, kitti_mini):
    frames = kitti_mini / "2011_09_26" / "2011_09_26_drive_0000_sync" / "image_02" / "data"
    runs = {"fp32": ("off", 0), "fp32-workers": ("off", 2), "bf16": ("bf16", 2)}
    for name, (amp, workers) in runs.items():
        result = predict([frames], checkpoint, tmp_path / name, size=(256, 64), batch_size=3, device="cpu",
                         amp=amp, workers=workers, save=["npy"])  # fmt: skip
        assert result.frames_done == 10 and not result.failures
    scaled_per_sigmoid = 1 / MIN_DEPTH - 1 / MAX_DEPTH  # the .npy holds the scaled disparity
    for path in sorted((tmp_path / "fp32").glob("*.npy")):
        fp32 = np.load(path)
        assert np.array_equal(np.load(tmp_path / "fp32-workers" / path.name), fp32)
        assert np.abs(np.load(tmp_path / "bf16" / path.name) - fp32).max() / scaled_per_sigmoid < 1e-2
