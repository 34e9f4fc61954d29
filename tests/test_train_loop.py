"""The generic training loop on a tiny task: resume exactness, NaN stop, best.ckpt, logs, bad input."""

from __future__ import annotations

import copy
import json
import os
import signal

import pytest
import torch
from interrupt import Killed, kill_after
from torch import nn
from torch.utils.data import Dataset
from typer.testing import CliRunner

from depthcli.checkpoints import load_checkpoint
from depthcli.cli.app import app
from depthcli.engine.interrupts import TrainingInterrupted
from depthcli.engine.optimizer import build_adam, load_optimizer_state
from depthcli.engine.task import TrainingTask
from depthcli.engine.trainer import STOPPED_BY_CALLBACK, TrainingDiverged, train
from depthcli.errors import DepthcliError
from depthcli.recipe_configs import TrainConfig


class NoisyPoints(Dataset):
    """Sample i: a point drawn with torch's RNG at access time (tests the per-sample seeding)."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict:
        return {"x": torch.randn(3), "index": index}


class LineFit(TrainingTask):
    """Fit w to the points with a noisy loss (the noise comes from the loop's torch RNG)."""

    def __init__(self, nan_at_call: int | None = None) -> None:
        super().__init__()
        self.networks["depth"] = nn.Linear(3, 1)
        self.calls, self.nan_at_call = 0, nan_at_call
        self.steps_seen: list[int] = []  # the loop's `step` at each forward

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        self.calls += 1
        self.steps_seen.append(self.step)
        with self.net_autocast():
            out = self.networks["depth"](batch["x"]).float()
        loss = ((out - 1.0) ** 2).mean() + 1e-3 * torch.randn(())
        if self.calls == self.nan_at_call:
            loss = loss * float("nan")
        return {"loss": loss}

    def validate(self, loader, device) -> dict[str, float]:
        errors = [float((self.networks["depth"](b["x"]) - 1.0).abs().mean()) for b in loader]
        return {"abs_rel": sum(errors) / len(errors)}


def _config(**changes) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 2, "lr": 0.05, "num_workers": 0, "save_every": 0, "log_every": 1}
    return TrainConfig(**{**base, **changes})


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    straight = LineFit()
    train(straight, NoisyPoints(), _config(), tmp_path / "a", progress=False)

    torch.manual_seed(0)
    with pytest.raises(Killed):
        train(LineFit(), NoisyPoints(), _config(save_every=2), tmp_path / "b", progress=False, on_step=kill_after(4))
    torch.manual_seed(123)  # a fresh process: different RNG, different init, restored from the checkpoint
    resumed = LineFit()
    result = train(resumed, NoisyPoints(), _config(num_workers=1), tmp_path / "b", resume=True, progress=False)
    assert result.steps == 9  # 6 samples / batch 2 = 3 steps per epoch, 3 epochs
    assert straight.steps_seen == list(range(9)) and resumed.steps_seen == list(range(4, 9))
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    losses_a = [r["loss"] for r in map(json.loads, (tmp_path / "a" / "metrics.jsonl").open()) if "loss" in r]
    losses_b = [r["loss"] for r in map(json.loads, (tmp_path / "b" / "metrics.jsonl").open()) if "loss" in r]
    assert losses_a == losses_b and len(losses_a) == 9


def test_run_dir_contents_and_best_checkpoint(tmp_path):
    torch.manual_seed(0)
    result = train(LineFit(), NoisyPoints(), _config(), tmp_path, val_set=NoisyPoints(), progress=False)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "last.ckpt", "best.ckpt", "metrics.jsonl", "loss.png"} <= names
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    val = [r["val"]["abs_rel"] for r in records if "val" in r]
    assert len(val) == 3  # one validation per epoch
    best = load_checkpoint(tmp_path / "best.ckpt", expected_kind="depth")
    assert "train_state" not in best  # weights only: no optimizer, scheduler or RNG states
    assert best["trained"]["best_metric"] == pytest.approx(min(val)) and best["metrics"]["abs_rel"] == min(val)
    assert result.best_metric == pytest.approx(min(val))
    best_step = [r["step"] for r in records if "val" in r][val.index(min(val))]
    assert best["trained"]["step"] == best_step == result.best_step and result.metric_name == "abs_rel"
    assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 2


