"""Supervised depth training on NYU Depth v2 (fine-tuning a pretrained encoder with a fraction of labels).

Augmentation (training only, BTS's NYU recipe): random rotation by U(-2.5, 2.5) degrees about the image
centre (image bilinear, depth nearest, uncovered corners black / invalid depth 0), a random crop of
`size` (width, height), a horizontal flip with p 0.5, and with p 0.5 a colour change: gamma U(0.9, 1.1),
brightness U(0.75, 1.25), per-channel colour U(0.9, 1.1), clipped to [0, 1].

Loss: `depthcli.losses.supervised.SupervisedDepthLoss` (DenseDepth: 0.1 L1 + gradient + inverse-depth
SSIM) between the predicted metric depth (`disp_to_depth(sigmoid disparity, min_depth, max_depth)`)
and the ground truth, over valid pixels.

Label fraction: of the N training images, `labelled_subset(N, fraction, seed)` keeps the first
`max(1, ceil(fraction * N))` entries of `numpy.random.default_rng(seed).permutation(N)`, sorted
ascending. The subset is then repeated (in that order, the last repeat cut short) to the length of
the full train split, so that an epoch is the same number of steps for every fraction: `--epochs`
means the same training budget whether 1 % or 100 % of the labels are used.

Validation / evaluation: the NYU protocol (crop 45:471, 41:601 scaled to the GT size, depth in
(1e-3, 10) m, no median scaling) on the full test image resized to `size` for the network, the
prediction resized back to the GT size.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from depthcli.engine.distributed import DistContext
from depthcli.engine.runner import Recipe, RecipeData
from depthcli.engine.task import TrainingTask, coloured_disparity
from depthcli.engine.validation import protocol_metrics
from depthcli.errors import DepthcliError
from depthcli.geometry import disp_to_depth
from depthcli.losses.supervised import SupervisedDepthLoss
from depthcli.nets import build_depth_net
from depthcli.recipe_configs import SUPERVISED, SupervisedConfig

ROTATION_DEGREES = 2.5


def labelled_subset(count: int, fraction: float, seed: int) -> np.ndarray:
    """Indices of the labelled images (module docstring): deterministic in (count, fraction, seed)."""
    if not 0.0 < fraction <= 1.0:
        raise DepthcliError(f"--label-fraction {fraction} must be in (0, 1], e.g. 0.01, 0.1 or 1.0")
    keep = max(1, math.ceil(fraction * count))
    return np.sort(np.random.default_rng(seed).permutation(count)[:keep])


# ------------------------------------------------------------------------------------- augmentation
def rotate(image: np.ndarray, depth: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate image (bilinear) and depth (nearest) about the centre; uncovered pixels become 0."""
    height, width = depth.shape
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    rotated_image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, **border)
    rotated_depth = cv2.warpAffine(depth, matrix, (width, height), flags=cv2.INTER_NEAREST, **border)
    return rotated_image, rotated_depth


