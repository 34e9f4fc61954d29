"""The generic training loop every task (self-supervised, supervised, contrastive) plugs into.

A task is a `TrainingTask` (an nn.Module): it owns its networks, returns a dict of losses for a
batch (`"loss"` is optimised), may validate and may show pictures of a batch. The loop adds everything
that is not science: Adam with an optional linear LR warmup and a step decay, epochs or a step budget,
a progress bar, atomic periodic checkpoints that resume bit-for-bit, validation with `best.ckpt`, NaN/inf
stop, AMP, channels-last, torch.compile and DistributedDataParallel.

Reproducibility (`depthcli.engine.seeding`): a resumed run takes exactly the steps an uninterrupted
run would have taken, whatever the number of DataLoader workers (and whether pictures are logged).
Files: `depthcli.engine.run_dir`; checkpoints kept besides last.ckpt: `depthcli.engine.retention`;
what a run shows (metrics.jsonl, TensorBoard, loss.png, validation lines): `depthcli.engine.run_log`.

Nothing trained is lost to a stop: SIGTERM or Ctrl-C ends the current step, saves and raises
`TrainingInterrupted` (`depthcli.engine.interrupts`); a validation that fails (e.g. a damaged cache)
saves first, then reports.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.config import config_to_dict
from depthcli.data.collate import collate_samples
from depthcli.engine import distributed, interrupts
from depthcli.engine.device_batches import DeviceLoader, to_device
from depthcli.engine.lr_schedule import lr_scheduler
from depthcli.engine.optimizer import build_adam, load_optimizer_state
from depthcli.engine.retention import save_retained
from depthcli.engine.run_dir import RunDirectory
from depthcli.engine.run_log import RunLog
from depthcli.engine.seeding import ResumableSampler, SeededDataset, capture_rng_state, derive_seed, restore_rng_state
from depthcli.engine.task import TrainingTask
from depthcli.errors import DepthcliError
from depthcli.losses.photometric import compiled_reference
from depthcli.precision import autocast_factory, resolve_amp
from depthcli.provenance import provenance
from depthcli.recipe_configs import TrainConfig
from depthcli.threads import configure_threads

STOPPED_BY_CALLBACK = "stopped by on_step"  # TrainResult.stop_reason when on_step asked to stop


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    last_loss: float
    best_metric: float | None
    stop_reason: str
    metric_name: str = "abs_rel"  # the validation metric best_metric is a value of (the task's main_metric)
    best_step: int | None = None  # the step best.ckpt was taken at


class TrainingDiverged(DepthcliError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------- entry point
def train(
    task: TrainingTask,
    train_set: Dataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    val_set: Dataset | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    ctx: distributed.DistContext | None = None,
    on_step: Callable[[int, dict[str, float]], bool | None] | None = None,
    resume_command: str = "--resume",
) -> TrainResult:
    """Train `task` on `train_set` into `run_dir` (see the module docstring for what it writes).

    `config` is the task's full config (a TrainConfig subclass); it is saved to the run dir and into
    every checkpoint. `ctx` is the process group the caller set up (`depthcli.engine.runner` does);
    without one, `train` joins (and leaves) the one torchrun describes, on `device` (default: the
    config's). `on_step(step, losses)` is called after each step (and its save); returning True stops the
    run there (saved, stop reason STOPPED_BY_CALLBACK), e.g. to re-plan and `resume`; under DDP it must
    answer alike on every rank. `resume_command` is what the messages of a stopped run tell the user to run.
    """
    args = (task, train_set, config, Path(run_dir), val_set)
    if ctx is None:
        with distributed.session(device or config.device) as own:
            return _TrainingLoop(*args, own, progress, on_step, resume_command).run(resume)
    return _TrainingLoop(*args, ctx, progress, on_step, resume_command).run(resume)


# ------------------------------------------------------------------------------------- the loop
@dataclasses.dataclass
class LoopState:
    """Where the loop stands: saved in every checkpoint, restored by `--resume`."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None


class _TrainingLoop:
    """One run of `train`: optimizer, schedule and scaler around the task, the data order, files."""

    def __init__(self, task, train_set, config, run_dir: Path, val_set, ctx, show_progress, on_step, resume_command):
        self.task, self.train_set, self.cfg, self.val_set = task, train_set, config, val_set
        self.ctx, self.show_progress, self.on_step, self.resume_command = ctx, show_progress, on_step, resume_command
        self.stop_request = interrupts.StopRequest()  # what SIGTERM / Ctrl-C asked (set by `run`)
        self.stopped_by: int | None = None  # the signal that stopped the run
        self.files = RunDirectory(run_dir)
        self.device = ctx.device
        self.state = LoopState()
        self.log = RunLog(self.files, config, task.main_metric, active=ctx.is_main)
        self.provenance = provenance(run_dir=str(self.files.path.resolve()), device=str(self.device))
        self.val_metrics: dict[str, float] = {}  # the last validation's (best.ckpt carries them)
        default_workers = 4 if self.device.type == "cuda" else 0
        self.num_workers = config.num_workers if config.num_workers is not None else default_workers
        self.sampler = ResumableSampler(train_set, config.seed, ctx.rank, ctx.world_size)
        self.batches_per_epoch = len(self.sampler.base) // config.batch_size
        if self.batches_per_epoch == 0:
            raise DepthcliError(
                f"the training data has {len(train_set)} samples per process, fewer than the batch size "
                f"{config.batch_size}; lower --batch-size or give more data"
            )
        self.total_steps = config.max_steps if config.max_steps > 0 else config.epochs * self.batches_per_epoch
        task.to(self.device)
        if config.channels_last:
            task.to(memory_format=torch.channels_last)
        if self.device.type == "cpu":
            configure_threads(config.threads)
        amp = resolve_amp(config.amp, self.device)
        task.net_autocast = autocast_factory(amp, self.device)
        task.dist = ctx
        self.optimizer = build_adam((p for p in task.parameters() if p.requires_grad), config.lr, self.device)
        self.scheduler = lr_scheduler(self.optimizer, config, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.step_lr = config.lr  # the LR the last step was taken with (logged)
        self.model: nn.Module = task  # wrapped in DistributedDataParallel by `run` when distributed

    # -- setup ------------------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        cfg, task = self.cfg, self.task
        if self.ctx.is_main:
            self.files.create()
        if resume:
            self._restore()
        self.log.open(self.state.step if resume else None)
        if self.ctx.is_main:
            self.files.write_config(cfg, self.provenance, resumed=resume)
        if cfg.compile and self.device.type == "cuda":
            task.compile_networks()
        if self.ctx.enabled:
            self.model = DistributedDataParallel(
                task, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        # CPU: compile the float32 loss maths, where fusion pays; the nets stay with oneDNN's kernels
        with (
            compiled_reference(cfg.compile and self.device.type == "cpu"),
            interrupts.stop_requests() as self.stop_request,
        ):
            return self._train()

    def _restore(self) -> None:
        path = self.files.resumable_checkpoint()
        payload = load_checkpoint(path, expected_kind=self.task.checkpoint_kind)
        train_state = payload.get("train_state")
        if not isinstance(train_state, dict):
            raise DepthcliError(f"--resume: checkpoint {path} holds no training state; it cannot be resumed")
        self.task.load_checkpoint_payload(payload, path)
        try:
            load_optimizer_state(self.optimizer, train_state["optimizer"])
            self.scheduler.load_state_dict(train_state["scheduler"])
            if train_state.get("scaler"):
                self.scaler.load_state_dict(train_state["scaler"])
            position = {key: int(train_state[key]) for key in ("step", "epoch", "batch_in_epoch")}
            best = {key: train_state.get(key) for key in ("best_metric", "best_step")}
            self.state = LoopState(**position, **best)
            restore_rng_state(train_state["rng"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise DepthcliError(
                f"--resume: the training state in {path} does not fit this run ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); it cannot be resumed"
            ) from exc

    # -- main loop --------------------------------------------------------------------------------
    def _train(self) -> TrainResult:
        cfg, state = self.cfg, self.state
        start_time = time.monotonic()
        bar = tqdm(
            total=self.total_steps,
            initial=state.step,
            desc="train",
            unit="step",
            disable=not (self.show_progress and self.ctx.is_main),
            dynamic_ncols=True,
        )
        last_loss, stop_reason, saved_at = math.nan, "done", state.step
        window_images, window_start = 0, time.monotonic()
        try:
            while state.step < self.total_steps and stop_reason == "done":
                for batch in self._epoch_batches():
                    losses = self._step(batch)
                    last_loss = losses["loss"]
                    window_images += self.task.batch_size_of(batch) * self.ctx.world_size
                    elapsed = time.monotonic() - window_start
                    images_per_s = window_images / elapsed if elapsed > 0 else 0.0
                    bar.update(1)
                    bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{images_per_s:.1f}")
                    if state.step % cfg.log_every == 0 or state.step == self.total_steps:
                        self.log.record(
                            {
                                "step": state.step,
                                "epoch": state.epoch,
                                "lr": self.step_lr,
                                "images_per_s": images_per_s,
                                **losses,
                            }
                        )
                        window_images, window_start = 0, time.monotonic()
                    if self.log.images_due(state.step):
                        self.log.images(state.step, self.task, batch)
                    end_of_epoch = state.batch_in_epoch == self.batches_per_epoch
                    if end_of_epoch:
                        state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                    validate = (cfg.val_every > 0 and state.step % cfg.val_every == 0) or (
                        cfg.val_every == 0 and end_of_epoch
                    )
                    is_best = self._validate() if validate else False
                    if is_best or end_of_epoch or (cfg.save_every > 0 and state.step % cfg.save_every == 0):
                        self._save(is_best, end_of_epoch)
                        saved_at = state.step
                    callback_stop = self.on_step is not None and self.on_step(state.step, losses)
                    stop_reason = self._stop_reason(start_time)
                    if callback_stop and stop_reason == "done":
                        stop_reason = STOPPED_BY_CALLBACK
                    if state.step >= self.total_steps or stop_reason != "done":
                        break
            if saved_at != state.step or not self.files.last_checkpoint.exists():
                validate = self.val_set is not None and self.stopped_by is None  # a stop saves at once
                self._save(self._validate() if validate else False, end_of_epoch=False)
        finally:
            bar.close()
            self.log.close()
        if self.stopped_by is not None:
            raise interrupts.TrainingInterrupted(
                f"{stop_reason} at step {state.step} of {self.total_steps}: the run is saved in "
                f"{self.files.last_checkpoint}; continue it with `{self.resume_command}`",
                self.stopped_by,
            )
        return TrainResult(
            run_dir=self.files.path,
            last_checkpoint=self.files.last_checkpoint,
            best_checkpoint=self.files.best_checkpoint if self.files.best_checkpoint.exists() else None,
            steps=state.step,
            last_loss=last_loss,
            best_metric=state.best_metric,
            stop_reason=stop_reason,
            metric_name=self.task.main_metric,
            best_step=state.best_step,
        )

    def _stop_reason(self, start_time: float) -> str:
        """Why the run stops now (--max-minutes spent, SIGTERM, Ctrl-C), or "done" to go on; decided jointly so
        that all ranks stop at the same step."""
        over_budget = self.cfg.max_minutes > 0 and time.monotonic() - start_time > 60 * self.cfg.max_minutes
        signum = self.stop_request.signum
        over_budget, signalled = distributed.on_any_rank([over_budget, signum is not None], self.ctx)
        if signalled:
            self.stopped_by = signum or signal.SIGTERM  # another rank got it: the scheduler's SIGTERM
            return f"stopped by {interrupts.SIGNAL_NAMES[self.stopped_by]}"
        return "time budget spent" if over_budget else "done"

    def _epoch_batches(self) -> Iterator[dict]:
        state, cfg = self.state, self.cfg
        self.sampler.set_position(state.epoch, state.batch_in_epoch * cfg.batch_size)
        loader = DataLoader(
            SeededDataset(self.train_set),
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=self.num_workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(derive_seed(cfg.seed, state.epoch, state.batch_in_epoch)),
            persistent_workers=False,
            worker_init_fn=interrupts.ignore_stop_signals,
            collate_fn=collate_samples,
        )
        for batch in loader:
            yield to_device(batch, self.device, cfg.channels_last)

    def _step(self, batch: dict) -> dict[str, float]:
        self.task.step = self.state.step
        losses = self.model(batch)
        loss = losses["loss"]
        reduced = {
            name: distributed.all_reduce_mean(value.detach().float(), self.ctx) for name, value in losses.items()
        }
        total = reduced["loss"].item()
        if not math.isfinite(total):
            raise TrainingDiverged(
                f"loss became {total} at step {self.state.step + 1} (epoch {self.state.epoch}); stopped. The last "
                f"good checkpoint is {self.files.last_checkpoint}; lower --lr or try --amp off, then --resume"
            )
        self.step_lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.state.step += 1
        self.state.batch_in_epoch += 1
        return {name: value.item() for name, value in reduced.items()}

    # -- validation, saving, logging ------------------------------------------------------------
    def _validate(self) -> bool:
        """Validate on rank 0; returns whether this is the best `main_metric` so far.

        A validation that fails costs no training: the run is saved first, then the failure is reported
        (`interrupts.validation_failure`).
        """
        if self.val_set is None:
            return False
        is_best, failure = False, None
        if self.ctx.is_main:
            try:
                is_best = self._run_validation()
            except Exception as exc:  # noqa: BLE001 - whatever it is, the steps since the last save come first
                failure = exc
        if distributed.decided_on_main(failure is not None, self.ctx):
            self._save(False, end_of_epoch=False)
            data = getattr(self.cfg, "val_data", None)
            raise interrupts.validation_failure(failure, self.state.step, data, self.files.last_checkpoint,
                                                self.resume_command)  # fmt: skip
        return is_best

    def _run_validation(self) -> bool:
        loader = DataLoader(self.val_set, batch_size=self.cfg.batch_size, num_workers=self.num_workers,
                            worker_init_fn=interrupts.ignore_stop_signals, collate_fn=collate_samples)  # fmt: skip
        self.task.eval()
        with torch.no_grad():
            metrics = self.task.validate(DeviceLoader(loader, self.device, self.cfg.channels_last), self.device)
        self.task.train()
        is_best = False
        if metrics:
            value = metrics.get(self.task.main_metric)
            if value is not None and (self.state.best_metric is None or value < self.state.best_metric):
                self.state.best_metric, self.state.best_step, is_best = float(value), self.state.step, True
            self.val_metrics = dict(metrics)
            self.log.validation(self.state.step, self.state.epoch, metrics, is_best)
        return is_best

    def _save(self, is_best: bool, end_of_epoch: bool) -> None:
        if self.ctx.is_main:
            payload = self._checkpoint_payload()
            save_checkpoint(self.files.last_checkpoint, payload)
            save_retained(
                self.files,
                payload,
                self.cfg,
                best_metrics=self.val_metrics if is_best else None,
                finished_epoch=self.state.epoch - 1 if end_of_epoch else None,
            )
            self.log.plot()
        distributed.barrier(self.ctx)

    def _checkpoint_payload(self) -> dict[str, Any]:
        """The full checkpoint of this moment: config, provenance, the task's networks and the training state."""
        return {
            "kind": self.task.checkpoint_kind,
            "config": config_to_dict(self.cfg),
            "provenance": self.provenance,
            **self.task.checkpoint_payload(),
            "train_state": {
                **dataclasses.asdict(self.state),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": capture_rng_state(),
            },
        }
