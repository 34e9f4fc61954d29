"""The generic training loop every task (self-supervised, supervised, contrastive) plugs into.

A task is a `TrainingTask` (an nn.Module): it owns its networks, returns a dict of losses for a
batch (`"loss"` is optimised) and may validate. The loop adds everything that is not science: Adam
with an optional linear LR warmup and a step decay, epochs or a step budget, a progress bar, atomic
periodic checkpoints that resume bit-for-bit, validation with `best.ckpt`, a metrics JSONL log and
loss plot, NaN/inf stop, AMP, channels-last, torch.compile and DistributedDataParallel.

Reproducibility: every sample is produced under its own seed derived from (seed, epoch, index), the
sampler permutation from (seed, epoch), and the main process RNG states travel in the checkpoint, so
a resumed run takes exactly the steps an uninterrupted run would have taken, whatever the number of
DataLoader workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from depthcli.atomic import atomic_path, atomic_write_text
from depthcli.config import build_config, config_to_dict, save_config
from depthcli.engine import distributed
from depthcli.engine.checkpoint import load_checkpoint, save_checkpoint
from depthcli.errors import DepthcliError

LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOSS_PLOT = "loss.png"


@dataclasses.dataclass
class TrainConfig:
    """Loop settings shared by every task; task configs inherit from this dataclass."""

    epochs: int = 20
    max_steps: int = 0  # > 0: stop after this many optimizer steps instead of `epochs`
    max_minutes: float = 0.0  # > 0: stop (and save) once this wall-clock budget is spent
    batch_size: int = 12
    lr: float = 1e-4
    lr_decay_at: float = 0.75  # multiply the LR by lr_gamma after this fraction of the steps
    lr_gamma: float = 0.1
    warmup_steps: int = 0  # > 0: the LR rises linearly from lr / warmup_steps to lr over these first steps
    num_workers: int | None = None  # DataLoader workers; None: 0 on CPU (the nets want every core), 4 on CUDA
    seed: int = 0
    amp: Literal["off", "bf16", "fp16"] = "off"
    channels_last: bool = False
    compile: bool = False
    save_every: int = 200  # steps between checkpoints (and at every epoch end)
    log_every: int = 10  # steps between metrics.jsonl records
    val_every: int = 0  # steps between validations; 0 = at every epoch end


class TrainingTask(nn.Module):
    """What a task provides to the loop. Subclasses fill `self.networks` and implement `forward`.

    `forward(batch)` returns a dict of scalar losses with the optimised total under "loss"; it must
    run its networks inside `with self.net_autocast():` and keep the loss maths in float32.
    `networks[primary_network]` is stored as the checkpoint's "model".
    """

    checkpoint_kind = "depth"
    primary_network = "depth"
    main_metric = "abs_rel"  # validation metric choosing best.ckpt (lower is better)

    def __init__(self) -> None:
        super().__init__()
        self.networks = nn.ModuleDict()
        self.net_autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        self.step = 0  # optimizer steps taken before the current batch (set by the loop; for loss schedules)

    @classmethod
    def from_config(cls, config: Any) -> TrainingTask:
        """The task a run starts from: every RNG seeded with `config.seed`, then `cls(config)`, then the
        weights `config` names (`init`, `encoder_init`, `pose_encoder_init`: depthcli.weights_init). Built
        this way again, its networks hold the run's exact initial weights (the "untrained" reference of
        demo and benchmark)."""
        from depthcli.weights_init import initialise

        seed_everything(config.seed)
        task = cls(config)
        initialise(task, config)
        return task

    def batch_size_of(self, batch: dict) -> int:
        return int(batch["index"].shape[0]) if "index" in batch else int(next(iter(batch.values())).shape[0])

    def validate(self, loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Metrics on held-out data (called in eval mode under no_grad); empty when there is no GT."""
        return {}

    def checkpoint_payload(self) -> dict[str, Any]:
        others = {name: net.state_dict() for name, net in self.networks.items() if name != self.primary_network}
        return {"model": self.networks[self.primary_network].state_dict(), "networks": others}

    def load_checkpoint_payload(self, payload: dict[str, Any]) -> None:
        self.networks[self.primary_network].load_state_dict(payload["model"])
        for name, state in payload.get("networks", {}).items():
            self.networks[name].load_state_dict(state)

    def compile_networks(self) -> None:
        for net in self.networks.values():
            net.compile()


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    last_loss: float
    best_metric: float | None
    stop_reason: str


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
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train `task` on `train_set` into `run_dir` (see the module docstring for what it writes).

    `config` is the task's full config (a TrainConfig subclass); it is saved to the run dir and into
    every checkpoint. `on_step(step, losses)` is called after each step (and its save), e.g. to stop.
    """
    ctx = distributed.setup(device)
    try:
        return _Loop(task, train_set, config, Path(run_dir), val_set, ctx, progress, on_step).run(resume)
    finally:
        distributed.teardown(ctx)


def resolve_run_config(
    config_class: type,
    run_dir: str | Path,
    *,
    resume: bool,
    checkpoint_kind: str,
    preset: Mapping[str, Any] | None,
    config_file: str | Path | None,
    flags: Mapping[str, Any],
):
    """A command's job config: preset < --config file < the flags that were given (None = not given).

    With `resume`, the config stored in RUN_DIR/last.ckpt takes the preset's place, so a resumed run
    continues with exactly the settings it started with unless a flag says otherwise.
    """
    overrides = {key: value for key, value in flags.items() if value is not None}
    if flags.get("epochs") is not None and flags.get("max_steps") is None:
        overrides["max_steps"] = 0  # --epochs given: the run is measured in epochs again
    if resume:
        last = Path(run_dir) / LAST_CHECKPOINT
        if not last.is_file():
            raise DepthcliError(f"--resume: no checkpoint {last}; start without --resume or point --out at the run")
        preset = load_checkpoint(last, expected_kind=checkpoint_kind)["config"]
    return build_config(config_class, preset, config_file, overrides)


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python RNGs (call before building the task so its init is reproducible)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _lr_factor(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """LR multiplier at a step: linear warmup over `warmup_steps`, then x`lr_gamma` from `lr_decay_at`."""
    decay_step = max(1, round(cfg.lr_decay_at * total_steps))

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
        return warmup * (cfg.lr_gamma if step >= decay_step else 1.0)

    return factor


# ------------------------------------------------------------------------------------- the loop
@dataclasses.dataclass
class _Progress:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None


class _Loop:
    def __init__(self, task, train_set, config, run_dir, val_set, ctx, progress, on_step):
        self.task, self.train_set, self.cfg, self.run_dir = task, train_set, config, run_dir
        self.val_set, self.ctx, self.show_progress, self.on_step = val_set, ctx, progress, on_step
        self.device = ctx.device
        self.state = _Progress()
        self.history: list[dict] = []
        default_workers = 4 if self.device.type == "cuda" else 0
        self.num_workers = config.num_workers if config.num_workers is not None else default_workers

    # -- setup ------------------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        cfg, task = self.cfg, self.task
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sampler = _SeededSampler(self.train_set, cfg.seed, self.ctx)
        self.batches_per_epoch = len(self.sampler.base) // cfg.batch_size
        if self.batches_per_epoch == 0:
            raise DepthcliError(
                f"the training data has {len(self.train_set)} samples per process, fewer than the batch size "
                f"{cfg.batch_size}; lower --batch-size or give more data"
            )
        self.total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * self.batches_per_epoch
        task.to(self.device)
        if cfg.channels_last:
            task.to(memory_format=torch.channels_last)
        task.net_autocast = _autocast_factory(cfg.amp, self.device)
        self.optimizer = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_factor(cfg, self.total_steps))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        if resume:
            self._restore()
        elif self.ctx.is_main:
            (self.run_dir / METRICS_FILE).unlink(missing_ok=True)
        if self.ctx.is_main:
            save_config(cfg, self.run_dir / CONFIG_FILE)
        if cfg.compile:
            if self.device.type == "cuda":
                task.compile_networks()
            else:
                warnings.warn("--compile only applies on CUDA; ignored on CPU", stacklevel=2)
        self.model = (
            DistributedDataParallel(task, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.ctx.enabled
            else task
        )
        return self._train()

    def _restore(self) -> None:
        path = self.run_dir / LAST_CHECKPOINT
        if not path.is_file():
            raise DepthcliError(f"--resume: no checkpoint {path}; start without --resume or point --out at the run")
        payload = load_checkpoint(path, expected_kind=self.task.checkpoint_kind)
        train_state = payload.get("train_state")
        if not isinstance(train_state, dict):
            raise DepthcliError(f"--resume: checkpoint {path} holds no training state; it cannot be resumed")
        self.task.load_checkpoint_payload(payload)
        self.optimizer.load_state_dict(train_state["optimizer"])
        self.scheduler.load_state_dict(train_state["scheduler"])
        if train_state.get("scaler"):
            self.scaler.load_state_dict(train_state["scaler"])
        self.state = _Progress(
            step=train_state["step"],
            epoch=train_state["epoch"],
            batch_in_epoch=train_state["batch_in_epoch"],
            best_metric=train_state["best_metric"],
        )
        restore_rng_state(train_state["rng"])
        if self.ctx.is_main:
            self.history = [r for r in _read_metrics(self.run_dir / METRICS_FILE) if r["step"] <= self.state.step]
            atomic_write_text(self.run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in self.history))

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
                        self._log(
                            {
                                "step": state.step,
                                "epoch": state.epoch,
                                "lr": self.step_lr,
                                "images_per_s": images_per_s,
                                **losses,
                            }
                        )
                        window_images, window_start = 0, time.monotonic()
                    end_of_epoch = state.batch_in_epoch == self.batches_per_epoch
                    if end_of_epoch:
                        state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                    validate = (cfg.val_every > 0 and state.step % cfg.val_every == 0) or (
                        cfg.val_every == 0 and end_of_epoch
                    )
                    is_best = self._validate() if validate else False
                    if is_best or end_of_epoch or (cfg.save_every > 0 and state.step % cfg.save_every == 0):
                        self._save(is_best)
                        saved_at = state.step
                    if self.on_step is not None:
                        self.on_step(state.step, losses)
                    if cfg.max_minutes > 0 and self._budget_spent(start_time):
                        stop_reason = "time budget spent"
                    if state.step >= self.total_steps or stop_reason != "done":
                        break
            if saved_at != state.step or not (self.run_dir / LAST_CHECKPOINT).exists():
                self._save(self._validate() if self.val_set is not None else False)
        finally:
            bar.close()
        return TrainResult(
            run_dir=self.run_dir,
            last_checkpoint=self.run_dir / LAST_CHECKPOINT,
            best_checkpoint=self.run_dir / BEST_CHECKPOINT if (self.run_dir / BEST_CHECKPOINT).exists() else None,
            steps=state.step,
            last_loss=last_loss,
            best_metric=state.best_metric,
            stop_reason=stop_reason,
        )

    def _budget_spent(self, start_time: float) -> bool:
        """Whether --max-minutes is over; decided jointly so that all ranks stop at the same step."""
        over = torch.tensor(float(time.monotonic() - start_time > 60 * self.cfg.max_minutes), device=self.device)
        return distributed.all_reduce_mean(over, self.ctx).item() > 0

    def _epoch_batches(self) -> Iterator[dict]:
        state, cfg = self.state, self.cfg
        self.sampler.set_position(state.epoch, state.batch_in_epoch * cfg.batch_size)
        loader = DataLoader(
            _SeededSamples(self.train_set),
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=self.num_workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(_derive_seed(cfg.seed, state.epoch, state.batch_in_epoch)),
            persistent_workers=False,
        )
        for batch in loader:
            yield _to_device(batch, self.device, cfg.channels_last)

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
                f"good checkpoint is {self.run_dir / LAST_CHECKPOINT}; lower --lr or try --amp off, then --resume"
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
        """Validate on rank 0; returns whether this is the best `main_metric` so far."""
        if self.val_set is None:
            return False
        is_best = False
        if self.ctx.is_main:
            loader = DataLoader(self.val_set, batch_size=self.cfg.batch_size, num_workers=self.num_workers)
            self.task.eval()
            with torch.no_grad():
                metrics = self.task.validate(_DeviceLoader(loader, self.device, self.cfg.channels_last), self.device)
            self.task.train()
            if metrics:
                self._log({"step": self.state.step, "epoch": self.state.epoch, "val": metrics})
                value = metrics.get(self.task.main_metric)
                if value is not None and (self.state.best_metric is None or value < self.state.best_metric):
                    self.state.best_metric, is_best = float(value), True
        distributed.barrier(self.ctx)
        return is_best

    def _save(self, is_best: bool) -> None:
        if self.ctx.is_main:
            payload = {
                "kind": self.task.checkpoint_kind,
                "config": config_to_dict(self.cfg),
                **self.task.checkpoint_payload(),
                "train_state": {
                    **dataclasses.asdict(self.state),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "rng": capture_rng_state(),
                },
            }
            save_checkpoint(self.run_dir / LAST_CHECKPOINT, payload)
            if is_best:
                save_checkpoint(self.run_dir / BEST_CHECKPOINT, payload)
            _plot_history(self.history, self.run_dir / LOSS_PLOT)
        distributed.barrier(self.ctx)

    def _log(self, record: dict) -> None:
        if not self.ctx.is_main:
            return
        self.history.append(record)
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------ sampling and seeding
def _derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python runs (unlike `hash`)."""
    return int(
        np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1
    )


