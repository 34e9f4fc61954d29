"""HDF5 cache: build/info/verify on the real KITTI sample and tiny NYU files, atomic + resumable builds,
corruption detection, the Datasets over it (with DataLoader workers) and the `depthcli cache` CLI."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap

import cv2
import h5py
import numpy as np
import pytest
import scipy.io
import torch

from depthcli.data import kitti
from depthcli.data.cache import build_cache
from depthcli.data.cache_file import cache_info, verify_cache
from depthcli.data.datasets import CachedKittiDataset, CachedNyuDataset
from depthcli.data.images import read_rgb
from depthcli.errors import DepthcliError

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"
# P_rect_02 of 2011_09_26 is in KITTI's 1-based pixels: depthcli's 0-based principal point is one less.
FX, CX, FY, CY = 721.5377, 609.5593 - 1, 721.5377, 172.854 - 1


@pytest.fixture(scope="module")
def eval_cache(kitti_mini, tmp_path_factory):
    return build_cache(
        "kitti", kitti_mini, tmp_path_factory.mktemp("c") / "eval.h5", split=kitti_mini / "eval_files.txt"
    )


@pytest.fixture(scope="module")
def train_cache(kitti_mini, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "train.h5"
    return build_cache("kitti", kitti_mini, out, split=kitti_mini / "eval_files.txt", size=(640, 192))


def _replace(path, data: bytes):
    path.unlink()
    path.write_bytes(data)


# ---- build / info / verify ----------------------------------------------------------------------


def test_eval_cache_holds_full_frames_and_velodyne_gt(eval_cache, kitti_mini):
    info = cache_info(eval_cache)
    assert info["complete"] and info["dataset"] == "kitti" and info["size"] == "full" and info["mode"] == "eval"
    assert (info["frames"], info["samples"], info["skipped"], info["split_name"]) == (10, 10, 0, "eval_files")
    assert info["source_root"] == str(kitti_mini.resolve()) and info["format_version"] == 2
    assert len(info["checksum"]) == 64 and verify_cache(eval_cache) == []
    with h5py.File(eval_cache) as handle:
        assert handle["frames/rgb"].chunks == (1, 375, 1242, 3)
        assert np.array_equal(handle["frames/rgb"][7], read_rgb(kitti_mini / DRIVE / "image_02/data/0000000007.png"))
        expected_gt = kitti.velodyne_depth_map(kitti_mini / "2011_09_26", kitti.velodyne_path(kitti_mini, DRIVE, 7))
        assert np.array_equal(handle["samples/depth_gt"][7], expected_gt)


def test_train_cache_stores_each_frame_once_with_neighbour_table(train_cache, kitti_mini):
    info = cache_info(train_cache)
    assert (info["frames"], info["samples"], info["skipped"], info["size"]) == (10, 8, 2, "640x192")
    with h5py.File(train_cache) as handle:
        assert handle["frames/rgb"].shape == (10, 192, 640, 3) and "samples/depth_gt" not in handle
        sources = handle["frames/source"].asstr()[()]
        table = handle["samples/frames"][()]
        assert list(handle["samples/frames"].attrs["offsets"]) == [0, -1, 1]
        for row, frame_index in zip(table, handle["samples/frame_index"][()], strict=True):
            names = [sources[i].rsplit("/", 1)[1] for i in row]
            assert names == [f"{frame_index + offset:010d}.png" for offset in (0, -1, 1)]
        # Resized content: close to a plain bilinear resize of the real frame (area vs linear differ a little).
        full = read_rgb(kitti_mini / DRIVE / "image_02/data/0000000003.png")
        linear = cv2.resize(full, (640, 192), interpolation=cv2.INTER_LINEAR).astype(float)
        stored = handle["frames/rgb"][list(sources).index(f"{DRIVE}/image_02/data/0000000003.png")]
        assert np.abs(stored - linear).mean() < 6


def test_verify_names_corrupted_and_truncated_entries(train_cache, tmp_path):
    data = train_cache.read_bytes()
    with h5py.File(train_cache) as handle:
        chunk = handle["frames/rgb"].id.get_chunk_info(4)
        source = handle["frames/source"].asstr()[4]
    corrupted = bytearray(data)
    for offset in range(chunk.byte_offset + 5000, chunk.byte_offset + 5016):
        corrupted[offset] ^= 0xFF
    (tmp_path / "flipped.h5").write_bytes(bytes(corrupted))
    problems = verify_cache(tmp_path / "flipped.h5")
    assert len(problems) == 1 and problems[0].startswith(f"frame 4 ({source})") and "corrupted" in problems[0]
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    problems = verify_cache(tmp_path / "cut.h5")
    assert len(problems) == 1 and "cut.h5" in problems[0] and "truncated" in problems[0]


def test_variable_image_sizes_per_date_are_padded_and_cropped_back(kitti_mini, kitti_mini_links, tmp_path):
    """Real KITTI sizes differ by date (1242x375, 1226x370, ...): a full-size cache must keep each size."""
    root = kitti_mini_links
    other = root / "2011_09_30" / "2011_09_30_drive_0001_sync" / "image_02" / "data"
    other.mkdir(parents=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        (root / "2011_09_30" / name).write_bytes((kitti_mini / "2011_09_26" / name).read_bytes())
    small = read_rgb(kitti_mini / DRIVE / "image_02/data/0000000005.png")[:370, :1226]
    cv2.imwrite(str(other / "0000000005.png"), small[..., ::-1])
    velo = root / "2011_09_30" / "2011_09_30_drive_0001_sync" / "velodyne_points" / "data"
    velo.mkdir(parents=True)
    (velo / "0000000005.bin").symlink_to(kitti.velodyne_path(kitti_mini, DRIVE, 5))
    (tmp_path / "split.txt").write_text(f"{DRIVE} 5 l\n2011_09_30/2011_09_30_drive_0001_sync 5 l\n")
    out = build_cache("kitti", root, tmp_path / "mixed.h5", split=tmp_path / "split.txt")
    assert verify_cache(out) == []
    dataset = CachedKittiDataset(out, frame_ids=(0,))
    big, little = dataset[0], dataset[1]
    assert big[("color", 0, 0)].shape == (3, 375, 1242) and little[("color", 0, 0)].shape == (3, 370, 1226)
    assert little["depth_gt"].shape == (1, 370, 1226)
    assert torch.equal(little[("color", 0, 0)], big[("color", 0, 0)][:, :370, :1226])
    # GT projected at the smaller size equals the full-size map cut to it (same calibration).
    assert torch.equal(little["depth_gt"], big["depth_gt"][:, :370, :1226])
    # Each full-size frame gets P_rect's pixel intrinsics at its own size (this one is a crop: same cx, cy).
    assert little[("K", 0)][0, 2] == pytest.approx(CX, rel=1e-6) and big[("K", 0)][1, 2] == pytest.approx(CY, rel=1e-6)


def _nyu_mat(tmp_path, n=5, width=40, height=30):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    depths = rng.uniform(0.5, 9.5, (n, height, width)).astype(np.float32)
    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as handle:
        handle["images"] = images.transpose(0, 3, 2, 1)
        handle["depths"] = depths.transpose(0, 2, 1)
    scipy.io.savemat(
        tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [2], [4]]), "testNdxs": np.array([[3], [5]])}
    )
    return images, depths


def test_nyu_cache_and_dataset(tmp_path):
    images, depths = _nyu_mat(tmp_path)
    out = build_cache("nyu", tmp_path, tmp_path / "nyu.h5")
    info = cache_info(out)
    assert info["splits"] == {"all": 5, "train": 3, "test": 2} and verify_cache(out) == []
    test_set = CachedNyuDataset(out, split="test")
    assert len(test_set) == 2
    sample = test_set[1]  # test index 1 = MATLAB frame 5 = zero-based 4
    assert sorted(map(str, sample)) == sorted(
        map(str, [("color", 0, 0), ("color_aug", 0, 0), ("K", 0), ("inv_K", 0), "depth_gt", "index"])
    )
    assert torch.equal(sample[("color", 0, 0)], torch.from_numpy(images[4]).permute(2, 0, 1).float() / 255)
    assert torch.equal(sample["depth_gt"][0], torch.from_numpy(depths[4]))
    assert sample[("K", 0)][0, 0] == pytest.approx(518.857901 / 640 * 40, rel=1e-5)
    with pytest.raises(DepthcliError, match="no split 'val'"):
        CachedNyuDataset(out, split="val")
    resized = build_cache("nyu", tmp_path, tmp_path / "nyu64.h5", size=(64, 32))
    assert CachedNyuDataset(resized, split="train")[0]["depth_gt"].shape == (1, 32, 64)


# ---- atomic + resumable -------------------------------------------------------------------------

_SLOW_BUILD = """
import sys, time
import depthcli.data.cache as cache
decode = cache.read_rgb
def slow_read_rgb(path):
    time.sleep(0.1)
    return decode(path)
