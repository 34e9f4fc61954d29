"""`depthcli demo`: the whole pipeline on a synthetic KITTI-like world, and the proof that training learns.

synth world -> training + eval caches -> DIFFNet self-supervised training within a time budget (the
recipe on the half-width `diffnet-small` net at 320x96, so that a 2-core CPU takes enough steps, with the
from-scratch schedule of `depthcli.engine.selfsup.from_scratch_schedule`) ->
KITTI-Eigen evaluation of the trained net, the same net untrained, and a constant "mean training depth"
baseline (all median-scaled) -> resolution sweep -> a few predicted frames. Every step reuses what an
earlier, interrupted run of the same output folder already finished, and training resumes from its
last checkpoint, so a demo can be stopped and started again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthcli.atomic import atomic_write_text
from depthcli.errors import DepthcliError
from depthcli.sizes import HALF_RESOLUTION_LADDER, format_size

Log = Callable[[str], None]
MAX_BUDGET_MINUTES = 7 * 24 * 60  # the step count is planned from the budget, so it must be a real duration


@dataclass(frozen=True)
class DemoSettings:
    """What the demo builds; the defaults fit a 10-minute training budget on 2 CPU cores."""

    budget_minutes: float = 10.0
    world_size: tuple[int, int] = (416, 128)  # rendered frames (and GT) size
    train_size: tuple[int, int] = (320, 96)  # network input during training
    # 400 steps with the pose net starting forward (the from-scratch schedule): abs_rel 0.266 / 0.181 on world
    # seeds 0 / 1 (0.57x / 0.42x the constant; 0.55-0.64 from the papers' pose init). RA-Depth's recipe on
    # radepth-small at 192x64 did a few steps fewer in the budget (498 vs 589; three images per sample) and
    # plateaued at 0.26-0.27
    preset: str = "diffnet"  # the training recipe (depthcli.engine.selfsup.PRESETS)
    net: str = "diffnet-small"
    max_steps: int = 0  # > 0: train exactly this many steps (benchmarks); 0: as many as the budget allows
    # neighbours two frames apart: at 192x64 a facade 25 m ahead moved under a pixel per frame (the world's car
    # drives about 1 m per frame); twice the motion took RA-Depth's 466 steps from abs_rel 0.330 to 0.269
    # (world seed 0) and from 0.306 to 0.235 (seed 1)
    frame_ids: tuple[int, ...] = (0, -2, 2)
    drives: int = 3  # the last drive is the held-out test drive
    frames_per_drive: int = 60
    batch_size: int = 4  # more, noisier steps beat fewer, smoother ones in a short budget (3 and 6 learned slower)
    lr: float = 5e-4  # from scratch (no ImageNet weights): 1e-4 barely moves in the budget, 1e-3 oscillates
    seed: int = 0
    predict_frames: int = 4
    sweep_sizes: tuple[tuple[int, int], ...] = HALF_RESOLUTION_LADDER  # RA-Depth's test ladder, halved


@dataclass
class DemoResult:
    out_dir: Path
    summary_path: Path
    summary: dict
    checkpoint: Path
    sweep_files: dict[str, Path]
    prediction_dir: Path


def run_demo(out_dir: str | Path, settings: DemoSettings = DemoSettings(), log: Log = lambda _msg: None) -> DemoResult:
    """Run every step into `out_dir` and write `out_dir/summary.json` (see the module docstring)."""
    out_dir = Path(out_dir)
    summary_path = out_dir / "summary.json"
    if summary_path.exists():
        raise DepthcliError(f"{out_dir} already holds a finished demo ({summary_path}); choose another --out")
    if not (math.isfinite(settings.budget_minutes) and 0 < settings.budget_minutes <= MAX_BUDGET_MINUTES):
        raise DepthcliError(
            f"--budget-minutes {settings.budget_minutes}: give a number of minutes above 0 and at most "
            f"{MAX_BUDGET_MINUTES} (a week)"
        )
    world = _synthesise_world(out_dir / "world", settings, log)
    train_cache, eval_cache = _build_caches(world, out_dir, settings, log)
    checkpoint, training = _train(train_cache, out_dir / "run", settings, log)
    summary = _evaluate(checkpoint, train_cache, eval_cache, world, settings, log) | {"training": training}
    sweep_files = _sweep(checkpoint, eval_cache, out_dir / "sweep", settings.sweep_sizes, log)
    prediction_dir = _predict(checkpoint, world, out_dir / "predictions", settings, log)
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return DemoResult(out_dir, summary_path, summary, checkpoint, sweep_files, prediction_dir)


def _synthesise_world(world: Path, settings: DemoSettings, log: Log) -> Path:
    from depthcli.synth import synth_kitti

    if (world / "test_files.txt").is_file():
        log(f"world: reusing {world}")
        return world
    log(f"world: rendering {settings.drives} drives x {settings.frames_per_drive} frames -> {world}")
    synth_kitti(
        world, frames=settings.frames_per_drive, drives=settings.drives, size=settings.world_size, seed=settings.seed
    )
    return world


def _build_caches(world: Path, out_dir: Path, settings: DemoSettings, log: Log) -> tuple[Path, Path]:
    from depthcli.data.cache import build_cache

    train_cache, eval_cache = out_dir / "train.h5", out_dir / "test.h5"
    if not train_cache.is_file():
        log(f"cache: training frames at {format_size(settings.train_size)} -> {train_cache}")
        build_cache(
            "kitti", world, train_cache, split=world / "train_files.txt", size=settings.train_size,
            frame_ids=settings.frame_ids,
        )  # fmt: skip
    if not eval_cache.is_file():
        log(f"cache: held-out test drive at full size with velodyne GT -> {eval_cache}")
        build_cache("kitti", world, eval_cache, split=world / "test_files.txt")
    return train_cache, eval_cache


def _selfsup_config(train_cache: Path, settings: DemoSettings, max_steps: int = 0, **schedule):
    """The demo's training config; `schedule` overrides the from-scratch schedule's keys (warmup, budget)."""
    from depthcli.engine.selfsup import from_scratch_schedule
    from depthcli.recipe_configs import SELFSUP

    return SELFSUP.build_config(
        settings.preset,
        overrides={
            "data": str(train_cache),
            "size": settings.train_size,
            "epochs": 1000,
            **from_scratch_schedule(max_steps),  # warmup, forward pose start, LR drop for the last quarter
            "max_minutes": settings.budget_minutes,  # a safety stop should the machine slow down
            "net": settings.net,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "num_workers": 0,  # loading a cached batch takes ~3 % of a step; a worker would only compete for cores
            "seed": settings.seed,
            "frame_ids": settings.frame_ids,
            **schedule,
        },
    )


@dataclass
class StepPlan:
    """The demo's step count from its time budget, re-measured while it trains.

    The LR schedule and RA-Depth's consistency ramp need the last step in advance, but the machine's
    speed changes while other jobs come and go. `on_step` (the training loop's callback) measures the
    step time over every `check_every_s` window, re-chooses the CPU thread count for the cores other
    processes leave idle, and when the steps that fit before `deadline` differ from `planned` by more than
    `tolerance` it asks the loop to stop (it saves) so that training resumes with the new count. Plans
    are kept from `keep_after` of the run on (the LR drops at 0.75); the loop's time budget stops an
    overrun. The warmup keeps its first length, so a longer plan never sends the LR back into warmup.
    """

    deadline: float  # time.monotonic() by which training should end
    planned: int
    warmup_steps: int
    check_every_s: float = 30.0
    tolerance: float = 0.1
    keep_after: float = 0.7
    seconds_per_step: float = 0.0
    _mark: tuple[float, int] | None = field(default=None, repr=False)
    _monitor: object = field(default=None, repr=False)

    def on_step(self, step: int, _losses: dict) -> bool:
        from depthcli.threads import CpuLoadMonitor, configure_threads

        now = time.monotonic()
        if self._mark is None:  # the first step after a (re)start pays for warm-up: not measured
            self._mark, self._monitor = (now, step), CpuLoadMonitor()
            return False
        last_time, last_step = self._mark
        if now - last_time < self.check_every_s:
            return False
        self.seconds_per_step = (now - last_time) / (step - last_step)
        self._mark = (now, step)
        configure_threads(0, self._monitor)
        if step >= self.keep_after * self.planned:
            return False
        fitting = step + int(max(0.0, self.deadline - now) / self.seconds_per_step)
        if abs(fitting - self.planned) <= self.tolerance * self.planned:
            return False
        self.planned = max(step + 1, fitting)
        self._mark = None  # the loop stops and resumes: its next first step is warm-up again
        return True


def _train(train_cache: Path, run_dir: Path, settings: DemoSettings, log: Log) -> tuple[Path, dict]:
    """Train into `run_dir`; returns the last checkpoint and what was trained for how long (the summary's).

    With `settings.max_steps` the step count is fixed (no re-planning) and the time budget is not a stop.
    """
    from depthcli.checkpoints import load_checkpoint
    from depthcli.config import load_config_file
    from depthcli.engine.run_dir import CONFIG_FILE, LAST_CHECKPOINT
    from depthcli.engine.runner import run_recipe
    from depthcli.engine.selfsup import SELFSUP_RECIPE
    from depthcli.engine.trainer import STOPPED_BY_CALLBACK

    budget_s = settings.budget_minutes * 60
    resume = (run_dir / LAST_CHECKPOINT).is_file()
    if resume:  # the plan of the interrupted run (its resolved config) and the share of it still to go
        saved = load_config_file(run_dir / CONFIG_FILE)
        planned, warmup = int(saved["max_steps"]), int(saved["warmup_steps"])
        done = int(load_checkpoint(run_dir / LAST_CHECKPOINT)["train_state"]["step"])
        budget_s *= max(0.0, 1.0 - done / planned)
    elif settings.max_steps > 0:
        planned, warmup = settings.max_steps, settings.max_steps // 6
    else:
        planned = max(1, int(budget_s / _seconds_per_step(_selfsup_config(train_cache, settings))))
        warmup = planned // 6
    fixed = settings.max_steps > 0
    plan = StepPlan(deadline=time.monotonic() + budget_s, planned=planned, warmup_steps=warmup)
    verb = "resuming" if resume else "training"
    size, minutes = format_size(settings.train_size), settings.budget_minutes
    budget = "fixed" if fixed else f"~{minutes:g} min"
    log(f"train: {verb} {settings.preset} ({settings.net}) at {size}, {planned} steps ({budget}) -> {run_dir}")
    start, replans = time.monotonic(), 0
    while True:
        minutes_left = max(0.0, plan.deadline - time.monotonic()) / 60
        config = _selfsup_config(
            train_cache,
            settings,
            plan.planned,
            warmup_steps=plan.warmup_steps,
            max_minutes=0.0 if fixed else minutes_left + 0.1 * settings.budget_minutes,  # the safety stop
        )
        on_step = None if fixed else plan.on_step
        # a run killed before its first save left only its config: the demo starts it again
        result = run_recipe(
            SELFSUP_RECIPE, config, run_dir, resume=resume, overwrite=not resume, progress=True, on_step=on_step
        )
        if result.train.stop_reason != STOPPED_BY_CALLBACK:
            break
        measured = f"{plan.seconds_per_step:.2f} s/step at step {result.train.steps}"
        log(f"train: {measured}; re-planned to {plan.planned} steps")
        resume, replans = True, replans + 1
    training = {
        "recipe": settings.preset,
        "net": settings.net,
        "size": size,
        "frame_ids": list(settings.frame_ids),
        "steps": result.train.steps,
        "planned_steps": plan.planned,
        "replans": replans,
        "minutes": round((time.monotonic() - start) / 60, 2),  # this session's training (a resume adds up)
        "resumed": verb == "resuming",
        "stop_reason": result.train.stop_reason,
    }
    return result.train.last_checkpoint, training


def _seconds_per_step(config, timed_steps: int = 4) -> float:
    """Wall time of one training step of `config` on this machine (after a warm-up step).

    The first estimate of the plan (`StepPlan` re-measures it during training): timing a few real steps
    of the trainer (into a scratch folder) turns the budget's minutes into a step count.
    """
    import tempfile

    from depthcli.engine.runner import run_recipe
    from depthcli.engine.selfsup import SELFSUP_RECIPE

    stamps: list[float] = []
    timing = dataclasses.replace(config, max_steps=timed_steps + 1, max_minutes=0.0, save_every=0)
    with tempfile.TemporaryDirectory(prefix="depthcli_timing_") as scratch:
        run_recipe(
            SELFSUP_RECIPE, timing, scratch, progress=False, on_step=lambda *_: stamps.append(time.perf_counter())
        )
    return (stamps[-1] - stamps[0]) / timed_steps


def _mean_training_depth(world: Path) -> float:
    """Mean true depth over the training frames' valid pixels (the constant baseline's value)."""
    from depthcli.data.kitti import read_split

    total, count = 0.0, 0
    for entry in read_split(world / "train_files.txt"):
        depth = np.load(world / entry.folder / "depth_true" / "data" / f"{entry.frame_index:010d}.npy")
        valid = depth[depth > 0]
        total += float(valid.sum())
        count += valid.size
    if count == 0:
        raise DepthcliError(f"{world}: the training frames have no valid true depth; re-run the demo into a new --out")
    return total / count


def _evaluate(
    checkpoint: Path, train_cache: Path, eval_cache: Path, world: Path, settings: DemoSettings, log: Log
) -> dict:
    from depthcli.engine.selfsup import SelfSupTask
    from depthcli.evaluation.eval_sets import open_eval_set
    from depthcli.evaluation.evaluate import EvalOptions, evaluate_model, evaluate_predictions
    from depthcli.nets.loading import load_depth_model

    log(f"eval: KITTI Eigen protocol (median scaling) on the held-out drive ({eval_cache})")
    eval_set = open_eval_set(eval_cache, None, "kitti-eigen")
    trained = load_depth_model(checkpoint)
    untrained = SelfSupTask.from_config(_selfsup_config(train_cache, settings)).networks["depth"]
    resolution = [trained.size]
    rows = {}
    for name, model in (("trained", trained.net), ("untrained", untrained)):
        (result,) = evaluate_model(model, eval_set, resolution, trained.min_depth, trained.max_depth)
        rows[name] = result.summary()
    mean_depth = _mean_training_depth(world)
    gt_shapes = [eval_set.load_gt(i).shape for i in range(len(eval_set))]
    constant = [np.full(shape, mean_depth, np.float32) for shape in gt_shapes]
    baseline = evaluate_predictions(constant, eval_set, EvalOptions(pred_type="depth", median_scaling=True))
    rows["baseline"] = {**baseline.summary(), "constant_depth_m": mean_depth}
    rows["settings"] = json.loads(json.dumps(dataclasses.asdict(settings)))  # tuples as the JSON lists they become
    return rows


def _sweep(checkpoint: Path, eval_cache: Path, sweep_dir: Path, sizes, log: Log) -> dict[str, Path]:
    from depthcli.evaluation.sweep import run_sweep

    log(f"sweep: {', '.join(format_size(size) for size in sizes)} -> {sweep_dir}")
    _, files = run_sweep([checkpoint], eval_cache, None, sweep_dir, resolutions=list(sizes))
    return files


def _predict(checkpoint: Path, world: Path, prediction_dir: Path, settings: DemoSettings, log: Log) -> Path:
    from depthcli.data.kitti import image_path, read_split
    from depthcli.predict import predict

    entries = read_split(world / "test_files.txt")
    step = max(1, len(entries) // settings.predict_frames)
    images = [
        str(image_path(world, entry.folder, entry.frame_index, entry.side, "png"))
        for entry in entries[::step][: settings.predict_frames]
    ]
    log(f"predict: {len(images)} held-out frames -> {prediction_dir}")
    predict(images, checkpoint, prediction_dir, overwrite=True)
    return prediction_dir
