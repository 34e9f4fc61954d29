"""`depthcli demo` end to end on a tiny world: every artefact, the summary contract, and re-run rules."""

from __future__ import annotations

import dataclasses
import json

import pytest

from depthcli.demo import DemoSettings, run_demo
from depthcli.engine.selfsup import FROM_SCRATCH_FORWARD_MOTION
from depthcli.errors import DepthcliError

METRIC_KEYS = {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "n_images", "median_ratio"}
# the pipeline's contract on a tiny RA-Depth run; the default recipe (DIFFNet) runs in the fixed-step test
TINY = DemoSettings(
    budget_minutes=0.02, world_size=(256, 96), train_size=(128, 64), preset="radepth", net="radepth-small",
    frames_per_drive=6, batch_size=2, predict_frames=2,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo") / "out", TINY)


def test_demo_writes_summary_sweep_and_predictions(tiny_demo):
    summary = json.loads(tiny_demo.summary_path.read_text())
    assert summary == tiny_demo.summary
    for name in ("trained", "untrained", "baseline"):
        assert METRIC_KEYS <= set(summary[name]), name
        assert summary[name]["n_images"] == TINY.frames_per_drive  # the whole held-out drive
    assert summary["settings"]["net"] == "radepth-small"
    assert tiny_demo.checkpoint.is_file()
    assert all(path.is_file() for path in tiny_demo.sweep_files.values())
    assert len(list(tiny_demo.prediction_dir.glob("*.png"))) >= TINY.predict_frames


def test_summary_says_what_was_trained_for_how_long(tiny_demo):
    training = tiny_demo.summary["training"]
    assert (training["recipe"], training["net"], training["size"]) == (TINY.preset, TINY.net, "128x64")
    assert training["frame_ids"] == [0, -2, 2]  # neighbours two frames apart
    config = json.loads((tiny_demo.out_dir / "run" / "config.json").read_text())
    assert config["frame_ids"] == [0, -2, 2]
    assert config["initial_forward_motion"] == FROM_SCRATCH_FORWARD_MOTION  # from scratch: the pose net moves forward
    # the timed step count, or fewer when the budget's safety stop came first (a busy machine)
    assert 1 <= training["steps"] <= training["planned_steps"]
    assert training["minutes"] > 0 and not training["resumed"]


@pytest.mark.slow  # a second tiny demo (world, caches, sweep, predictions): about 20 s on 2 quiet cores
def test_fixed_step_count_replaces_the_timed_budget(tmp_path):
    default = DemoSettings()
    settings = dataclasses.replace(TINY, preset=default.preset, net=default.net, max_steps=2, budget_minutes=60.0)
    summary = run_demo(tmp_path / "out", settings).summary
    assert (summary["training"]["steps"], summary["training"]["replans"]) == (2, 0)
    config = json.loads((tmp_path / "out" / "run" / "config.json").read_text())
    assert (config["max_steps"], config["preset"], config["net"]) == (2, settings.preset, settings.net)
    assert config["max_minutes"] == 0  # a fixed step count is not cut short by the clock


def test_untrained_net_in_eval_mode_is_the_constant_baseline(tiny_demo):
    # fresh BatchNorm statistics make the random net's eval-mode output spatially flat; median scaling
    # then turns it into the same constant as the baseline, whatever its value
    summary = tiny_demo.summary
    assert summary["untrained"]["abs_rel"] == pytest.approx(summary["baseline"]["abs_rel"], rel=1e-3)


def test_finished_demo_folder_is_not_overwritten(tiny_demo):
    before = tiny_demo.summary_path.read_bytes()
    with pytest.raises(DepthcliError, match="already holds a finished demo"):
        run_demo(tiny_demo.out_dir, TINY)
    assert tiny_demo.summary_path.read_bytes() == before


def test_non_positive_budget_is_a_user_error(tmp_path):
    with pytest.raises(DepthcliError, match="--budget-minutes"):
        run_demo(tmp_path / "out", DemoSettings(budget_minutes=0))


def test_step_plan_follows_the_measured_step_time(monkeypatch):
    from depthcli.demo import StepPlan

    clock = {"now": 0.0}
    monkeypatch.setattr("depthcli.demo.time.monotonic", lambda: clock["now"])
    monkeypatch.setattr("depthcli.threads.configure_threads", lambda *args, **kwargs: 1)
    plan = StepPlan(deadline=100.0, planned=100, warmup_steps=16, check_every_s=10.0)

    def run(steps, seconds_per_step, start):
        """Steps start+1 .. start+steps at `seconds_per_step`; returns the steps at which the plan asked to stop."""
        stops = []
        for step in range(start + 1, start + steps + 1):
            clock["now"] += seconds_per_step
            if plan.on_step(step, {}):
                stops.append(step)
        return stops

    assert run(20, 1.0, 0) == [] and plan.planned == 100  # on schedule: 1 s/step, 100 s
    assert run(10, 2.0, 20) == [26]  # twice as slow: at t=32 s, 26 + 68 / 2 steps fit
    assert plan.planned == 26 + 34 and plan.seconds_per_step == pytest.approx(2.0)
    assert run(2, 1.0, 26) == []  # the first step after the restart is not measured
    clock["now"] = 80.0  # past 0.7 of the plan the count is kept whatever the speed
    assert run(20, 5.0, 43) == [] and plan.planned == 60
