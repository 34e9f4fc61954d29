"""Contrastive pretraining (GrMC / MoCo v2): the loop's momentum, queue and loss, learning, outputs, bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.cli.app import app
from depthcli.data.pretrain_views import PretrainViews, open_image_source
from depthcli.engine.pretrain import PretrainTask
from depthcli.errors import DepthcliError
from depthcli.gradient_field import gradient_field
from depthcli.nets import build_depth_net
from depthcli.nets.loading import load_encoder_init
from depthcli.recipe_configs import PRETRAIN, PretrainConfig

SMALL = {"encoder": "resnet18", "size": (32, 32), "batch_size": 4, "queue": 16, "num_workers": 0}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Eight 96x96 images of coloured rectangles (nested one level, to check the recursive search)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(8):
        image = np.full((96, 96, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(4):
            x, y = (int(v) for v in rng.integers(0, 70, 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(image, (x, y), (x + 25, y + 18), colour, -1)
        (root / "sub").mkdir(exist_ok=True)
        cv2.imwrite(str(root / ("sub" if i % 2 else ".") / f"{i}.png"), image)
    return root


@pytest.fixture
def one_thread():
    """HRNet runs hundreds of tiny ops: on a busy 2-core machine, two OpenMP threads mostly wait for each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _config(image_folder: Path, **overrides) -> PretrainConfig:
    values = {**SMALL, "data": str(image_folder), "dataset": "folder", **overrides}
    return PRETRAIN.build_config("grmc", overrides=values)


def _batch(config: PretrainConfig) -> dict:
    views = PretrainViews(open_image_source(config.data, config.dataset), config.size, config.key)
    torch.manual_seed(0)
    samples = [views[i] for i in range(config.batch_size)]
    return {name: torch.stack([torch.as_tensor(s[name]) for s in samples]) for name in ("query", "key", "index")}


def test_views_key_is_the_gradient_field_of_the_query_crop(image_folder):
    views = PretrainViews(open_image_source(image_folder, "folder"), (32, 32), "gradient")
    torch.manual_seed(0)
    samples = [views[i] for i in range(len(views))]
    for sample in samples:
        assert sample["query"].shape == sample["key"].shape == (3, 32, 32)
        assert torch.equal(sample["key"][0], sample["key"][1]) and torch.equal(sample["key"][0], sample["key"][2])
        assert float(sample["key"].min()) >= 0.0 and float(sample["key"].max()) in (0.0, 1.0)
    assert any(float(sample["key"].max()) == 1.0 for sample in samples)  # normalised fields of edgy crops
    rgb = PretrainViews(open_image_source(image_folder, "folder"), (32, 32), "rgb")[0]
    assert not torch.equal(rgb["key"][0], rgb["key"][1])  # a colour view, not a replicated field


def test_momentum_update_and_enqueue_as_the_loop_does_them(image_folder):
    config = _config(image_folder, momentum=0.9)
    torch.manual_seed(0)
    task = PretrainTask(config)
    with torch.no_grad():  # make the query differ from its key twin, as after an optimiser step
        for param in task.networks["query"].parameters():
            param.add_(0.01 * torch.randn_like(param))
    query_before = [p.detach().clone() for p in task.networks["query"].parameters()]
    key_before = [p.detach().clone() for p in task.networks["key"].parameters()]
    queue_before = task.networks["queue"].queue.clone()
    batch = _batch(config)
    task.eval()  # running BN statistics: the key embeddings can be recomputed below, whatever the shuffle
    task(batch)
    for key_now, key_then, query_then in zip(task.networks["key"].parameters(), key_before, query_before, strict=True):
        torch.testing.assert_close(key_now, 0.9 * key_then + 0.1 * query_then)
    with torch.no_grad():
        keys = F.normalize(task.networks["key"](batch["key"]), dim=1)
    queue = task.networks["queue"]
    torch.testing.assert_close(queue.queue[:4], keys, atol=1e-5, rtol=1e-5)  # un-shuffled, in batch order
    torch.testing.assert_close(queue.queue[4:], queue_before[4:])
    assert int(queue.pointer) == 4