def colour_change(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """BTS's NYU colour augmentation on a float HxWx3 image in [0, 1]."""
    image = image ** rng.uniform(0.9, 1.1)
    image = image * rng.uniform(0.75, 1.25)
    image = image * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


class NyuSupervisedSamples(Dataset):
    """`{("color", 0, 0): (3,h,w), "depth_gt": (1,h,w), "index"}` from a CachedNyuDataset, augmented or not.

    Training samples are cropped to `size`; unaugmented samples keep the full cached frame (evaluation
    resizes the image for the network and scores at GT size).
    """

    def __init__(self, base: Dataset, indices: np.ndarray, size: tuple[int, int], augment: bool) -> None:
        self.base, self.indices, self.size, self.augment = base, np.asarray(indices), tuple(size), augment

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict:
        raw = self.base[int(self.indices[position])]
        image = raw[("color", 0, 0)].permute(1, 2, 0).numpy()
        depth = raw["depth_gt"][0].numpy()
        if self.augment:
            image, depth = self._augment(image, depth)
        return {
            ("color", 0, 0): torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float(),
            "depth_gt": torch.from_numpy(np.ascontiguousarray(depth))[None].float(),
            "index": position,
        }

    def _augment(self, image: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width, height = self.size
        if depth.shape[0] < height or depth.shape[1] < width:
            raise DepthcliError(
                f"NYU frames are {depth.shape[1]}x{depth.shape[0]}, smaller than the training size {width}x{height}; "
                "choose a smaller --size or rebuild the cache larger"
            )
        # Seeded from torch's RNG, which the trainer seeds per sample (reproducible, resumable).
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        image, depth = rotate(image, depth, rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
        top = int(rng.integers(0, depth.shape[0] - height + 1))
        left = int(rng.integers(0, depth.shape[1] - width + 1))
        image, depth = image[top : top + height, left : left + width], depth[top : top + height, left : left + width]
        if rng.random() < 0.5:
            image, depth = image[:, ::-1], depth[:, ::-1]
        if rng.random() < 0.5:
            image = colour_change(image, rng)
        return image, depth


# ---------------------------------------------------------------------------------------- the task
class SupervisedTask(TrainingTask):
    """A depth net trained on metric ground truth; validation scores the NYU protocol."""

    def __init__(self, config: SupervisedConfig) -> None:
        super().__init__()
        self.config = config
        self.networks["depth"] = build_depth_net(config.net)
        self.loss = SupervisedDepthLoss(min_depth=config.min_depth, max_depth=config.max_depth)

    def predict_depth(self, images: Tensor) -> Tensor:
        with self.net_autocast():
            disp = self.networks["depth"](images)[("disp", 0)]
        return disp_to_depth(disp.float(), self.config.min_depth, self.config.max_depth)[1]

    def forward(self, batch: dict) -> dict[str, Tensor]:
        return self.loss(self.predict_depth(batch[("color", 0, 0)]), batch["depth_gt"])

    def validate(self, loader, device: torch.device) -> dict[str, float]:
        return nyu_metrics(self, loader)

    def visuals(self, batch: dict) -> dict[str, Tensor]:
        """The input, the predicted depth and the ground truth, both as colour-mapped inverse depth on the
        prediction's colour scale (invalid ground truth is dark)."""
        images, gt = batch[("color", 0, 0)], batch["depth_gt"]
        predicted = 1.0 / self.predict_depth(images)
        measured = torch.where(gt > 0, 1.0 / gt.clamp(min=self.config.min_depth), torch.zeros_like(gt))
        return {
            "input": images,
            "prediction": coloured_disparity(predicted),
            "ground_truth": coloured_disparity(measured, like=predicted),
        }


def nyu_metrics(task: SupervisedTask, batches) -> dict[str, float]:
    """Mean NYU-protocol metrics of `task` over unaugmented batches (module docstring)."""
    return protocol_metrics(batches, task.predict_depth, task.config.size, "nyu", "depth", median_scaling=False)


def evaluate_nyu(task: SupervisedTask, cache: str | Path, split: str = "test", batch_size: int = 4) -> dict[str, float]:
    """NYU-protocol metrics of `task` on a cache split (the benchmark's final score)."""
    dataset = open_split(cache, split, task.config, augment=False)
    task.eval()
    device = next(task.parameters()).device
    batches = (
        {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        for batch in DataLoader(dataset, batch_size=batch_size)
    )
    return nyu_metrics(task, batches)


# ------------------------------------------------------------------------------------ running a job
def open_split(cache: str | Path, split: str, config: SupervisedConfig, augment: bool, indices=None) -> Dataset:
    from depthcli.data.datasets import CachedNyuDataset

    base = CachedNyuDataset(cache, split=split, augment=False)
    chosen = np.arange(len(base)) if indices is None else indices
    return NyuSupervisedSamples(base, chosen, config.size, augment)


def training_cache(config: SupervisedConfig, run_dir: Path) -> Path:
    """`config.data` as a cache: itself, or a raw NYU root cached at `cache_size` into the run dir."""
    data = Path(config.data)
    if config.dataset != "nyu":
        raise DepthcliError(f"--dataset {config.dataset!r}: supervised training supports nyu only")
    if not config.data or not data.exists():
        raise DepthcliError(f"--data {config.data!r} does not exist; give a NYU cache (.h5) or a NYU root")
    if data.is_file() and data.suffix.lower() in (".h5", ".hdf5"):
        return data
    from depthcli.data.cache import build_cache

    return build_cache("nyu", data, run_dir / "nyu_cache.h5", size=config.cache_size)


def training_set(config: SupervisedConfig, cache: Path) -> Dataset:
    """The labelled subset of the cache's train split, augmented, repeated to the split's length."""
    from depthcli.data.datasets import CachedNyuDataset

    count = len(CachedNyuDataset(cache, split="train"))
    indices = labelled_subset(count, config.label_fraction, config.seed)
    return open_split(cache, "train", config, augment=config.augment, indices=np.resize(indices, count))


def open_supervised_data(config: SupervisedConfig, run_dir: Path, ctx: DistContext) -> RecipeData:
    """The recipe's data: the labelled training subset and, with `val_data`, that cache's test split."""
    train_set = training_set(config, training_cache(config, run_dir))
    val_set = open_split(config.val_data, "test", config, augment=False) if config.val_data else None
    return RecipeData(config, train_set, val_set)


SUPERVISED_RECIPE = Recipe(SUPERVISED, SupervisedTask, open_supervised_data)
