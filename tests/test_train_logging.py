"""What a run shows while it goes: TensorBoard scalars and pictures, validation lines, loss.png, the final line."""

from __future__ import annotations

import json
import sys

import matplotlib.figure
import numpy as np
import pytest
import torch
from interrupt import Killed, kill_after
from test_train_loop import LineFit, NoisyPoints, _config

from depthcli.cli.train import final_line
from depthcli.engine import tensorboard_log
from depthcli.engine.trainer import TrainResult, train
from depthcli.visualize import colormap_lut

NO_TENSORBOARD = "the tensorboard package is not installed (pip install -e '.[tensorboard]'); its reader is needed"


class PaintedLineFit(LineFit):
    """LineFit that shows one picture per logged step: grey at the level step/10, and draws from torch's RNG
    while doing so (the loop must restore every RNG, or logging pictures would change training)."""

    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        torch.rand(5)
        level = min(1.0, self.step / 10)
        return {"grey": torch.full((len(batch["index"]), 3, 8, 16), level)}


def _events(run_dir):
    """TensorBoard's own reader over the run's event files: (scalars by tag, images by tag)."""
    reader = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator", reason=NO_TENSORBOARD)
    accumulator = reader.EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={reader.IMAGES: 0, reader.SCALARS: 0}
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in tags["scalars"]}
    images = {tag: accumulator.Images(tag) for tag in tags["images"]}
    return scalars, images


def _decode_png(encoded: bytes) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED)


