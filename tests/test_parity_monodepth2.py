"""depthcli's monodepth2 preset computes, step by step, the loss of monodepth2's own trainer.

Reference: `tests/fixtures/official/monodepth2_trainer.json`, made by
`tests/fixtures/official/make_monodepth2_trainer_fixture.py` from the official code (its docstring says
how). Both sides start from the same seeded release folder, see the same three real KITTI frames
(batch 1, no augmentation) and the same K, and draw the automask's tie noise from identically seeded
generators. See docs/parity.md for what is compared and why the tolerances are what they are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures.official.official_recipe import crop_frame, kitti_intrinsics, seeded_state_dict

from depthcli.data.images import read_rgb
from depthcli.engine.run_dir import METRICS_FILE
from depthcli.engine.selfsup import SelfSupTask
from depthcli.engine.trainer import train
from depthcli.recipe_configs import SELFSUP
from depthcli.weights.release_import import import_reference_weights

FIXTURE = json.loads((Path(__file__).parent / "fixtures/official/monodepth2_trainer.json").read_text())
STEPS = len(FIXTURE["losses"]["reference"])


def write_release(folder: Path) -> Path:
    """The seeded monodepth2 release folder the official run started from (all four files)."""
    folder.mkdir()
    for name, layout in FIXTURE["layout"].items():
        state = seeded_state_dict(layout, FIXTURE["weight_seed"])
        if name == "encoder":
            state.update(height=FIXTURE["crop"]["height"], width=FIXTURE["crop"]["width"], use_stereo=False)
        torch.save(state, folder / f"{name}.pth")
    return folder


class ParitySample(torch.utils.data.Dataset):
    """The fixture's sample `steps` times (one epoch = the whole run, so nothing is saved in between)."""

    def __init__(self, kitti_root: Path, steps: int) -> None:
        crop, sample = FIXTURE["crop"], FIXTURE["sample"]
        folder = kitti_root / sample["folder"] / "image_02" / "data"
        self.item = {}
        for offset in FIXTURE["frame_ids"]:
            rgb = crop_frame(read_rgb(folder / f"{sample['frame_index'] + offset:010d}.png"), crop)
            image = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
            self.item[("color", offset, 0)] = self.item[("color_aug", offset, 0)] = image
        self.item[("K", 0)], self.item[("inv_K", 0)] = kitti_intrinsics(crop["width"], crop["height"])
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> dict:
        return {**self.item, "index": index}


@pytest.fixture(scope="module")
def depthcli_losses(kitti_mini, tmp_path_factory) -> list[float]:
    """The total loss depthcli's monodepth2 preset logs at each of its first steps."""
    tmp = tmp_path_factory.mktemp("parity_monodepth2")
    release = write_release(tmp / "release")
    crop = FIXTURE["crop"]
    config = SELFSUP.build_config(
        "monodepth2",
        overrides={
            "size": (crop["width"], crop["height"]),
            "batch_size": 1,
            "max_steps": STEPS,
            "augment": False,
            "log_every": 1,
            "lr": FIXTURE["adam"]["lr"],
            "lr_decay_at": 1.0,
            "num_workers": 0,
            "amp": "off",  # the official trainer runs in float32 (the default `auto` is bf16 on capable CPUs)
            "channels_last": False,
        },
    )
    imported = import_reference_weights("monodepth2", release)
    task = SelfSupTask.from_config(config)
    task.networks["depth"].load_state_dict(imported["model"])
    task.networks["pose"].load_state_dict(imported["networks"]["pose"])
    task.tie_noise_generator = torch.Generator().manual_seed(FIXTURE["noise"]["seed"])
    train(task, ParitySample(kitti_mini, STEPS), config, tmp / "run", progress=False)
    records = [json.loads(line) for line in (tmp / "run" / METRICS_FILE).read_text().splitlines()]
    return [record["loss"] for record in records if "loss" in record]


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_first_step_loss_matches_the_official_trainer(depthcli_losses):
    official = FIXTURE["losses"]["reference"][0]["loss"]
    assert relative(depthcli_losses[0], official) < 1e-4
    # tighter against the official run whose colour pyramid is made the way depthcli makes it
    assert relative(depthcli_losses[0], FIXTURE["losses"]["area_pyramid"][0]["loss"]) < 2e-6


