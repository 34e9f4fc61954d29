"""One runner for every training recipe: resolve the run's config, set up the processes once, open the
data, build the task and hand all of it to the loop.

A `Recipe` is what differs between self-supervised, supervised and contrastive training: its settings
(name, config class, presets: `depthcli.recipe_configs`), its task class (the networks and losses, whose
`checkpoint_kind` names its checkpoints) and how it opens its training and validation data. Everything
else (processes, seeding, the loop, the run directory) is the runner's and the loop's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from depthcli.checkpoints import load_checkpoint
from depthcli.config import absolute_paths, build_config
from depthcli.engine import distributed
from depthcli.engine.run_dir import RunDirectory
from depthcli.engine.task import TrainingTask
from depthcli.engine.trainer import TrainResult, train
from depthcli.errors import DepthcliError
from depthcli.evaluation.selection import announce_train_selection
from depthcli.recipe_configs import RecipeSettings, TrainConfig


@dataclasses.dataclass
class RecipeData:
    """What a recipe's `open_data` returns: the config completed from the data, and the datasets."""

    config: TrainConfig
    train_set: Dataset
    val_set: Dataset | None = None


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A way to train: its settings, its task, how it opens its data and what it writes after training.

    `open_data(config, run_dir, ctx)` may complete the config (e.g. the size from the data) and check
    it against the processes in `ctx`; `finish(task, run_dir)` runs on rank 0 after training and returns
    the further files it wrote, by name.
    """

    settings: RecipeSettings
    task_class: type[TrainingTask]
    open_data: Callable[[Any, Path, distributed.DistContext], RecipeData]
    finish: Callable[[TrainingTask, Path], dict[str, Path]] | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def config_class(self) -> type[TrainConfig]:
        return self.settings.config_class

    @property
    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        return self.settings.presets

    @property
    def checkpoint_kind(self) -> str:
        return self.task_class.checkpoint_kind


@dataclasses.dataclass
class RecipeResult:
    train: TrainResult
    config: TrainConfig  # as trained (completed from the data)
    outputs: dict[str, Path]  # files `finish` wrote besides the run directory's own (rank 0 only)
    is_main: bool  # whether this process is rank 0 (the one that reports)


def resolve_run_config(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    preset: str | None,
    resume: bool,
    config_file: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """A command's run config: preset < --config file < the flags that were given (None = not given).

    With `resume`, the config stored in RUN_DIR/last.ckpt takes the preset's place, so a resumed run
    continues with exactly the settings it started with unless a flag says otherwise. Giving `epochs`
    without `max_steps` measures the run in epochs again.
    """
    flags = flags or {}
    overrides = {key: value for key, value in flags.items() if value is not None}
    if flags.get("epochs") is not None and flags.get("max_steps") is None:
        overrides["max_steps"] = 0
    if resume:
        last = RunDirectory(run_dir).last_checkpoint
        if not last.is_file():
            raise DepthcliError(f"--resume: no checkpoint {last}; start without --resume or point --out at the run")
        base = load_checkpoint(last, expected_kind=recipe.checkpoint_kind)["config"]
    else:
        preset = preset or recipe.settings.default_preset
        if preset is None:
            raise DepthcliError(f"--preset is required ({', '.join(recipe.presets)}) unless --resume")
        base = recipe.settings.preset_values(preset)
    return build_config(recipe.config_class, base, config_file, overrides)


def run_recipe(
    recipe: Recipe,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_start: Callable[[TrainConfig], None] | None = None,
    on_step: Callable[[int, dict[str, float]], bool | None] | None = None,
) -> RecipeResult:
    """Train `config` with `recipe` into `run_dir` (resuming its last.ckpt if asked), on `config.device`.

    The process group is set up here, once, and handed to the data, the task and the loop. The run
    directory and the config's paths are made absolute first: the run stores them, and `--resume` from
    another working directory must find them. `on_start(config)` runs on rank 0 once the data is open
    (the config then is final).
    """
    run_dir, config = Path(run_dir).resolve(), absolute_paths(config)
    with distributed.session(config.device) as ctx:
        data = recipe.open_data(config, run_dir, ctx)
        if ctx.is_main:
            announce_train_selection(dataclasses.asdict(data.config))
            if on_start is not None:
                on_start(data.config)
        task = recipe.task_class.from_config(data.config)
        result = train(
            task,
            data.train_set,
            data.config,
            run_dir,
            val_set=data.val_set,
            resume=resume,
            progress=progress,
            ctx=ctx,
            on_step=on_step,
        )
        outputs = recipe.finish(task, run_dir) if recipe.finish is not None and ctx.is_main else {}
        return RecipeResult(result, data.config, outputs, ctx.is_main)
