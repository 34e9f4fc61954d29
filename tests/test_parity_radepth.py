"""RA-Depth's arbitrary-scale augmentation and cross-scale consistency equal the official trainer's.

Reference: `tests/fixtures/official/radepth_augment_consistency.json`, made by
`tests/fixtures/official/make_radepth_fixture.py` from the official code (its docstring says how), on
crops of real KITTI frames at 320x96 with recorded scale and crop draws. See docs/parity.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.official.official_recipe import KITTI_K_NORMALISED, crop_frame, disparity_field

from depthcli.data.arbitrary_scale import ArbitraryScaleAugment, ScaleDraw
from depthcli.data.images import read_rgb
from depthcli.engine.selfsup import SelfSupTask
from depthcli.errors import DepthcliError
from depthcli.geometry import intrinsics_from_normalised
from depthcli.losses import CrossScaleConsistency
from depthcli.recipe_configs import SELFSUP

FIXTURE = json.loads((Path(__file__).parent / "fixtures/official/radepth_augment_consistency.json").read_text())
CROP = FIXTURE["crop"]
WIDTH, HEIGHT = CROP["width"], CROP["height"]


def depthcli_sample(kitti_root: Path, frame_index: int) -> dict:
    """The sample dict depthcli's dataset yields for these frames (K in depthcli's pixel convention)."""
    folder = kitti_root / FIXTURE["folder"] / "image_02" / "data"
    sample = {}
    for offset in FIXTURE["frame_ids"]:
        rgb = crop_frame(read_rgb(folder / f"{frame_index + offset:010d}.png"), CROP)
        sample[("color", offset, 0)] = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
        sample[("color_aug", offset, 0)] = sample[("color", offset, 0)]
    K = intrinsics_from_normalised(torch.tensor(KITTI_K_NORMALISED)[:3, :3], WIDTH, HEIGHT)
    sample[("K", 0)], sample[("inv_K", 0)] = K, torch.linalg.inv(K)
    return sample


def official_draw(official: dict) -> ScaleDraw:
    return ScaleDraw(tuple(official["high_size"]), tuple(official["high_offset"]), tuple(official["low_size"]))


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return np.round(image.permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)


@pytest.mark.parametrize("index", range(len(FIXTURE["samples"])))
def test_variants_equal_the_official_loader(kitti_mini, index):
    official = FIXTURE["samples"][index]
    sample = ArbitraryScaleAugment(tuple(FIXTURE["frame_ids"])).apply(
        depthcli_sample(kitti_mini, official["frame_index"]), official_draw(official)
    )
    keys = {"high": "high", "middle": 0, "low": "low"}
    for variant, key in keys.items():
        ours = as_uint8(sample[("color", 0, key)])[::8, ::8].astype(np.float32) / 255.0
        theirs = np.frombuffer(base64.b64decode(official["frame0_every_8th"][variant]), np.uint8)
        assert np.abs(ours - theirs.reshape(ours.shape) / 255.0).max() <= 1e-5, variant
        for frame in FIXTURE["frame_ids"]:
            digest = hashlib.sha256(as_uint8(sample[("color", frame, key)]).tobytes()).hexdigest()
            assert digest == official["sha256"][f"{variant} {frame}"], f"{variant} frame {frame}"


@pytest.mark.parametrize("index", range(len(FIXTURE["samples"])))
def test_variant_intrinsics_are_the_official_cameras(kitti_mini, index):
    """Same cameras; the official pixel K puts cx at W/2 (depthcli: W/2 - 0.5, pixel centres at integers)
    and leaves the high crop to its warp (pixel coordinates minus the offset), so compare like with like."""
    official = FIXTURE["samples"][index]
    sample = ArbitraryScaleAugment(tuple(FIXTURE["frame_ids"])).apply(
        depthcli_sample(kitti_mini, official["frame_index"]), official_draw(official)
    )
    for variant, shift in (("high", official["high_offset"]), ("low", (0, 0))):
        expected = torch.tensor(official["K"][variant])
        expected[0, 2] -= shift[0] + 0.5
        expected[1, 2] -= shift[1] + 0.5
        assert torch.allclose(sample[("K", variant)], expected, atol=1e-4), variant


def test_draws_follow_the_official_formulas(monkeypatch):
    """s_H, x_H, y_H, s_L from four uniforms in the official order, sizes and offsets truncated as it does."""
    for official in FIXTURE["samples"]:
        uniforms = iter(official["uniforms"])
        monkeypatch.setattr(torch, "rand", lambda *args, uniforms=uniforms, **kwargs: torch.tensor(next(uniforms)))
        assert ArbitraryScaleAugment().draw(WIDTH, HEIGHT) == official_draw(official)


def _consistency_inputs(samples: list[dict], mask: str):
    seed, disp = FIXTURE["disparity_seed"], {}
    for variant in ("high", "middle", "low"):
        fields = [disparity_field(seed, s["frame_index"], variant, HEIGHT, WIDTH) for s in samples]
        disp[variant] = torch.from_numpy(np.stack(fields))
    bits = np.unpackbits(np.frombuffer(base64.b64decode(mask), np.uint8))[: len(samples) * HEIGHT * WIDTH]
    identity = torch.from_numpy(bits.reshape(len(samples), 1, HEIGHT, WIDTH).astype(bool))
    high_size = torch.tensor([s["high_size"] for s in samples], dtype=torch.float32)
    high_offset = torch.tensor([s["high_offset"] for s in samples], dtype=torch.float32)
    low_size = torch.tensor([s["low_size"] for s in samples], dtype=torch.float32)
    return disp, identity, high_size, high_offset, low_size


def _terms(consistency: CrossScaleConsistency, inputs) -> tuple[float, float]:
    disp, identity, high_size, high_offset, low_size = inputs
    keep = (~identity).float()
    high = consistency.high_term(disp["middle"], disp["high"], high_size, high_offset, keep)
    low = consistency.low_term(disp["middle"], disp["low"], low_size, keep)
    total = consistency(disp["middle"], disp["high"], high_size, high_offset, disp["low"], low_size, identity)
    assert torch.allclose(total, high + low)
    return high.item(), low.item()


def test_consistency_of_one_sample_equals_the_official_loss():
    for sample, official in zip(FIXTURE["samples"], FIXTURE["consistency"]["each_alone"], strict=True):
        high, low = _terms(CrossScaleConsistency(), _consistency_inputs([sample], official["identity_selected"]))
        assert abs(high - official["consis_high"]) < 1e-5
        assert abs(low - official["consis_low"]) < 1e-5


def test_batch_mask_switch_reproduces_the_official_batch_loss():
    """The released trainer weighs each sample's low term with the whole batch's mask: `low_mask="batch"`."""
    official = FIXTURE["consistency"]["batch"]
    inputs = _consistency_inputs(FIXTURE["samples"], official["identity_selected"])
    high, low = _terms(CrossScaleConsistency(low_mask="batch"), inputs)
    assert abs(high - official["consis_high"]) < 1e-5
    assert abs(low - official["consis_low"]) < 1e-5
    # the default (each sample's own mask) is the mean of the official single-sample losses instead
    alone = FIXTURE["consistency"]["each_alone"]
    high, low = _terms(CrossScaleConsistency(), inputs)
    assert abs(high - np.mean([a["consis_high"] for a in alone])) < 1e-5
    assert abs(low - np.mean([a["consis_low"] for a in alone])) < 1e-5
    assert abs(low - official["consis_low"]) > 3e-5  # the two masks differ by more than the tolerance here


def test_radepth_preset_feeds_the_pose_net_plain_frames():
    """RA-Depth's trainer gives its pose net the un-jittered middle frames (monodepth2 the jittered ones)."""
    seen = []
    plain, jittered = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    batch = {("color", f, 0): plain for f in (0, -1, 1)} | {("color_aug", f, 0): jittered for f in (0, -1, 1)}
    for preset in ("monodepth2", "radepth"):
        task = SelfSupTask(SELFSUP.build_config(preset, overrides={"net": "monodepth2", "scales": (0,)}))
        task.networks["pose"].register_forward_hook(lambda module, args, output: seen.append(args))
        task._poses(batch)
    assert all(frame is jittered for args in seen[:2] for frame in args)
    assert all(frame is plain for args in seen[2:] for frame in args)


def test_low_mask_is_a_config_switch():
    config = SELFSUP.build_config("radepth", overrides={"net": "monodepth2", "consistency_low_mask": "batch"})
    assert SelfSupTask(config).consistency.low_mask == "batch"
    assert SELFSUP.build_config("radepth").consistency_low_mask == "sample"
    with pytest.raises(DepthcliError, match="consistency_low_mask"):
        SELFSUP.build_config("radepth", overrides={"consistency_low_mask": "all"})