def test_max_steps_and_lr_schedule(tmp_path):
    torch.manual_seed(0)
    train(LineFit(), NoisyPoints(), _config(max_steps=8, lr_decay_at=0.75), tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == list(range(1, 9))
    # StepLR at 3/4 of the 8 steps: steps 1..6 at lr, 7..8 at lr * 0.1
    assert [round(r["lr"], 6) for r in records] == [0.05] * 6 + [0.005] * 2


def test_lr_warmup_rises_linearly_then_decays(tmp_path):
    torch.manual_seed(0)
    train(LineFit(), NoisyPoints(), _config(max_steps=8, warmup_steps=4), tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    # lr 0.05: 1/4, 2/4, 3/4 of it, then full until the x0.1 decay at step 7 (3/4 of 8)
    assert [round(r["lr"], 6) for r in records] == [0.0125, 0.025, 0.0375, 0.05, 0.05, 0.05, 0.005, 0.005]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    task = LineFit(nan_at_call=5)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 5") as info:
        train(task, NoisyPoints(), _config(save_every=2), tmp_path, progress=False)
    assert isinstance(info.value, DepthcliError)
    assert load_checkpoint(tmp_path / "last.ckpt")["train_state"]["step"] == 4


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(DepthcliError, match="--resume: no checkpoint"):
        train(LineFit(), NoisyPoints(), _config(), tmp_path, resume=True, progress=False)
    result = CliRunner().invoke(app, ["train", "--resume", "--out", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "no checkpoint" in (result.output + str(result.exception))


def test_batch_larger_than_data_is_an_error(tmp_path):
    with pytest.raises(DepthcliError, match="fewer than the batch size 8"):
        train(LineFit(), NoisyPoints(), _config(batch_size=8), tmp_path, progress=False)


def test_compile_on_cpu_compiles_the_photometric_loss_during_training_only(tmp_path):
    from depthcli.losses import photometric

    seen = []

    class Recording(LineFit):
        def forward(self, batch):
            seen.append(photometric._use_compiled_reference)
            return super().forward(batch)

    torch.manual_seed(0)
    result = train(Recording(), NoisyPoints(), _config(compile=True, max_steps=2), tmp_path, progress=False)
    assert result.steps == 2 and seen == [True, True]
    assert not photometric._use_compiled_reference  # switched off again when the run ends
    train(Recording(), NoisyPoints(), _config(max_steps=1), tmp_path / "plain", progress=False)
    assert seen[-1] is False


def test_time_budget_stops_after_the_current_step_and_saves(tmp_path):
    torch.manual_seed(0)
    result = train(LineFit(), NoisyPoints(), _config(max_minutes=1e-9), tmp_path, progress=False)
    assert (result.steps, result.stop_reason) == (1, "time budget spent")
    assert load_checkpoint(tmp_path / "last.ckpt")["train_state"]["step"] == 1


# ------------------------------------------------------------------------------- stops and failures
class FailingValidation(LineFit):
    """LineFit whose validation raises `error` (a damaged validation cache raises OSError from h5py)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def validate(self, loader, device) -> dict[str, float]:
        raise self.error


def test_a_failing_validation_saves_the_run_first_then_reports_one_line(tmp_path):
    torch.manual_seed(0)
    damaged = OSError("Can't synchronously read data (filter returned failure during read)")
    with pytest.raises(DepthcliError) as info:
        train(FailingValidation(damaged), NoisyPoints(), _config(), tmp_path, val_set=NoisyPoints(), progress=False)
    message = str(info.value)
    assert message.startswith("validation at step 3 failed (Can't synchronously read data") and "\n" not in message
    assert f"the run is saved in {tmp_path / 'last.ckpt'}" in message and "--resume" in message
    assert load_checkpoint(tmp_path / "last.ckpt")["train_state"]["step"] == 3  # the first epoch is not lost


def test_a_validation_bug_keeps_its_traceback_and_costs_no_steps(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(ZeroDivisionError):
        train(FailingValidation(ZeroDivisionError()), NoisyPoints(), _config(), tmp_path, val_set=NoisyPoints(),
              progress=False)  # fmt: skip
    assert load_checkpoint(tmp_path / "last.ckpt")["train_state"]["step"] == 3


def _press_ctrl_c_at(step_to_stop: int, times: int = 1):
    def on_step(step, losses):
        if step == step_to_stop:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return on_step


def test_ctrl_c_saves_names_the_resume_command_and_the_run_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    straight = LineFit()
    train(straight, NoisyPoints(), _config(), tmp_path / "a", progress=False)
    torch.manual_seed(0)
    with pytest.raises(TrainingInterrupted) as info:
        train(LineFit(), NoisyPoints(), _config(), tmp_path / "b", progress=False, on_step=_press_ctrl_c_at(4),
              resume_command="depthcli train --resume --out b")  # fmt: skip
    assert info.value.exit_status == 130  # 128 + SIGINT, as a shell reports Ctrl-C
    assert str(info.value) == (
        f"stopped by Ctrl-C (SIGINT) at step 4 of 9: the run is saved in {tmp_path / 'b' / 'last.ckpt'}; "
        "continue it with `depthcli train --resume --out b`"
    )
    assert load_checkpoint(tmp_path / "b" / "last.ckpt")["train_state"]["step"] == 4  # save_every is 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are put back
    torch.manual_seed(1)
    resumed = LineFit()
    train(resumed, NoisyPoints(), _config(), tmp_path / "b", resume=True, progress=False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(LineFit(), NoisyPoints(), _config(), tmp_path, progress=False, on_step=_press_ctrl_c_at(2, times=2))
    assert not (tmp_path / "last.ckpt").exists()


def test_on_step_can_stop_the_run_which_then_resumes_where_it_stopped(tmp_path):
    torch.manual_seed(0)
    straight = LineFit()
    train(straight, NoisyPoints(), _config(), tmp_path / "a", progress=False)
    torch.manual_seed(0)
    first = train(LineFit(), NoisyPoints(), _config(), tmp_path / "b", progress=False, on_step=lambda s, _: s == 5)
    assert (first.steps, first.stop_reason) == (5, STOPPED_BY_CALLBACK)
    assert load_checkpoint(tmp_path / "b" / "last.ckpt")["train_state"]["step"] == 5
    resumed = LineFit()
    assert train(resumed, NoisyPoints(), _config(), tmp_path / "b", resume=True, progress=False).steps == 9
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def _selfsup_nets(channels_last: bool) -> nn.ModuleList:
    from depthcli.nets import build_depth_net, build_pose_net

    torch.manual_seed(0)
    nets = nn.ModuleList([build_depth_net("diffnet-small"), build_pose_net()])
    return nets.to(memory_format=torch.channels_last) if channels_last else nets


def _adam_step(nets: nn.ModuleList, optimizer: torch.optim.Optimizer) -> None:
    torch.manual_seed(1)
    image = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    axisangle, translation = nets[1](image, image.flip(-1))
    loss = nets[0](image)[("disp", 0)].square().mean() + axisangle.square().sum() + translation.abs().sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _params(nets: nn.ModuleList) -> list[torch.Tensor]:
    return [p.detach().clone() for p in nets.parameters()]


def _set_params(nets: nn.ModuleList, values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, value in zip(nets.parameters(), values, strict=True):
            p.copy_(value)


def _largest_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def test_fused_adam_matches_plain_adam_on_channels_last_nets():
    """The loop steps with fused Adam (`build_adam`) on channels-last nets. The fused CPU kernel pairs each
    parameter's elements with its gradient's by memory position; on the real nets its first step must equal
    plain per-tensor Adam's. (One step: Adam's first update is about lr x sign(grad), so from the second on,
    rounding noise in near-zero gradients flips whole updates.)"""
    nets = _selfsup_nets(channels_last=True)
    conv_weights = [p for p in nets.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert conv_weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    start, results = _params(nets), []
    for make_optimizer in (
        lambda params: build_adam(params, 1e-3, torch.device("cpu")),  # the loop's (fused)
        lambda params: torch.optim.Adam(params, lr=1e-3, foreach=False),  # the per-tensor reference
    ):
        _set_params(nets, start)
        _adam_step(nets, make_optimizer(nets.parameters()))
        results.append(_params(nets))
    assert _largest_difference(results[1], start) > 5e-4  # updates of up to lr = 1e-3 ...
    assert _largest_difference(*results) < 1e-6  # ... equal to within float32 rounding


def test_resumed_optimizer_state_takes_the_parameters_layout():
    """A run saved channels-last and resumed without it: `load_optimizer_state` puts Adam's moments in the
    parameters' layout, so the resumed fused step equals the step the channels-last run would have taken
    (with the moments left channels-last, the fused kernel hands elements each other's updates). eps 1e-2
    keeps the second update a smooth function of the gradient, which the two layouts round differently."""
    saved_nets = _selfsup_nets(channels_last=True)
    saved = build_adam(saved_nets.parameters(), 1e-3, torch.device("cpu"))
    saved.param_groups[0]["eps"] = 1e-2
    _adam_step(saved_nets, saved)
    state, weights = copy.deepcopy(saved.state_dict()), _params(saved_nets)  # as saved in the checkpoint
    _adam_step(saved_nets, saved)  # the step the saved run would take next

    nets = _selfsup_nets(channels_last=False)
    _set_params(nets, weights)
    resumed = build_adam(nets.parameters(), 1e-3, torch.device("cpu"))
    load_optimizer_state(resumed, state)
    moments = [
        (p, resumed.state[p][key]) for p in nets.parameters() if p in resumed.state for key in ("exp_avg", "exp_avg_sq")
    ]
    assert len(moments) > 100 and all(moment.stride() == p.stride() for p, moment in moments)
    _adam_step(nets, resumed)
    assert _largest_difference(_params(saved_nets), weights) > 5e-5
    assert _largest_difference(_params(nets), _params(saved_nets)) < 1e-6
