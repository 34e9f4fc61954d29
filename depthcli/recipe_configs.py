"""What each training recipe can be told: its config dataclass, its presets, and the help of every key.

Light on purpose (no torch): `depthcli train --help` and `depthcli pretrain --help` draw their flags,
choices and defaults from these classes. The recipes that run them are `depthcli.engine.recipes`.
Every field is one config key (settable in a `--config` file and with `--set key=value`); fields
declared with `flag=True` also get a flag of their own. The methods behind the settings are described
in docs/methods.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from depthcli.config import Rule, build_config, setting
from depthcli.errors import DepthcliError
from depthcli.sizes import parse_size

AmpMode = Literal["auto", "off", "bf16", "fp16"]

# The rules shared by several keys (`depthcli.config.Rule`; every other number need only be finite).
POSITIVE = Rule(low=0, low_open=True)
NON_NEGATIVE = Rule(low=0)
AT_LEAST_ONE = Rule(low=1)
NET_SIZE = Rule(size=True)  # a size a depth net accepts (`depthcli.sizes.check_size`)
MIN_DEPTH = Rule(low=0, low_open=True, below="max_depth")
FRACTION = Rule(low=0, high=1)


@dataclasses.dataclass
class TrainConfig:
    """Loop settings shared by every recipe; recipe configs inherit from this dataclass."""

    epochs: int = setting(20, "Number of epochs (when max_steps is 0).", flag=True, rule=AT_LEAST_ONE)
    max_steps: int = setting(
        0, "Stop after this many optimizer steps instead of epochs (0: use epochs).", flag=True, rule=NON_NEGATIVE
    )
    max_minutes: float = setting(
        0.0, "Stop (and save) once this many minutes are spent (0: no limit).", flag=True, rule=NON_NEGATIVE
    )
    batch_size: int = setting(12, "Images per step and process.", flag=True, rule=AT_LEAST_ONE)
    lr: float = setting(1e-4, "Adam learning rate.", flag=True, rule=POSITIVE)
    lr_decay_at: float = setting(0.75, "Multiply the LR by lr_gamma after this fraction of the steps.", rule=FRACTION)
    lr_gamma: float = setting(0.1, "LR factor of the step decay.", rule=POSITIVE)
    warmup_steps: int = setting(
        0, "Raise the LR linearly from lr / warmup_steps to lr over these first steps.", rule=NON_NEGATIVE
    )
    num_workers: int | None = setting(
        None,
        "DataLoader worker processes.",
        flag=True,
        none="0 on CPU (the nets want every core), 4 on CUDA",
        rule=NON_NEGATIVE,
    )
    seed: int = setting(
        0, "Random seed (initial weights, data order, augmentation).", flag=True, rule=Rule(low=0, high=2**63 - 1)
    )
    device: str = setting("auto", "Device: auto (CUDA when present), cpu, cuda or cuda:N.", flag=True)
    amp: AmpMode = setting(
        "auto",
        "Precision of the nets: auto = bf16 where the CPU (AVX-512-BF16/AMX) or GPU does it natively, else "
        "float32 (off); the losses are float32 either way.",
        flag=True,
    )
    channels_last: bool = setting(True, "NHWC memory format (faster convolutions on CPU and recent GPUs).", flag=True)
    compile: bool = setting(
        False,
        "torch.compile: the nets on CUDA; the float32 photometric loss on CPU (about a minute of compiling, "
        "then 1.27x faster monodepth2 steps: for long runs).",
        flag=True,
    )
    threads: int = setting(
        0,
        "CPU threads (0: OMP_NUM_THREADS when set, else the cores other processes leave idle).",
        flag=True,
        rule=NON_NEGATIVE,
    )
    save_every: int = setting(
        200, "Steps between checkpoints (one is also written at every epoch end).", flag=True, rule=NON_NEGATIVE
    )
    keep_last: int = setting(
        0,
        "Also keep the checkpoints of the last N saves, as step_XXXXXXX.ckpt (resumable; 0: none).",
        flag=True,
        rule=NON_NEGATIVE,
    )
    save_epochs: bool = setting(
        False, "At every epoch end also write epoch_XX.ckpt, weights only (XX from 00, as monodepth2).", flag=True
    )
    keep_all_networks: bool = setting(
        False,
        "best.ckpt and epoch_XX.ckpt keep every network of the task (self-supervised: the pose net too, which "
        "--init also starts from), not the model alone.",
    )
    log_every: int = setting(10, "Steps between metrics.jsonl and TensorBoard records.", flag=True, rule=AT_LEAST_ONE)
    tensorboard: bool = setting(
        True, "TensorBoard event files in OUT/tensorboard (when the tensorboard package is installed).", flag=True
    )
    log_images_every: int = setting(
        250,
        "Steps between TensorBoard pictures (input, disparity, automask, warped source...; 0: none).",
        flag=True,
        rule=NON_NEGATIVE,
    )
    val_every: int = setting(0, "Steps between validations (0: at every epoch end).", rule=NON_NEGATIVE)


@dataclasses.dataclass
class SelfSupConfig(TrainConfig):
    """Everything a self-supervised run depends on (monodepth2, DIFFNet, RA-Depth); saved with the run."""

    preset: str = setting("monodepth2", "The preset this config started from.")
    net: str = setting("monodepth2", "Depth net (`depthcli models` lists them).", flag=True, architecture=True)
    pose_net: str = setting("resnet18", "Pose net.", architecture=True)
    size: tuple[int, int] | None = setting(
        None,
        "Training size WxH.",
        flag=True,
        none="the training cache's size (640x192 from a raw root)",
        parse=parse_size,
        rule=NET_SIZE,
    )
    frame_ids: tuple[int, ...] = setting((0, -1, 1), "Target frame 0 and the source frames (offsets).")
    scales: tuple[int, ...] = setting(
        (0, 1, 2, 3), "Output scales the loss is taken at.", rule=Rule(low=0, high=3), architecture=True
    )
    min_depth: float = setting(0.1, "Depth (m) of the largest disparity.", rule=MIN_DEPTH)
    max_depth: float = setting(100.0, "Depth (m) of the smallest disparity.", rule=POSITIVE)
    smoothness_weight: float = setting(1e-3, "Edge-aware smoothness weight (divided by 2**scale).", rule=NON_NEGATIVE)
    automask: bool = setting(True, "monodepth2's auto-masking of pixels that do not move.")
    augment: bool = setting(
        True,
        "Horizontal flip and colour jitter (the same for all frames of a sample; off for parity checks).",
        flag=True,
    )
    intrinsics: Literal["calibration", "monodepth2"] = setting(
        "calibration", "KITTI camera: each drive's calibration, or monodepth2's one fixed camera (docs/parity.md)."
    )
    pose_jitter: bool = setting(
        True, "The pose net sees the colour-jittered frames (RA-Depth feeds it the plain ones)."
    )
    # From random weights on little data, a pose net that first explains forward driving as sideways motion
    # pulls the depth into a left-far/right-near layout it never leaves (bench_selfsup's quality bar, README).
    initial_forward_motion: float = setting(
        0.0,
        "Forward translation per frame pair the untrained pose net starts from (0: the papers' initialisation).",
        rule=NON_NEGATIVE,
    )
    arbitrary_scale: bool = setting(False, "RA-Depth: high/low-scale variants and their cross-scale consistency.")
    high_scale_range: tuple[float, float] = setting(
        (1.1, 2.0), "RA-Depth: range of the high scale factor.", rule=Rule(low=1, high=4, ordered=True)
    )
    low_scale_range: tuple[float, float] = setting(
        (0.7, 0.9),
        "RA-Depth: range of the low scale factor (at least 0.5: the filling splices the image's own edge bands).",
        rule=Rule(low=0.5, high=1, ordered=True),
    )
    consistency_weight: float = setting(1.0, "RA-Depth: weight of the cross-scale consistency.", rule=NON_NEGATIVE)
    # From scratch, the consistency of still-random disparities pulls them flat before the photometric
    # loss shapes them; (0, 0) applies the full weight from the first step, as RA-Depth does.
    consistency_ramp: tuple[int, int] = setting(
        (0, 0),
        "RA-Depth: (start, end) steps over which the consistency weight rises from 0 (0, 0: full at once).",
        rule=Rule(low=0, ordered=True),
    )
    consistency_low_mask: Literal["sample", "batch"] = setting(
        "sample",
        "RA-Depth: whose automask weighs the low-scale consistency: the sample's own, or the whole batch's "
        "(the released trainer's slip; docs/parity.md).",
    )
    boundary_loss: bool = setting(False, "InverseForm boundary loss: disparity edges against image edges.", flag=True)
    boundary_weight: float = setting(0.1, "Weight of the boundary loss.", rule=NON_NEGATIVE)
    # InverseForm refines a net that already predicts structure; from random weights, the boundary term at
    # full weight drove the disparities flat before the photometric loss could shape them.
    boundary_ramp: tuple[int, int] | None = setting(
        None,
        "(start, end) steps over which the boundary weight rises linearly from 0 to boundary_weight.",
        none="full weight from the first step",
        rule=Rule(low=0, ordered=True),
    )
    boundary_net: str | None = setting(
        None, "Trained inverse-transformation net checkpoint.", none="train one into the run directory", path=True
    )
    boundary_net_steps: int = setting(
        2000, "Training steps of that net when it is trained for the run.", rule=AT_LEAST_ONE
    )
    data: str = setting(
        "", "Training cache (.h5) or KITTI raw root (cached into the run directory).", flag=True, path=True
    )
    split: str | None = setting(
        None, "KITTI split file, when data is a raw root.", flag=True, none="the root's train_files.txt", path=True
    )
    val_data: str | None = setting(
        None, "Eval cache with ground truth: its abs_rel picks best.ckpt.", flag=True, none="no validation", path=True
    )
    val_protocol: str = setting("kitti-eigen", "Evaluation protocol of the validation.")
    init: str | None = setting(
        None,
        "Depth checkpoint (a run's or `weights import`'s): every net it holds starts from it (fresh optimizer).",
        flag=True,
        none="random weights",
        path=True,
    )
    encoder_init: str | None = setting(
        None,
        "Encoder checkpoint (e.g. from `depthcli pretrain`) or ImageNet file (torchvision ResNet, HRNet-W18-C).",
        flag=True,
        none="random weights",
        path=True,
    )
    pose_encoder_init: str | None = setting(
        None, "ImageNet ResNet-18 file for the pose encoder.", flag=True, none="random weights", path=True
    )


@dataclasses.dataclass
class SupervisedConfig(TrainConfig):
    """Everything a supervised NYU run depends on; saved with the run."""

    preset: str = setting("nyu-resnet50", "The preset this config started from.")
    net: str = setting("nyu-resnet50", "Depth net (`depthcli models` lists them).", flag=True, architecture=True)
    size: tuple[int, int] = setting(
        (288, 224), "Training crop and evaluation input WxH.", flag=True, parse=parse_size, rule=NET_SIZE
    )
    cache_size: tuple[int, int] = setting(
        (320, 240), "Images are resized to this when data is a raw NYU root.", rule=AT_LEAST_ONE
    )
    min_depth: float = setting(0.1, "Depth (m) of the largest disparity.", rule=MIN_DEPTH)
    max_depth: float = setting(10.0, "Depth (m) of the smallest disparity.", rule=POSITIVE)
    label_fraction: float = setting(
        1.0,
        "Share of the labelled training images used, in (0, 1].",
        flag=True,
        rule=Rule(low=0, low_open=True, high=1),
    )
    augment: bool = setting(True, "Rotation, crop, flip and colour augmentation.", flag=True)
    data: str = setting("", "NYU cache (.h5) or NYU root (cached into the run directory).", flag=True, path=True)
    dataset: str = setting("nyu", "Dataset of the training data (nyu).", flag=True)
    val_data: str | None = setting(
        None, "NYU cache whose test split is scored after every epoch.", flag=True, none="no validation", path=True
    )
    init: str | None = setting(
        None,
        "Depth checkpoint the net starts from (fine-tuning; fresh optimizer).",
        flag=True,
        none="random weights",
        path=True,
    )
    encoder_init: str | None = setting(
        None,
        "Encoder checkpoint (e.g. from `depthcli pretrain`) or ImageNet file (torchvision ResNet).",
        flag=True,
        none="random weights",
        path=True,
    )


@dataclasses.dataclass
class PretrainConfig(TrainConfig):
    """Everything a contrastive pretraining run (GrMC, MoCo v2) depends on; saved with the run."""

    preset: str = setting("grmc", "The preset this config started from.")
    encoder: str = setting("resnet50", "Encoder: resnet50, resnet18, hrnet18 or hrnet9.", flag=True, architecture=True)
    key: Literal["gradient", "rgb"] = setting(
        "gradient", "Key view: gradient (GrMC) or rgb (plain MoCo v2).", flag=True
    )
    dim: int = setting(128, "Embedding size of the MLP head.", flag=True, rule=AT_LEAST_ONE, architecture=True)
    queue: int = setting(
        4096,
        "Negatives in the queue; a multiple of the global batch size.",
        flag=True,
        rule=AT_LEAST_ONE,
        architecture=True,
    )
    temperature: float = setting(0.2, "InfoNCE temperature.", flag=True, rule=POSITIVE)
    momentum: float = setting(0.999, "Key encoder momentum.", flag=True, rule=Rule(low=0, high=1, high_open=True))
    bn_splits: int = setting(2, "Single-process shuffle-BN groups (1: off).", rule=AT_LEAST_ONE)
    size: tuple[int, int] = setting((224, 224), "Crop size WxH.", flag=True, parse=parse_size, rule=AT_LEAST_ONE)
    data: str = setting("", "NYU/KITTI cache (.h5) or root, or a folder of images.", flag=True, path=True)
    dataset: str = setting("nyu", "What data is: nyu, kitti or folder.", flag=True)


@dataclasses.dataclass
class DepthModelConfig:
    """What a depth checkpoint's config says about its net, checked whenever one is loaded: the keys that
    rebuild it (`depthcli.nets.loading`), and the data it was trained and selected on (read by eval's
    selection checks). Other keys of the stored config are left as they are."""

    net: str = setting("", "Depth net.")
    size: tuple[int, int] = setting((640, 192), "Training size WxH.", rule=NET_SIZE)
    min_depth: float = setting(0.1, "Depth (m) of the largest disparity.", rule=MIN_DEPTH)
    max_depth: float = setting(100.0, "Depth (m) of the smallest disparity.", rule=POSITIVE)
    scales: tuple[int, ...] | None = setting(
        None, "Disparity scales the net outputs (None: its default).", rule=Rule(low=0, high=3)
    )
    pose_net: str | None = setting(None, "Pose net it was trained with.")
    data: str | None = setting(None, "Training data.")
    split: str | None = setting(None, "Training split.")
    val_data: str | None = setting(None, "Validation data.")
    init: str | None = setting(None, "Checkpoint the run started from.")
    imported_from: str | None = setting(None, "Release folder an imported checkpoint came from.")


@dataclasses.dataclass(frozen=True)
class RecipeSettings:
    """A recipe's name, config class and presets: what `depthcli.engine.runner.Recipe` runs with."""

    name: str
    config_class: type[TrainConfig]
    presets: Mapping[str, Mapping[str, Any]]
    default_preset: str | None = None  # None: a new run must name its preset
    command: str = "train"  # the depthcli command that runs it (what a stopped run's resume line names)

    def preset_values(self, preset: str) -> dict[str, Any]:
        if preset not in self.presets:
            raise DepthcliError(f"unknown preset {preset!r} for {self.name}; choose one of {', '.join(self.presets)}")
        return dict(self.presets[preset])

    def build_config(
        self, preset: str, config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Any:
        """The config of `preset`, then `config_file`, then `overrides` (`depthcli.config.build_config`)."""
        return build_config(self.config_class, self.preset_values(preset), config_file, overrides)


SELFSUP = RecipeSettings(
    "selfsup",
    SelfSupConfig,
    {
        "monodepth2": {"preset": "monodepth2", "net": "monodepth2", "scales": (0, 1, 2, 3)},
        "diffnet": {"preset": "diffnet", "net": "diffnet", "scales": (0, 1, 2, 3)},
        "radepth": {
            "preset": "radepth",
            "net": "radepth",
            "scales": (0,),
            "arbitrary_scale": True,
            "pose_jitter": False,
        },
    },
)
SUPERVISED = RecipeSettings(
    "supervised",
    SupervisedConfig,
    {"nyu-resnet50": {"preset": "nyu-resnet50", "net": "nyu-resnet50", "batch_size": 8, "lr": 1e-4, "epochs": 20}},
)
PRETRAIN = RecipeSettings(
    "pretrain",
    PretrainConfig,
    {
        # Adam instead of MoCo's SGD: 3e-4 is stable for both ResNet-50 and HRNet-18 at batch 32.
        "grmc": {"preset": "grmc", "key": "gradient", "batch_size": 32, "lr": 3e-4, "epochs": 200},
        "moco": {"preset": "moco", "key": "rgb", "batch_size": 32, "lr": 3e-4, "epochs": 200},
    },
    default_preset="grmc",
    command="pretrain",
)
RECIPE_SETTINGS: dict[str, RecipeSettings] = {settings.name: settings for settings in (SELFSUP, SUPERVISED, PRETRAIN)}