def test_loss_is_infonce_over_positive_and_queue(image_folder):
    config = _config(image_folder, temperature=0.5)
    torch.manual_seed(1)
    task = PretrainTask(config).eval()
    negatives = task.networks["queue"].queue.clone()
    batch = _batch(config)
    loss = task(batch)["loss"]
    with torch.no_grad():
        q = task.networks["query"](batch["query"])
        k = task.networks["key"](batch["key"])
    expected = []
    for i in range(config.batch_size):
        positive = float(q[i] @ k[i]) / 0.5
        logits = [positive] + [float(q[i] @ negatives[j]) / 0.5 for j in range(config.queue)]
        expected.append(np.log(np.sum(np.exp(logits))) - positive)
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-4)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(image_folder):
    config = _config(image_folder, momentum=0.99)
    torch.manual_seed(2)
    task = PretrainTask(config)
    batch = _batch(config)
    queue = task.networks["queue"]
    negatives = queue.queue.clone()
    optimiser = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(5):
        queue.queue.copy_(negatives)  # fixed negatives: a fixed objective
        loss = task(batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_cli_pretrains_hrnet_for_diffnet_and_resumes(image_folder, tmp_path, one_thread):
    out, fields = tmp_path / "run", tmp_path / "fields"
    args = ["pretrain", "--data", str(image_folder), "--dataset", "folder", "--encoder", "hrnet18", "--out", str(out)]
    small = ["--size", "64x64", "--batch-size", "4", "--queue", "8", "--num-workers", "0", "--no-progress"]
    result = CliRunner().invoke(app, [*args, *small, "--max-steps", "1", "--save-gradient-fields", str(fields)])
    assert result.exit_code == 0, result.output
    assert str(out / "encoder.ckpt") in result.output.replace("\n", "")
    payload = load_checkpoint(out / "encoder.ckpt", expected_kind="encoder")
    assert payload["encoder_name"] == "hrnet18"
    net = build_depth_net("diffnet")
    load_encoder_init(net, out / "encoder.ckpt")
    for name, value in net.encoder.state_dict().items():
        torch.testing.assert_close(value, payload["model"][name])
    # the saved gradient field is the image's own, as 8-bit PNG
    image = cv2.cvtColor(cv2.imread(str(fields / "0000_image.png")), cv2.COLOR_BGR2RGB)
    saved = cv2.imread(str(fields / "0000_gradient.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved, np.round(gradient_field(image) * 255).astype(np.uint8))
    resumed = CliRunner().invoke(app, ["pretrain", "--out", str(out), "--resume", "--max-steps", "2", "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out / "last.ckpt")["train_state"]["step"] == 2


def test_resnet50_encoder_into_diffnet_is_a_clear_error(tmp_path, image_folder):
    task = PretrainTask(_config(image_folder, encoder="resnet50", dim=16))
    path = save_checkpoint(tmp_path / "encoder.ckpt", task.encoder_payload())
    with pytest.raises(DepthcliError, match="resnet50 encoder weights but the model's encoder is hrnet18"):
        load_encoder_init(build_depth_net("diffnet"), path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--queue", "10"], "--queue 10 is not a multiple of the batch size 4"),
        (["--size", "128x128"], "smaller than the crop 128x128"),
        (["--key", "depth"], "--key 'depth' is not one of gradient, rgb"),
        (["--encoder", "vgg16"], "unknown encoder 'vgg16'"),
    ],
)
def test_cli_bad_input(image_folder, tmp_path, extra, message):
    args = ["pretrain", "--data", str(image_folder), "--dataset", "folder", "--out", str(tmp_path / "run")]
    small = ["--encoder", "resnet18", "--size", "64x64", "--batch-size", "4", "--queue", "16", "--max-steps", "1"]
    result = CliRunner().invoke(app, [*args, *small, *extra, "--num-workers", "0", "--no-progress"])
    assert result.exit_code != 0
    assert isinstance(result.exception, DepthcliError), result.output
    assert message in str(result.exception)


def test_cli_empty_folder_and_nan_loss(image_folder, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    small = ["--encoder", "resnet18", "--size", "64x64", "--batch-size", "4", "--queue", "16", "--max-steps", "1"]
    result = CliRunner().invoke(
        app, ["pretrain", "--data", str(empty), "--dataset", "folder", "--out", str(tmp_path / "a"), *small]
    )
    assert isinstance(result.exception, DepthcliError) and "holds no images" in str(result.exception)
    from depthcli.losses.contrastive import InfoNCELoss

    monkeypatch.setattr(InfoNCELoss, "forward", lambda self, q, k, queue: (q * float("nan")).sum())
    args = ["pretrain", "--data", str(image_folder), "--dataset", "folder", "--out", str(tmp_path / "b"), *small]
    result = CliRunner().invoke(app, [*args, "--num-workers", "0", "--no-progress"])
    assert isinstance(result.exception, DepthcliError) and "loss became nan" in str(result.exception)
