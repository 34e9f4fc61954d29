"""Supervised NYU fine-tuning: the label-fraction subset, the augmentation, learning, the CLI."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint
from depthcli.cli.app import app
from depthcli.data.cache import build_cache
from depthcli.engine.supervised import (
    NyuSupervisedSamples,
    SupervisedTask,
    labelled_subset,
    rotate,
    training_set,
)
from depthcli.errors import DepthcliError
from depthcli.recipe_configs import SUPERVISED, SupervisedConfig


@pytest.fixture(scope="module")
def nyu_cache(synthetic_nyu, tmp_path_factory) -> Path:
    return build_cache("nyu", synthetic_nyu, tmp_path_factory.mktemp("nyu_cache") / "nyu.h5")


def _config(cache: Path, **overrides) -> SupervisedConfig:
    values = {"data": str(cache), "size": (64, 64), "batch_size": 2, "num_workers": 0, **overrides}
    return SUPERVISED.build_config("nyu-resnet50", overrides=values)


def _expected_subset(count: int, fraction: float, seed: int) -> list[int]:
    """The documented rule, written out: shuffle 0..N-1 with default_rng(seed), keep ceil(f*N) (>= 1), sort."""
    order = list(range(count))
    np.random.default_rng(seed).shuffle(order)
    return sorted(order[: max(1, math.ceil(fraction * count))])


@pytest.mark.parametrize(("count", "fraction", "seed"), [(795, 0.01, 0), (795, 0.1, 3), (25, 0.1, 1), (7, 0.01, 5)])
def test_label_fraction_subset_is_the_documented_one(count, fraction, seed):
    subset = labelled_subset(count, fraction, seed)
    assert subset.tolist() == _expected_subset(count, fraction, seed)
    assert len(subset) == {(795, 0.01): 8, (795, 0.1): 80, (25, 0.1): 3, (7, 0.01): 1}[(count, fraction)]
    assert labelled_subset(count, 1.0, seed).tolist() == list(range(count))


def test_label_fraction_out_of_range_is_an_error():
    for fraction in (0.0, -0.1, 1.5):
        with pytest.raises(DepthcliError, match="--label-fraction"):
            labelled_subset(10, fraction, 0)


def test_training_set_repeats_the_subset_to_the_split_length(nyu_cache):
    from depthcli.data.datasets import CachedNyuDataset

    count = len(CachedNyuDataset(nyu_cache, split="train"))
    dataset = training_set(_config(nyu_cache, label_fraction=0.3, seed=4), nyu_cache)
    chosen = _expected_subset(count, 0.3, 4)
    assert dataset.indices.tolist() == [chosen[i % len(chosen)] for i in range(count)]


def test_rotation_keeps_depth_values_and_zero_angle_is_identity():
    rng = np.random.default_rng(0)
    image = rng.random((48, 64, 3), dtype=np.float32)
    depth = rng.uniform(0.5, 9.0, (48, 64)).astype(np.float32)
    same_image, same_depth = rotate(image, depth, 0.0)
    np.testing.assert_allclose(same_image, image, atol=1e-6)
    np.testing.assert_array_equal(same_depth, depth)
    _, rotated = rotate(image, depth, 2.5)
    values = set(np.unique(rotated).tolist())
    assert values <= set(depth.ravel().tolist()) | {0.0}  # nearest neighbour: no invented depths
    assert rotated[0, 0] == 0.0 and rotated[24, 32] != 0.0  # a corner uncovered, the centre kept


def test_augmented_samples_are_crops_of_valid_depth(nyu_cache):
    from depthcli.data.datasets import CachedNyuDataset

    base = CachedNyuDataset(nyu_cache, split="train")
    samples = NyuSupervisedSamples(base, np.arange(2), (64, 32), augment=True)
    torch.manual_seed(0)
    sample = samples[0]
    assert sample[("color", 0, 0)].shape == (3, 32, 64) and sample["depth_gt"].shape == (1, 32, 64)
    source_depths = set(base[0]["depth_gt"].numpy().ravel().tolist()) | {0.0}
    assert set(sample["depth_gt"].numpy().ravel().tolist()) <= source_depths
    assert 0.0 <= float(sample[("color", 0, 0)].min()) and float(sample[("color", 0, 0)].max()) <= 1.0


def test_supervised_steps_lower_the_loss(nyu_cache):
    config = _config(nyu_cache, augment=False, net="monodepth2")  # the lighter net: the loop is the same
    dataset = training_set(config, nyu_cache)
    torch.manual_seed(0)
    task = SupervisedTask(config)
    samples = [dataset[i] for i in range(2)]
    batch = {key: torch.stack([s[key] for s in samples]) for key in (("color", 0, 0), "depth_gt")}
    batch = {key: value[..., :64, :64] for key, value in batch.items()}  # a valid network size
    optimiser = torch.optim.Adam(task.parameters(), lr=3e-4)
    losses = []
    for _ in range(5):
        loss = task(batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(later < earlier for earlier, later in pairwise(losses)), losses
    assert losses[-1] < 0.85 * losses[0], losses


def test_cli_supervised_training_and_bad_input(nyu_cache, tmp_path):
    base = ["train", "--task", "supervised", "--dataset", "nyu", "--preset", "nyu-resnet50", "--data", str(nyu_cache)]
    small = ["--size", "64x64", "--batch-size", "2", "--num-workers", "0", "--no-progress", "--max-steps", "1"]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [*base, *small, "--label-fraction", "0.5", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = load_checkpoint(out / "last.ckpt", expected_kind="depth")
    assert payload["config"]["label_fraction"] == 0.5 and payload["config"]["net"] == "nyu-resnet50"
    bad = CliRunner().invoke(app, [*base, *small, "--label-fraction", "0", "--out", str(tmp_path / "bad")])
    assert isinstance(bad.exception, DepthcliError) and "--label-fraction" in str(bad.exception)
