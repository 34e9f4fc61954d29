"""Flip and colour jitter: closed-form colour cases, identical parameters for all frames, K after a flip."""

from __future__ import annotations

import torch

from depthcli.data.augment import JitterParams, apply_jitter, augment_sample, flip_sample, sample_jitter_params

IDENTITY = JitterParams(brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0)


def _sample(width=8, height=4):
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[5.0, 0, 2.0, 0], [0, 5.0, 1.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    sample = {("color", f, 0): torch.rand(3, height, width, generator=g) for f in (0, -1, 1)}
    sample |= {("K", 0): K, ("inv_K", 0): torch.linalg.inv(K), "depth_gt": torch.rand(1, height, width, generator=g)}
    return sample | {"index": 3}


def test_flip_mirrors_every_frame_and_moves_the_principal_point():
    sample = _sample()
    flipped = flip_sample(sample)
    for f in (0, -1, 1):
        assert torch.equal(flipped[("color", f, 0)][..., 0], sample[("color", f, 0)][..., 7])
    assert torch.equal(flipped["depth_gt"][..., 2], sample["depth_gt"][..., 5])
    assert flipped[("K", 0)][0, 2] == 7 - 2.0 and flipped[("K", 0)][1, 2] == 1.5
    torch.testing.assert_close(flipped[("inv_K", 0)] @ flipped[("K", 0)], torch.eye(4))
    # A pixel u seen through K maps to ray x; after the flip pixel (W-1-u) must map to ray -x.
    ray = torch.linalg.inv(sample[("K", 0)]) @ torch.tensor([1.0, 2.0, 1.0, 1.0])
    mirrored = flipped[("inv_K", 0)] @ torch.tensor([7 - 1.0, 2.0, 1.0, 1.0])
    torch.testing.assert_close(mirrored[:3], ray[:3] * torch.tensor([-1.0, 1.0, 1.0]))


def test_jitter_closed_form_cases():
    image = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(apply_jitter(image, IDENTITY), image)
    half = JitterParams(brightness=0.5, contrast=1.0, saturation=1.0, hue=0.0)
    torch.testing.assert_close(apply_jitter(image, half), image * 0.5)
    grey = apply_jitter(image, JitterParams(1.0, 1.0, 0.0, 0.0))
    expected_grey = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    for channel in grey:
        torch.testing.assert_close(channel, expected_grey)
    flat = apply_jitter(image, JitterParams(1.0, 0.0, 1.0, 0.0))
    torch.testing.assert_close(flat, torch.full_like(image, float(expected_grey.mean())))
    red = torch.zeros(3, 2, 2)
    red[0] = 0.8
    green = apply_jitter(red, JitterParams(1.0, 1.0, 1.0, 1 / 3))  # a third of a turn: red -> green
    torch.testing.assert_close(green[:, 0, 0], torch.tensor([0.0, 0.8, 0.0]), atol=1e-5, rtol=0)


def test_jitter_parameters_stay_in_monodepth2_ranges():
    g = torch.Generator().manual_seed(2)
    params = [sample_jitter_params(g) for _ in range(200)]
    for name, low, high in [
        ("brightness", 0.8, 1.2),
        ("contrast", 0.8, 1.2),
        ("saturation", 0.8, 1.2),
        ("hue", -0.1, 0.1),
    ]:
        values = [getattr(p, name) for p in params]
        assert low <= min(values) < low + 0.05 and high - 0.05 < max(values) <= high


def test_augment_uses_identical_jitter_for_all_frames_and_keeps_color():
    sample = _sample()
    sample[("color", 1, 0)] = sample[("color", 0, 0)].clone()  # two identical frames must stay identical
    seen_jitter = seen_flip = False
    for seed in range(12):
        out = augment_sample(sample, torch.Generator().manual_seed(seed))
        again = augment_sample(sample, torch.Generator().manual_seed(seed))
        assert all(torch.equal(out[k], again[k]) for k in out if isinstance(out[k], torch.Tensor))
        assert torch.equal(out[("color_aug", 0, 0)], out[("color_aug", 1, 0)])
        flipped = not torch.equal(out[("color", -1, 0)], sample[("color", -1, 0)])
        reference = sample[("color", -1, 0)].flip(-1) if flipped else sample[("color", -1, 0)]
        assert torch.equal(out[("color", -1, 0)], reference), "un-jittered colour stays (only mirrored)"
        jittered = not torch.equal(out[("color_aug", -1, 0)], out[("color", -1, 0)])
        seen_flip, seen_jitter = seen_flip or flipped, seen_jitter or jittered
    assert seen_flip and seen_jitter


def test_uint8_frames_are_jittered_in_float_and_rounded_back():
    generator = torch.Generator().manual_seed(2)
    frames = {("color", f, 0): torch.randint(0, 256, (3, 4, 6), dtype=torch.uint8, generator=generator) for f in (0, 1)}
    floats = {key: value.float() / 255 for key, value in frames.items()}
    # the same draws for both: a jitter (and maybe a flip), so the uint8 result is the float result rounded
    for seed in range(8):
        as_uint8 = augment_sample(dict(frames), torch.Generator().manual_seed(seed), jitter_prob=1.0)
        as_float = augment_sample(dict(floats), torch.Generator().manual_seed(seed), jitter_prob=1.0)
        for f in (0, 1):
            jittered = as_uint8[("color_aug", f, 0)]
            assert jittered.dtype == torch.uint8
            assert torch.equal(jittered, (as_float[("color_aug", f, 0)] * 255).round().to(torch.uint8))
            assert torch.equal(as_uint8[("color", f, 0)].float() / 255, as_float[("color", f, 0)])