def test_tensorboard_scalars_and_pictures_match_the_run(tmp_path):
    pytest.importorskip("tensorboard", reason=NO_TENSORBOARD)
    torch.manual_seed(0)
    config = _config(log_images_every=2)
    train(PaintedLineFit(), NoisyPoints(), config, tmp_path, val_set=NoisyPoints(), progress=False)
    scalars, images = _events(tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    logged = [r for r in records if "loss" in r]
    assert [step for step, _ in scalars["train/loss"]] == [r["step"] for r in logged] == list(range(1, 10))
    assert [value for _, value in scalars["train/loss"]] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    assert [value for _, value in scalars["lr"]] == pytest.approx([r["lr"] for r in logged], rel=1e-6)
    validations = [r for r in records if "val" in r]
    assert scalars["val/abs_rel"] == [(r["step"], pytest.approx(r["val"]["abs_rel"])) for r in validations]
    # pictures after steps 2, 4, 6, 8: the first 4 samples of a batch of 2 = both, side by side in one grid
    shown = images["images/grey"]
    assert [event.step for event in shown] == [2, 4, 6, 8]
    for event in shown:
        pixels = _decode_png(event.encoded_image_string)
        level = round(255 * (event.step - 1) / 10)  # the task's step during the picture: steps taken before it
        assert pixels.shape == (8, 32, 3) and np.all(np.abs(pixels.astype(int) - level) <= 1)


def test_pictures_do_not_change_what_is_trained(tmp_path):
    pytest.importorskip("tensorboard", reason=NO_TENSORBOARD)
    states, losses = [], []
    for name, changes in (("pictures", {"log_images_every": 1}), ("none", {"tensorboard": False})):
        torch.manual_seed(0)
        task = PaintedLineFit()
        train(task, NoisyPoints(), _config(**changes), tmp_path / name, progress=False)
        states.append(task.state_dict())
        losses.append([json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").open()])
    assert (tmp_path / "pictures" / "tensorboard").is_dir() and not (tmp_path / "none" / "tensorboard").exists()
    assert losses[0] == losses[1]  # the loss draws noise from torch's RNG after every picture
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_without_tensorboard_the_run_goes_on_after_one_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    monkeypatch.setattr(tensorboard_log, "_noted_missing", False)
    for run in ("a", "b"):
        torch.manual_seed(0)
        train(PaintedLineFit(), NoisyPoints(), _config(log_images_every=1), tmp_path / run, progress=False)
        assert not (tmp_path / run / "tensorboard").exists() and (tmp_path / run / "metrics.jsonl").is_file()
    assert capsys.readouterr().out.count("TensorBoard logging skipped") == 1


def test_resumed_run_hides_the_killed_runs_later_events(tmp_path):
    pytest.importorskip("tensorboard", reason=NO_TENSORBOARD)

    torch.manual_seed(0)
    with pytest.raises(Killed):
        train(LineFit(), NoisyPoints(), _config(save_every=4), tmp_path, progress=False, on_step=kill_after(5))
    train(LineFit(), NoisyPoints(), _config(save_every=4), tmp_path, resume=True, progress=False)
    scalars, _ = _events(tmp_path)
    # step 5 was logged by the killed run and again after resuming from step 4: TensorBoard shows it once
    assert [step for step, _ in scalars["train/loss"]] == list(range(1, 10))


def test_validation_lines_and_the_final_line(tmp_path, capsys):
    torch.manual_seed(0)
    result = train(LineFit(), NoisyPoints(), _config(), tmp_path, val_set=NoisyPoints(), progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    lines = [line for line in capsys.readouterr().out.splitlines() if "validation" in line]
    values = [r["val"]["abs_rel"] for r in records if "val" in r]
    assert len(lines) == 3 and lines[0] == f"step 3 (epoch 1) validation: abs_rel {values[0]:.4g} (best so far)"
    best_step = 3 * (values.index(min(values)) + 1)
    assert final_line(result) == (
        f"9 steps, last loss {result.last_loss:.4f} (done), best abs_rel {min(values):.4f} at step {best_step}"
    )
    no_validation = TrainResult(tmp_path, tmp_path / "last.ckpt", None, 5, 0.25, None, "time budget spent")
    assert final_line(no_validation) == "5 steps, last loss 0.2500 (time budget spent)"


def test_loss_plot_has_a_legend_and_is_drawn_before_the_first_checkpoint(tmp_path, monkeypatch):
    drawn = []
    original = matplotlib.figure.Figure.savefig

    def capture(figure, *args, **kwargs):
        drawn.append([text.get_text() for text in figure.axes[0].get_legend().get_texts()])
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", capture)
    seen_at_step_1 = []

    def look(step, losses):
        if step == 1:
            seen_at_step_1.append((tmp_path / "loss.png").is_file() and not (tmp_path / "last.ckpt").exists())

    torch.manual_seed(0)
    train(LineFit(), NoisyPoints(), _config(), tmp_path, val_set=NoisyPoints(), progress=False, on_step=look)
    assert seen_at_step_1 == [True]  # the first log record drew it; the first checkpoint comes at step 3
    assert drawn[0] == ["train loss"] and drawn[-1] == ["train loss", "validation abs_rel"]


def test_coloured_disparity_on_a_shared_scale():
    from depthcli.engine.task import coloured_disparity

    like = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)  # range 0 .. 95th percentile 3.7
    values = torch.tensor([[-1.0, 0.0], [3.7, 9.0]]).view(1, 1, 2, 2)
    pictures = coloured_disparity(values, like=like)
    lut = colormap_lut("magma") / 255.0
    expected = torch.tensor(np.array([[lut[0], lut[0]], [lut[255], lut[255]]]), dtype=torch.float32)
    assert pictures.shape == (1, 3, 2, 2)
    assert torch.allclose(pictures[0].permute(1, 2, 0), expected)


def _still_pose_net(task) -> None:
    """Zero the pose head: every predicted pose is the identity."""
    head = task.networks["pose"].decoder.pose2
    torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)


def test_selfsup_pictures_follow_monodepth2(monkeypatch):
    from test_train_selfsup import SIZE, SlidingTexture, _batch_of

    from depthcli.engine.selfsup import SelfSupTask
    from depthcli.recipe_configs import SELFSUP

    torch.manual_seed(0)
    task = SelfSupTask(SELFSUP.build_config("monodepth2", overrides={"size": SIZE})).eval()
    _still_pose_net(task)
    still = _batch_of(SlidingTexture(shift=0)[0])  # the camera does not move: every source equals the target
    with torch.no_grad():
        pictures = task.visuals(still)
        disp = task.networks["depth"](still[("color_aug", 0, 0)])[("disp", 0)]
    assert set(pictures) == {"input", "disparity", "source", "warped_source", "automask"}
    assert torch.equal(pictures["input"], still[("color", 0, 0)])
    assert torch.equal(pictures["source"], still[("color", -1, 0)])
    # identity pose: the source lands on itself, whatever the depth
    assert torch.allclose(pictures["warped_source"], still[("color", -1, 0)], atol=1e-5)
    # nothing moves, so no warp can beat the unwarped source: the automask keeps no pixel
    assert pictures["automask"].shape == (1, 1, 64, 64) and not pictures["automask"].any()
    values = disp[0, 0].double().numpy()  # colour range: minimum .. 95th percentile, 256 bins (monodepth2)
    bins = np.floor(256 * (values - values.min()) / (np.percentile(values, 95) - values.min()))
    expected = colormap_lut("magma")[np.clip(bins, 0, 255).astype(int)] / 255.0
    assert torch.allclose(pictures["disparity"][0].permute(1, 2, 0).double(), torch.from_numpy(expected), atol=1e-6)

    moving = _batch_of(SlidingTexture(shift=2)[0])
    monkeypatch.setattr(task, "_warped_sources", lambda sources, *args: {f: moving[("color", 0, 0)] for f in sources})
    with torch.no_grad():
        automask = task.visuals(moving)["automask"]
    # a perfect warp beats the unwarped (shifted) source wherever the shift changes the picture
    identity = (moving[("color", -1, 0)] - moving[("color", 0, 0)]).abs().amax(1, keepdim=True)
    assert automask.mean() > 0.9 and not automask[identity == 0].any()


def test_supervised_pictures_share_the_prediction_colour_scale():
    from depthcli.engine.supervised import SupervisedTask
    from depthcli.recipe_configs import SUPERVISED

    torch.manual_seed(0)
    task = SupervisedTask(SUPERVISED.build_config("nyu-resnet50", overrides={"size": (64, 64)})).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        predicted = task.predict_depth(images)
        depth = float(predicted.median())  # ground truth inside the predicted range: a mid-scale colour
        gt = torch.full((2, 1, 64, 64), depth)
        gt[:, :, :8] = 0.0  # invalid rows
        pictures = task.visuals({("color", 0, 0): images, "depth_gt": gt})
    assert set(pictures) == {"input", "prediction", "ground_truth"} and torch.equal(pictures["input"], images)
    darkest = torch.tensor(colormap_lut("magma")[0] / 255.0, dtype=torch.float32).view(3, 1, 1)
    assert torch.allclose(pictures["ground_truth"][:, :, :8], darkest.expand(2, 3, 8, 64))
    # valid ground truth, coloured on each sample's predicted inverse-depth range (minimum .. 95th percentile)
    for sample in range(2):
        inverse = 1.0 / predicted[sample, 0].double().numpy()
        low, high = inverse.min(), np.percentile(inverse, 95)
        index = int(np.clip(np.floor(256 * (1.0 / depth - low) / (high - low)), 0, 255))
        colour = torch.tensor(colormap_lut("magma")[index] / 255.0, dtype=torch.float32)
        assert torch.allclose(pictures["ground_truth"][sample, :, 8:], colour.view(3, 1, 1).expand(3, 56, 64))
    assert pictures["prediction"].shape == pictures["ground_truth"].shape == (2, 3, 64, 64)
