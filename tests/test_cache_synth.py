"""Round trip: synthetic worlds (written in the real formats by depthcli.synth) -> readers -> cache -> Dataset."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from depthcli.data import kitti
from depthcli.data.cache import build_cache, cache_info, verify_cache
from depthcli.data.datasets import CachedKittiDataset, CachedNyuDataset
from depthcli.data.images import read_rgb


def test_synthetic_kitti_velodyne_gt_matches_the_true_depth(synthetic_kitti, tmp_path):
    """Camera-z GT projected from the synthetic scans must agree with the renderer's dense depth."""
    out = build_cache(
        "kitti", synthetic_kitti, tmp_path / "test.h5", split=synthetic_kitti / "test_files.txt", depth_value="cam_z"
    )
    assert verify_cache(out) == []
    dataset = CachedKittiDataset(out, frame_ids=(0,))
    entries = kitti.read_split(synthetic_kitti / "test_files.txt")
    for index, entry in enumerate(entries):
        sample = dataset[index]
        image = read_rgb(kitti.image_path(synthetic_kitti, entry.folder, entry.frame_index, "l"))
        assert torch.equal(sample[("color", 0, 0)], torch.from_numpy(image).permute(2, 0, 1).float() / 255)
        truth = np.load(synthetic_kitti / entry.folder / "depth_true" / "data" / f"{entry.frame_index:010d}.npy")
        # GUIDE 4's "minus 1" (KITTI's 1-based MATLAB pixels) puts the point seen at pixel centre (u+1, v+1)
        # of the 0-based rendering into GT pixel (u, v): compare against the truth shifted by one.
        gt = sample["depth_gt"][0].numpy()[:-1, :-1]
        truth = truth[1:, 1:]
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