def test_following_steps_follow_the_official_trainer(depthcli_losses):
    """Steps 2-3 under identical Adam settings; Adam's first updates are sign-like, so they amplify rounding."""
    assert len(depthcli_losses) == STEPS
    for step in range(1, STEPS):
        assert relative(depthcli_losses[step], FIXTURE["losses"]["area_pyramid"][step]["loss"]) < 1e-3


def test_the_comparison_can_tell_the_half_pixel_mismatch_apart(depthcli_losses):
    """The official code under today's torch default (align_corners=False) is measurably off."""
    mismatched, reference = (FIXTURE["losses"][name][0]["loss"] for name in ("align_corners_false", "reference"))
    assert relative(depthcli_losses[0], mismatched) > 5 * relative(depthcli_losses[0], reference)


def test_warp_equals_monodepth2_project3d_with_align_corners_true(kitti_mini):
    """monodepth2's pixel normalisation `u / (W - 1)` sampled with align_corners=True (torch 0.4.1's default)
    and depthcli's `(2u + 1) / W - 1` with align_corners=False pick the same points: equal to float rounding."""
    from depthcli.geometry import backproject, pose_vec_to_mat, warp_frame

    source = ParitySample(kitti_mini, 1)[0][("color", -1, 0)][None]
    _, _, height, width = source.shape
    K, inv_K = (m[None] for m in kitti_intrinsics(width, height))
    generator = torch.Generator().manual_seed(3)
    depth = 2.0 + 30.0 * torch.rand(1, 1, height, width, generator=generator)
    T = pose_vec_to_mat(torch.tensor([[0.01, -0.02, 0.005]]), torch.tensor([[0.1, -0.05, 0.4]]))

    # monodepth2's BackprojectDepth + Project3D, written out from its layers.py
    camera = (K @ T)[:, :3, :] @ backproject(depth, inv_K)
    pixels = (camera[:, :2] / (camera[:, 2:3] + 1e-7)).view(1, 2, height, width).permute(0, 2, 3, 1)
    grid = (pixels / torch.tensor([width - 1.0, height - 1.0]) - 0.5) * 2
    official = torch.nn.functional.grid_sample(source, grid, padding_mode="border", align_corners=True)

    ours = warp_frame(source, depth, T, K, inv_K)
    assert (ours - official).abs().max() < 1e-4  # measured 2e-5: float32 rounding of coordinates up to 320 px
    mismatched = torch.nn.functional.grid_sample(source, grid, padding_mode="border", align_corners=False)
    assert (ours - mismatched).abs().max() > 0.05  # the half-pixel shift the official code has under today's torch


def test_monodepth2_intrinsics_switch_gives_the_official_camera_on_every_sample(kitti_mini, tmp_path):
    """`intrinsics="monodepth2"`: the one KITTI K of monodepth2's loader, in its pixel values, flipped or not."""
    from depthcli.data.cache import build_cache
    from depthcli.data.datasets import CachedKittiDataset

    split = kitti_mini / "train_files.txt"
    cache = build_cache("kitti", kitti_mini, tmp_path / "train.h5", split=split, size=(320, 96))
    official_K, official_inv_K = kitti_intrinsics(320, 96)
    for intrinsics in ("monodepth2", "calibration"):
        torch.manual_seed(0)  # the same flips for both
        dataset = CachedKittiDataset(cache, augment=True, intrinsics=intrinsics)
        cameras = [(dataset[i][("K", 0)], dataset[i][("inv_K", 0)]) for i in range(len(dataset))]
        if intrinsics == "monodepth2":
            assert all(torch.equal(K, official_K) for K, _ in cameras)
            assert all(torch.allclose(inv_K, official_inv_K, atol=1e-6) for _, inv_K in cameras)
    # the calibrated camera sits pixels away from it and follows the flips (two principal points)
    assert min((K[:2, 2] - official_K[:2, 2]).abs().min() for K, _ in cameras) > 1.0
    assert len({round(float(K[0, 2]), 3) for K, _ in cameras}) == 2
