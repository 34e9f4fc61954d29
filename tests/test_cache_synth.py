"""Round trip: synthetic worlds (written in the real formats by depthcli.synth) -> readers -> cache -> Dataset."""

from __future__ import annotations

import h5py
import numpy as np
import torch
from conftest import SYNTHETIC_KITTI_SIZE

from depthcli.data import kitti
from depthcli.data.cache import build_cache
from depthcli.data.cache_file import cache_info, verify_cache
from depthcli.data.datasets import CachedKittiDataset, CachedNyuDataset
from depthcli.data.images import read_rgb
from depthcli.synth.kitti_world import intrinsics_for, make_rig


def test_synthetic_kitti_velodyne_gt_matches_the_true_depth(synthetic_kitti, tmp_path):
    """Camera-z GT projected from the synthetic scans must agree with the renderer's dense depth."""
    out = build_cache(
        "kitti", synthetic_kitti, tmp_path / "test.h5", split=synthetic_kitti / "test_files.txt", depth_value="cam_z"
    )
    assert verify_cache(out) == []
    rendered_K = make_rig(SYNTHETIC_KITTI_SIZE).K
    np.testing.assert_allclose(rendered_K, intrinsics_for(SYNTHETIC_KITTI_SIZE), rtol=1e-6)  # up to text rounding
    dataset = CachedKittiDataset(out, frame_ids=(0,))
    entries = kitti.read_split(synthetic_kitti / "test_files.txt")
    for index, entry in enumerate(entries):
        sample = dataset[index]
        # At full size the cached K is the one the frames were rendered with (0-based pixels), although
        # the calibration file holds it 1-based as KITTI does.
        np.testing.assert_allclose(sample[("K", 0)][:3, :3].numpy(), rendered_K, rtol=0, atol=1e-4)
        image = read_rgb(kitti.image_path(synthetic_kitti, entry.folder, entry.frame_index, "l"))
        assert torch.equal(sample[("color", 0, 0)], torch.from_numpy(image).permute(2, 0, 1).float() / 255)
        truth = np.load(synthetic_kitti / entry.folder / "depth_true" / "data" / f"{entry.frame_index:010d}.npy")
        # The written P_rect is 1-based like KITTI's, so the protocol's "minus 1" puts each point on the pixel
        # where it was rendered: compare at the same pixel.
        gt = sample["depth_gt"][0].numpy()
        valid = (gt > 0) & (truth > 0)
        assert valid.sum() > 500, "synthetic scans must project into the image with the written calibration"
        relative = np.abs(gt[valid] - truth[valid]) / truth[valid]
        # Pixel rounding puts a few points across depth edges; the bulk must match closely.
        assert np.median(relative) < 0.01 and np.mean(relative < 0.02) > 0.9


def test_synthetic_kitti_training_cache(synthetic_kitti, tmp_path):
    out = build_cache(
        "kitti", synthetic_kitti, tmp_path / "train.h5", split=synthetic_kitti / "train_files.txt", size=(416, 128)
    )
    info = cache_info(out)
    entries = kitti.read_split(synthetic_kitti / "train_files.txt")
    assert info["samples"] + info["skipped"] == len(entries) and info["samples"] > 0
    sample = CachedKittiDataset(out)[0]
    entry = entries[0]
    previous = read_rgb(kitti.image_path(synthetic_kitti, entry.folder, entry.frame_index - 1, "l"))
    assert torch.equal(sample[("color", -1, 0)], torch.from_numpy(previous).permute(2, 0, 1).float() / 255)


def test_synthetic_nyu_mat_round_trip(synthetic_nyu, tmp_path):
    out = build_cache("nyu", synthetic_nyu, tmp_path / "nyu.h5")
    assert verify_cache(out) == []
    test_set = CachedNyuDataset(out, split="test")
    with h5py.File(synthetic_nyu / "nyu_depth_v2_labeled.mat", "r") as handle:
        test_index = int(test_set.frames[0])
        image = handle["images"][test_index].transpose(2, 1, 0)
        depth = handle["depths"][test_index].T
    sample = test_set[0]
    assert torch.equal(sample[("color", 0, 0)], torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1) / 255)
    assert torch.equal(sample["depth_gt"][0], torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)))
    assert len(test_set) + len(CachedNyuDataset(out, split="train")) == cache_info(out)["frames"]
