"""Self-supervised recipes: RA-Depth augmentation geometry, and a few real steps that lower the loss."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from interrupt import Killed, kill_after
from torch.utils.data import Dataset

from depthcli.data.arbitrary_scale import ArbitraryScaleAugment, splice_fill
from depthcli.engine.selfsup import SelfSupTask, from_scratch_schedule, training_transform
from depthcli.engine.trainer import train
from depthcli.errors import DepthcliError
from depthcli.geometry import intrinsics_from_normalised
from depthcli.nets.pose import FORWARD_CHANNEL, POSE_SCALE
from depthcli.recipe_configs import SELFSUP

KITTI_K = torch.tensor([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
SIZE = (64, 64)


class SlidingTexture(Dataset):
    """A camera sliding sideways past a textured wall: frames are crops shifted by `shift` pixels.

    Depth and pose can explain every frame exactly, so the photometric loss has something to learn.
    """

    def __init__(self, count: int = 2, shift: int = 2, transform=None) -> None:
        self.count, self.shift, self.transform = count, shift, transform

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        width, height = SIZE
        generator = torch.Generator().manual_seed(index)
        wide = width + 2 * self.shift
        coarse = torch.rand(1, 3, height // 4, wide // 4 + 1, generator=generator)
        texture = F.interpolate(coarse, size=(height, wide), mode="bilinear", align_corners=False)[0]
        sample = {}
        for frame in (0, -1, 1):
            x0 = self.shift + frame * self.shift
            sample[("color", frame, 0)] = texture[:, :, x0 : x0 + width].contiguous()
            sample[("color_aug", frame, 0)] = sample[("color", frame, 0)].clone()
        K = intrinsics_from_normalised(KITTI_K, width, height)
        sample[("K", 0)], sample[("inv_K", 0)], sample["index"] = K, torch.linalg.inv(K), index
        return self.transform(sample) if self.transform else sample


# ------------------------------------------------------------------------- arbitrary-scale geometry
def _ramp_sample(width=64, height=48) -> dict:
    """Image = linear ramp I(u, v) = (a u + b v + c) per channel, inside (0, 1): resampling away from the
    borders reproduces it up to the uint8 rounding of the variants."""
    u = torch.arange(width, dtype=torch.float64)
    v = torch.arange(height, dtype=torch.float64)
    coefficients = torch.tensor([[0.01, 0.002, 0.1], [-0.004, 0.008, 0.4], [0.003, 0.003, 0.3]], dtype=torch.float64)
    image = torch.stack([a * u[None, :] + b * v[:, None] + c for a, b, c in coefficients]).float()
    K = intrinsics_from_normalised(KITTI_K, width, height).float()
    sample = {}
    for frame in (0, -1, 1):
        sample[("color", frame, 0)] = image.clone()
        sample[("color_aug", frame, 0)] = image * 0.5  # jitter must not reach the high/low variants
    sample[("K", 0)], sample[("inv_K", 0)] = K, torch.linalg.inv(K)
    return sample, coefficients.float()


def _project(K: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    pixels = (K[:3, :3] @ points.T).T
    return pixels[:, :2] / pixels[:, 2:]


def _sample_at(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear value of (3,H,W) `image` at pixel coordinates (N,2) (align_corners=False convention)."""
    height, width = image.shape[-2:]
    grid = torch.stack([(2 * pixels[:, 0] + 1) / width - 1, (2 * pixels[:, 1] + 1) / height - 1], -1)
    return F.grid_sample(image[None], grid[None, None], align_corners=False)[0, :, 0].T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variant_intrinsics_point_at_the_pixels_showing_each_3d_point(seed):
    torch.manual_seed(seed)
    sample, coefficients = _ramp_sample()
    out = ArbitraryScaleAugment()(sample)
    high_w, high_h = out[("size", "high")].tolist()
    offset_x, offset_y = out[("offset", "high")].tolist()
    low_w, low_h = out[("size", "low")].tolist()
    assert 1.1 * 64 - 1 <= high_w <= 2.0 * 64 and 0.7 * 64 - 1 <= low_w <= 0.9 * 64
    assert 0 <= offset_x <= high_w - 64 and 0 <= offset_y <= high_h - 48

    # 3-D points whose middle-image pixels lie well inside the part the high crop shows
    generator = torch.Generator().manual_seed(seed)
    sx, sy = high_w / 64, high_h / 48
    u_lo, u_hi = (offset_x + 2) / sx, (offset_x + 62) / sx
    v_lo, v_hi = (offset_y + 2) / sy, (offset_y + 46) / sy
    u = u_lo + (u_hi - u_lo) * torch.rand(20, generator=generator)
    v = v_lo + (v_hi - v_lo) * torch.rand(20, generator=generator)
    depth = 1 + 30 * torch.rand(20, generator=generator)
    points = (torch.linalg.inv(out[("K", 0)])[:3, :3] @ torch.stack([u * depth, v * depth, depth])).T

    def ramp(pixels):  # the middle image's value at middle pixels, in closed form
        return pixels[:, :1] * coefficients[:, 0] + pixels[:, 1:] * coefficients[:, 1] + coefficients[:, 2]

    middle_pixels = _project(out[("K", 0)], points)
    assert torch.allclose(middle_pixels, torch.stack([u, v], 1), atol=1e-3)
    high_pixels = _project(out[("K", "high")], points)
    # closed form of resize-then-crop: u'' = s (u + 0.5) - 0.5 - x_H
    assert torch.allclose(high_pixels[:, 0], sx * (u + 0.5) - 0.5 - offset_x, atol=1e-3)
    assert torch.allclose(high_pixels[:, 1], sy * (v + 0.5) - 0.5 - offset_y, atol=1e-3)
    # the variants are uint8 levels, as RA-Depth's loader makes them: the ramp is rounded on the way in and out
    quantised = 1.5 / 255
    assert torch.allclose(_sample_at(out[("color", 0, "high")], high_pixels), ramp(middle_pixels), atol=quantised)
    low_pixels = _project(out[("K", "low")], points)
    assert torch.allclose(low_pixels[:, 0], low_w / 64 * (u + 0.5) - 0.5, atol=1e-3)
    inside = (low_pixels[:, 0] > 2) & (low_pixels[:, 0] < low_w - 3) & (low_pixels[:, 1] > 2)
    inside &= low_pixels[:, 1] < low_h - 3
    got = _sample_at(out[("color", 0, "low")], low_pixels[inside])
    assert torch.allclose(got, ramp(middle_pixels[inside]), atol=quantised)
    assert torch.allclose(out[("inv_K", "high")] @ out[("K", "high")], torch.eye(4), atol=1e-5)
    # all frames share one crop and one scale (identical inputs -> identical variants), no jitter
    for variant in ("high", "low"):
        assert torch.equal(out[("color", -1, variant)], out[("color", 0, variant)])
        assert torch.equal(out[("color", 1, variant)], out[("color", 0, variant)])
    assert torch.equal(out[("color_aug", 0, 0)], sample[("color", 0, 0)] * 0.5)