cache.read_rgb = slow_read_rgb
def report(done, total):
    print(done, total, flush=True)
cache.build_cache("kitti", sys.argv[1], sys.argv[2], split=sys.argv[3], progress=report)
"""


def test_killed_build_keeps_previous_file_and_resumes(kitti_mini, tmp_path, train_cache, eval_cache):
    out = tmp_path / "cache.h5"
    out.write_bytes(train_cache.read_bytes())  # a previous, valid cache at the output path
    previous = hashlib.sha256(out.read_bytes()).hexdigest()
    split = kitti_mini / "eval_files.txt"
    script = tmp_path / "slow_build.py"
    script.write_text(textwrap.dedent(_SLOW_BUILD))
    child = subprocess.Popen(
        [sys.executable, str(script), str(kitti_mini), str(out), str(split)], stdout=subprocess.PIPE, text=True
    )
    try:
        for line in child.stdout:
            if int(line.split()[0]) >= 6:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    partial = tmp_path / "cache.h5.partial"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == previous, "the previous cache must survive"
    assert partial.exists()
    partial_info = cache_info(partial)
    assert partial_info["complete"] is False
    assert any("did not complete" in p for p in verify_cache(partial))
    with pytest.raises(DepthcliError, match="incomplete"):
        CachedKittiDataset(partial, frame_ids=(0,))

    reports = []
    build_cache("kitti", kitti_mini, out, split=split, progress=lambda done, total: reports.append(done))
    assert 6 <= reports[0] < 20, "the rebuild resumes from the entries already written"
    assert len(reports) == 20 - reports[0] + 1
    assert not partial.exists() and verify_cache(out) == []
    assert cache_info(out)["checksum"] == cache_info(eval_cache)["checksum"]
    with h5py.File(out) as resumed, h5py.File(eval_cache) as straight:
        assert np.array_equal(resumed["frames/rgb"][()], straight["frames/rgb"][()])
        assert np.array_equal(resumed["samples/depth_gt"][()], straight["samples/depth_gt"][()])


def test_train_cache_with_neighbours_two_frames_apart(kitti_mini, tmp_path):
    out = build_cache(
        "kitti", kitti_mini, tmp_path / "c.h5", split=kitti_mini / "eval_files.txt", size=(64, 32), frame_ids=(0, -2, 2)
    )
    # frames 2..7 have both neighbours two frames away; 0, 1, 8, 9 are skipped
    assert (cache_info(out)["samples"], cache_info(out)["skipped"]) == (6, 4)
    dataset = CachedKittiDataset(out, frame_ids=(0, -2, 2))
    with h5py.File(out) as handle:
        assert list(handle["samples/frame_index"][()]) == [2, 3, 4, 5, 6, 7]
    sample = dataset[1]  # frame 3: its sources are frames 1 and 5
    for offset, frame in ((-2, 1), (2, 5)):
        image = read_rgb(kitti_mini / DRIVE / f"image_02/data/{frame:010d}.png")
        expected = torch.from_numpy(cv2.resize(image, (64, 32), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)
        assert (sample[("color", offset, 0)] * 255 - expected).abs().max() < 1.5
    with pytest.raises(DepthcliError, match=r"stores frame offsets \[0, -2, 2\], not \[-1, 1\].*--frame-ids 0,-1,1"):
        CachedKittiDataset(out, frame_ids=(0, -1, 1))
    with pytest.raises(DepthcliError, match="the target 0 first"):
        build_cache("kitti", kitti_mini, tmp_path / "d.h5", size=(64, 32), frame_ids=(-1, 0, 1))


def test_partial_from_other_parameters_is_not_resumed(kitti_mini, tmp_path):
    out = tmp_path / "c.h5"
    (tmp_path / "c.h5.partial").write_bytes(b"garbage left by a crash")
    reports = []
    build_cache(
        "kitti",
        kitti_mini,
        out,
        split=kitti_mini / "train_files.txt",
        size=(64, 32),
        progress=lambda d, t: reports.append(d),
    )
    assert reports[0] == 0 and verify_cache(out) == []


# ---- datasets -----------------------------------------------------------------------------------


def test_kitti_dataset_sample_dict(train_cache):
    dataset = CachedKittiDataset(train_cache)
    assert len(dataset) == 8
    sample = dataset[2]
    expected_keys = {("color", f, 0) for f in (0, -1, 1)} | {("color_aug", f, 0) for f in (0, -1, 1)}
    assert set(sample) == expected_keys | {("K", 0), ("inv_K", 0), "index"} and sample["index"] == 2
    with h5py.File(train_cache) as handle:
        row = handle["samples/frames"][2]
        raw = handle["frames/rgb"][row[1]]
    assert torch.equal(sample[("color", -1, 0)], torch.from_numpy(raw).permute(2, 0, 1).float() / 255)
    assert torch.equal(sample[("color_aug", 1, 0)], sample[("color", 1, 0)])
    K = sample[("K", 0)]
    # Pixel-centre scaling of P_rect_02 from 1242x375 to 640x192.
    sx, sy = 640 / 1242, 192 / 375
    np.testing.assert_allclose(
        [K[0, 0], K[0, 2], K[1, 1], K[1, 2]],
        [FX * sx, (CX + 0.5) * sx - 0.5, FY * sy, (CY + 0.5) * sy - 0.5],
        rtol=1e-5,
    )
    torch.testing.assert_close(sample[("inv_K", 0)] @ K, torch.eye(4), atol=1e-5, rtol=0)
    with pytest.raises(DepthcliError, match="offsets"):
        CachedKittiDataset(train_cache, frame_ids=(0, 2))


def test_kitti_dataset_with_two_workers_matches_single_process(train_cache):
    dataset = CachedKittiDataset(train_cache, frame_ids=(0, -1, 1))
    dataset[0]  # an open handle in the parent must not leak into the workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(8))
    stacked = torch.cat([b[("color", 1, 0)] for b in batches])
    assert torch.equal(stacked, torch.stack([dataset[i][("color", 1, 0)] for i in range(8)]))


def test_eval_dataset_returns_gt_and_transform_runs_last(eval_cache):
    seen = []

    def transform(sample):
        seen.append(sample["index"])
        return sample | {"extra": True}

    sample = CachedKittiDataset(eval_cache, frame_ids=(0,), transform=transform)[4]
    assert sample["depth_gt"].shape == (1, 375, 1242) and sample["extra"] and seen == [4]
    with pytest.raises(DepthcliError, match="training cache"):
        CachedKittiDataset(eval_cache)


def test_augmented_dataset_is_deterministic_for_a_seed(train_cache):
    dataset = CachedKittiDataset(train_cache, augment=True)
    torch.manual_seed(5)
    first = [dataset[1] for _ in range(6)]
    torch.manual_seed(5)
    second = [dataset[1] for _ in range(6)]
    for a, b in zip(first, second, strict=True):
        assert all(torch.equal(a[key], b[key]) for key in a if isinstance(a[key], torch.Tensor))
    plain = CachedKittiDataset(train_cache)[1]
    for sample in first:  # ("color", f, 0) is never jittered: it is the original or its mirror image
        original = plain[("color", -1, 0)]
        assert torch.equal(sample[("color", -1, 0)], original) or torch.equal(
            sample[("color", -1, 0)], original.flip(-1)
        )


def test_uint8_hand_over_becomes_the_float_sample_on_the_device(train_cache):
    from depthcli.engine.device_batches import to_device

    floats = CachedKittiDataset(train_cache, frame_ids=(0, -1, 1))
    uint8 = CachedKittiDataset(train_cache, frame_ids=(0, -1, 1), uint8_images=True)
    sample = uint8[3]
    assert sample[("color", 0, 0)].dtype == torch.uint8 and sample[("color", 0, 0)].is_contiguous()
    batch = torch.utils.data.default_collate([sample, uint8[4]])
    on_device = to_device(batch, torch.device("cpu"), channels_last=False)
    expected = torch.utils.data.default_collate([floats[3], floats[4]])
    for key in ((c, f, 0) for c in ("color", "color_aug") for f in (0, -1, 1)):
        assert on_device[key].dtype == torch.float32 and torch.equal(on_device[key], expected[key]), key
    assert torch.equal(on_device[("K", 0)], expected[("K", 0)])


def test_a_tensor_shared_between_keys_is_handed_over_and_converted_once(train_cache):
    from depthcli.data.collate import collate_samples
    from depthcli.engine.device_batches import to_device
    from depthcli.engine.selfsup import SelfSupTask
    from depthcli.recipe_configs import SELFSUP

    dataset = CachedKittiDataset(train_cache, frame_ids=(0, -1, 1), uint8_images=True)  # no augmentation
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate_samples)
    batch = next(iter(loader))
    plain = torch.utils.data.default_collate([dataset[0], dataset[1]])
    keys = [(c, f, 0) for c in ("color", "color_aug") for f in (0, -1, 1)]
    assert all(torch.equal(batch[key], plain[key]) for key in keys)
    # ("color_aug", f, 0) arrives from the worker as the very tensor of ("color", f, 0), and stays one after
    assert all(batch[("color_aug", f, 0)] is batch[("color", f, 0)] for f in (0, -1, 1))
    on_device = to_device(batch, torch.device("cpu"), channels_last=True)
    assert on_device[("color_aug", 1, 0)] is on_device[("color", 1, 0)]
    assert on_device[("color", 1, 0)].is_contiguous(memory_format=torch.channels_last)
    # a task reads the shared images exactly as separate copies, and leaves them as they were
    config = SELFSUP.build_config("monodepth2", overrides={"size": (640, 192)})
    torch.manual_seed(0)
    task = SelfSupTask(config).eval()
    separate = to_device(plain, torch.device("cpu"), channels_last=True)
    before = on_device[("color", 0, 0)].clone()
    losses = []
    for inputs in (on_device, separate):
        torch.manual_seed(1)  # automasking breaks ties with random noise
        with torch.no_grad():
            losses.append(task(inputs)["loss"])
    assert torch.equal(*losses)
    assert torch.equal(on_device[("color", 0, 0)], before)
    # a key shared in only some samples of the batch is stacked on its own
    mixed = [dataset[0], dataset[1] | {("color_aug", 0, 0): dataset[1][("color", 0, 0)].clone()}]
    assert collate_samples(mixed)[("color_aug", 0, 0)] is not collate_samples(mixed)[("color", 0, 0)]