class _SeededSampler(Sampler):
    """DistributedSampler (also for one process) yielding `(index, sample_seed)` from a resumable position."""

    def __init__(self, dataset: Dataset, seed: int, ctx: distributed.DistContext) -> None:
        self.base = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
        self.seed, self.epoch, self.skip = seed, 0, 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.base.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self.base):
            if position >= self.skip:
                yield index, _derive_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return len(self.base) - self.skip


class _SeededSamples(Dataset):
    """Produces sample `index` with all RNGs seeded from its own seed, leaving the caller's RNGs as they were."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        numpy_state, python_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(numpy_state)
                random.setstate(python_state)


def capture_rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / python RNG states as tensors and plain values (weights_only-loadable)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": version,
            "state": torch.tensor(python_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"].tolist()), python_state["gauss_next"]))


# ---------------------------------------------------------------------------------- helpers
def _autocast_factory(amp: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    if amp == "off":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {key: _to_device(value, device, channels_last) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(value, device, channels_last) for value in batch)
    return batch


class _DeviceLoader:
    """Iterates a DataLoader, moving each batch to the training device (what `validate` receives)."""

    def __init__(self, loader: DataLoader, device: torch.device, channels_last: bool) -> None:
        self.loader, self.device, self.channels_last = loader, device, channels_last

    def __iter__(self) -> Iterator[dict]:
        for batch in self.loader:
            yield _to_device(batch, self.device, self.channels_last)

    def __len__(self) -> int:
        return len(self.loader)


def _read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a kill: everything after it is lost anyway
    return records


def _plot_history(history: list[dict], path: Path) -> None:
    """Training loss (and validation main metrics) against step, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in history if "loss" in r]
    val = [r for r in history if "val" in r]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", color="tab:blue")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    if val and "abs_rel" in val[0]["val"]:
        twin = axis.twinx()
        twin.plot(
            [r["step"] for r in val], [r["val"]["abs_rel"] for r in val], "o-", color="tab:red", label="val abs_rel"
        )
        twin.set_ylabel("validation abs_rel")
    axis.set_title("depthcli training")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)