def test_splice_fill_repeats_the_edge_bands():
    pasted = torch.arange(2 * 7 * 9, dtype=torch.float32).reshape(2, 7, 9)
    canvas = splice_fill(pasted, 10, 12)
    assert torch.equal(canvas[:, :7, :9], pasted)
    assert torch.equal(canvas[:, 7:, :9], pasted[:, 4:7, :])  # last 3 rows below
    assert torch.equal(canvas[:, :7, 9:], pasted[:, :, 6:9])  # last 3 columns to the right
    assert torch.equal(canvas[:, 7:, 9:], pasted[:, 4:7, 6:9])


# ----------------------------------------------------------------------------- a few real steps
@pytest.mark.parametrize("preset", ["monodepth2", "diffnet", "radepth"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tmp_path, preset):
    steps = 4
    config = SELFSUP.build_config(
        preset,
        overrides={
            "size": SIZE,
            "batch_size": 2,
            "max_steps": steps,
            "lr": 3e-4,
            "lr_decay_at": 1.0,
            "num_workers": 0,
            "save_every": 0,
            "log_every": 1,
            "augment": False,
        },
    )
    torch.manual_seed(0)
    task = SelfSupTask(config)
    result = train(task, SlidingTexture(transform=training_transform(config)), config, tmp_path, progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").open()]
    assert result.steps == steps and len(losses) == steps
    assert losses[-1] < 0.85 * losses[0], losses
    if preset == "radepth":
        record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
        assert {"photometric_middle", "photometric_high", "photometric_low", "consistency"} <= set(record)


def _batch_of(sample: dict) -> dict:
    return {k: v.unsqueeze(0) if torch.is_tensor(v) else torch.tensor([v]) for k, v in sample.items()}


def test_consistency_weight_ramps_in_over_its_steps():
    config = SELFSUP.build_config("radepth", overrides={"size": SIZE, "consistency_ramp": (2, 6)})
    torch.manual_seed(0)
    task = SelfSupTask(config)
    batch = _batch_of(SlidingTexture(transform=training_transform(config))[0])
    for step, weight in [(0, 0.0), (2, 0.0), (3, 0.25), (5, 0.75), (6, 1.0), (9, 1.0)]:
        task.step = step
        losses = task(batch)
        photometric = losses["photometric_middle"] + losses["photometric_high"] + losses["photometric_low"]
        assert losses["consistency"] > 0
        assert torch.allclose(losses["loss"], photometric + weight * losses["consistency"], atol=1e-6), step


@pytest.mark.parametrize("automask", [True, False])
def test_automask_dropped_is_the_whole_frame_when_the_camera_stands_still(automask):
    """Identical frames: every source as it is matches the target exactly (error 0), which no warp with a random
    depth and pose does, so the automask drops every pixel; without automasking nothing is dropped or logged."""
    config = SELFSUP.build_config("monodepth2", overrides={"size": SIZE, "automask": automask})
    torch.manual_seed(0)
    task = SelfSupTask(config)
    losses = task(_batch_of(SlidingTexture(shift=0, transform=training_transform(config))[0]))
    if automask:
        assert losses["automask_dropped"].item() > 0.99
    else:
        assert "automask_dropped" not in losses


def test_automask_dropped_is_none_of_the_frame_when_the_warp_is_perfect(monkeypatch):
    """A moving camera and a warp that reproduces the target exactly (error 0): the warped source wins
    wherever the motion changed the picture, so the automask drops only pixels the motion left unchanged."""
    config = SELFSUP.build_config("monodepth2", overrides={"size": SIZE})
    torch.manual_seed(0)
    task = SelfSupTask(config)
    batch = _batch_of(SlidingTexture(shift=2, transform=training_transform(config))[0])
    monkeypatch.setattr(task, "_warped_sources", lambda sources, *args: {f: batch[("color", 0, 0)] for f in sources})
    unchanged = [(batch[("color", f, 0)] - batch[("color", 0, 0)]).abs().amax(1) == 0 for f in (-1, 1)]
    unchanged_share = (unchanged[0] | unchanged[1]).float().mean().item()
    assert task(batch)["automask_dropped"].item() <= unchanged_share + 0.01  # (a random warp: 0.28 dropped)


def test_initial_forward_motion_moves_each_source_camera_forward():
    """`initial_forward_motion` d sets the untrained pose net's forward translation to d (in place of the
    random bias the papers' init draws) in the direction of driving forward: a target point lands nearer in
    the next frame's camera (tz falls) and further in the previous one's; rotations and the sideways parts
    stay as the papers' init has them."""
    batch = _batch_of(SlidingTexture(transform=None)[0])
    tasks, poses = {}, {}
    for distance in (0.0, 0.005):
        config = SELFSUP.build_config("monodepth2", overrides={"size": SIZE, "initial_forward_motion": distance})
        torch.manual_seed(0)
        tasks[distance] = SelfSupTask(config).eval()
        with torch.no_grad():
            poses[distance] = tasks[distance]._poses(batch)
    random_bias = tasks[0.0].networks["pose"].decoder.pose2.bias[FORWARD_CHANNEL].item()
    change = -0.005 - POSE_SCALE * random_bias  # the raw tz, scaled: -0.005 in place of 0.01 x the random bias
    for frame, shift in ((1, change), (-1, -change)):
        plain, moved = poses[0.0][frame], poses[0.005][frame]
        expected = plain.clone()
        expected[:, 2, 3] += shift
        assert torch.allclose(moved, expected, atol=2e-5), frame  # the previous frame's is an inverse: R^T t


@pytest.mark.parametrize("key", ["consistency_ramp", "boundary_ramp"])
def test_ramps_must_be_ordered_steps(key):
    with pytest.raises(DepthcliError, match=rf"key '{key}' must be two integers >= 0, the first <= the"):
        SELFSUP.build_config("radepth", overrides={"size": SIZE, key: (5, 2)})


def test_from_scratch_schedule_ramps_consistency_and_boundary_over_the_middle_third():
    schedule = from_scratch_schedule(30)
    assert schedule["consistency_ramp"] == schedule["boundary_ramp"] == (10, 20)


def test_radepth_resume_reproduces_the_uninterrupted_run(tmp_path):
    """3 steps straight vs. killed after 2 (mid-epoch 1, with random scale augmentation) and resumed."""
    overrides = {"size": SIZE, "batch_size": 2, "max_steps": 3, "num_workers": 0, "save_every": 2, "log_every": 1,
                 "warmup_steps": 2, "consistency_ramp": (1, 3)}  # fmt: skip
    config = SELFSUP.build_config("radepth", overrides=overrides)

    def dataset():
        return SlidingTexture(count=4, transform=training_transform(config))

    torch.manual_seed(0)
    straight = SelfSupTask(config)
    train(straight, dataset(), config, tmp_path / "a", progress=False)

    torch.manual_seed(0)
    with pytest.raises(Killed):
        train(SelfSupTask(config), dataset(), config, tmp_path / "b", progress=False, on_step=kill_after(2))
    torch.manual_seed(7)
    resumed = SelfSupTask(config)
    train(resumed, dataset(), config, tmp_path / "b", resume=True, progress=False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.fixture(scope="module")
def boundary_net_path(tmp_path_factory):
    """A barely trained inverse-transform net (2 steps): its loss is positive, which is all these tests need."""
    from depthcli.engine.boundary_net import train_inverse_transform_net
    from depthcli.nets.inverse_transform import save_boundary_net

    net, net_config = train_inverse_transform_net(steps=2, batch_size=4)
    return str(save_boundary_net(tmp_path_factory.mktemp("boundary") / "boundary.ckpt", net, net_config))


def _with_boundary(path: str, **overrides) -> SelfSupTask:
    keys = {"size": SIZE, "scales": (0,), "boundary_loss": True, "boundary_net": path, "boundary_weight": 0.5}
    return SelfSupTask(SELFSUP.build_config("monodepth2", overrides={**keys, **overrides}))


def test_boundary_loss_joins_the_total(boundary_net_path):
    torch.manual_seed(0)
    plain = SelfSupTask(SELFSUP.build_config("monodepth2", overrides={"size": SIZE, "scales": (0,)}))
    torch.manual_seed(0)
    with_boundary = _with_boundary(boundary_net_path)
    batch = _batch_of(SlidingTexture()[0])
    torch.manual_seed(1)
    expected = plain(batch)["loss"]
    torch.manual_seed(1)
    losses = with_boundary(batch)
    assert losses["boundary"] > 0
    assert torch.allclose(losses["loss"], expected + 0.5 * losses["boundary"], atol=1e-6)
    assert not any(p.requires_grad for p in with_boundary.boundary.parameters())  # frozen, not optimised


def test_boundary_weight_ramps_in_over_its_steps(boundary_net_path):
    torch.manual_seed(0)
    task = _with_boundary(boundary_net_path, boundary_ramp=(2, 6))
    batch = _batch_of(SlidingTexture()[0])

    def losses_at(step):
        task.step = step
        torch.manual_seed(1)  # the same automask tie noise at every step
        return task(batch)

    photometric = losses_at(0)["loss"]  # weight 0 before the ramp starts: the loss without the boundary term
    # boundary_weight 0.5 over steps 2..6: 0.5 * (step - 2) / 4 inside, 0 before, 0.5 from step 6 on
    for step, weight in [(1, 0.0), (2, 0.0), (3, 0.125), (5, 0.375), (6, 0.5), (9, 0.5)]:
        losses = losses_at(step)
        assert losses["boundary"] > 0
        assert torch.allclose(losses["loss"], photometric + weight * losses["boundary"], atol=1e-6), step


def test_bf16_autocast_and_channels_last_step(tmp_path):
    overrides = {"size": SIZE, "batch_size": 2, "max_steps": 1, "num_workers": 0, "amp": "bf16",
                 "channels_last": True, "log_every": 1}  # fmt: skip
    config = SELFSUP.build_config("monodepth2", overrides=overrides)
    torch.manual_seed(0)
    result = train(SelfSupTask(config), SlidingTexture(), config, tmp_path, progress=False)
    assert result.steps == 1 and 0 < result.last_loss < 1
