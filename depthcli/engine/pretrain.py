"""Contrastive encoder pretraining: GrMC (gradient-field key) on MoCo v2, and plain MoCo v2 (`key="rgb"`).

Per step (`PretrainTask.forward`):
1. momentum update of the key network from the query network (`t <- m t + (1 - m) q`, MoCo's order:
   before the keys are computed, so the keys come from the freshest key network);
2. query embeddings q of the augmented RGB views; key embeddings k of the key views (gradient field
   replicated to 3 channels, or a second RGB view) through the key network, without gradients;
3. InfoNCE over `[q.k, q.queue] / T` with the positive at index 0;
4. the keys enter the queue (K a multiple of the global batch size).
An embedding is: encoder -> global average pool -> 2-layer MLP head (Linear, ReLU, Linear to `dim`)
-> L2 normalisation. ResNets pool their last feature map (as MoCo); HRNet-18 pools and concatenates
its four final branch outputs (1/4..1/32), because its last stage keeps all four branches and pooling
the 1/32 branch alone would leave the others' final fusion layers without any gradient.

Batch-norm leakage ("shuffle BN"): a query and its own key must not see the same batch statistics,
or the network can find its positive through them. Under torchrun/DDP the key images are gathered,
shuffled across processes, encoded, and un-shuffled (MoCo's shuffle BN). In a single process the same
is simulated with `bn_splits` groups: queries are encoded in `bn_splits` consecutive chunks (the
"per-GPU" batch-norm groups) and keys in `bn_splits` chunks of a random permutation of the batch.
`bn_splits=1` turns this off.

The optimiser is the shared trainer's Adam (not MoCo's SGD 0.03 + cosine); the defaults below are
chosen for it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthcli.checkpoints import save_checkpoint
from depthcli.config import config_to_dict
from depthcli.engine import distributed
from depthcli.engine.runner import Recipe, RecipeData
from depthcli.engine.task import TrainingTask
from depthcli.errors import DepthcliError
from depthcli.losses.contrastive import InfoNCELoss, MoCoQueue, momentum_update
from depthcli.nets import build_encoder
from depthcli.recipe_configs import PRETRAIN, PretrainConfig

ENCODER_CHECKPOINT = "encoder.ckpt"
# Which depth nets start from which pretrained encoder (for messages; load_encoder_init checks it).
DOWNSTREAM_NETS = {
    "hrnet18": "diffnet / radepth",
    "hrnet9": "diffnet-small / radepth-small",
    "resnet18": "monodepth2",
    "resnet50": "nyu-resnet50",
}


def check_config(config: PretrainConfig, world_size: int = 1) -> None:
    """Every value a user can get wrong, as one DepthcliError line each."""
    global_batch = config.batch_size * world_size
    if config.batch_size < 1 or config.queue < global_batch or config.queue % global_batch:
        raise DepthcliError(
            f"--queue {config.queue} is not a multiple of the batch size {global_batch}"
            + (f" ({config.batch_size} x {world_size} processes)" if world_size > 1 else "")
            + f"; use e.g. --queue {global_batch * max(1, config.queue // max(global_batch, 1))}"
        )
    if config.temperature <= 0:
        raise DepthcliError(f"--temperature {config.temperature} must be > 0 (MoCo v2 uses 0.2)")
    if not 0.0 <= config.momentum < 1.0:
        raise DepthcliError(f"--momentum {config.momentum} must be in [0, 1) (MoCo uses 0.999)")
    if config.bn_splits < 1 or config.batch_size % config.bn_splits or config.batch_size < 2 * config.bn_splits:
        raise DepthcliError(
            f"bn_splits {config.bn_splits} must divide the batch size {config.batch_size} into groups of at least "
            "2 images (batch-norm statistics); raise --batch-size or set bn_splits = 1 in a --config file"
        )
    if config.dim < 1:
        raise DepthcliError(f"--dim {config.dim} must be positive")


# ------------------------------------------------------------------------------------- networks
def pooled_features(encoder: nn.Module, features: list[Tensor]) -> Tensor:
    """Global-average-pooled encoder output (B, C): last map for ResNets, the 4 HRNet branches concatenated."""
    from depthcli.nets.hrnet import HRNetEncoder

    maps = features[1:] if isinstance(encoder, HRNetEncoder) else features[-1:]
    return torch.cat([F.adaptive_avg_pool2d(m, 1).flatten(1) for m in maps], dim=1)


def pooled_width(encoder: nn.Module) -> int:
    from depthcli.nets.hrnet import HRNetEncoder

    widths = encoder.num_ch_enc
    return sum(widths[1:]) if isinstance(encoder, HRNetEncoder) else widths[-1]


class EmbeddingNet(nn.Module):
    """Encoder + MoCo v2 MLP head: image (B,3,H,W) in [0,1] -> L2-normalised embedding (B, dim)."""

    def __init__(self, encoder_name: str, dim: int) -> None:
        super().__init__()
        self.encoder = build_encoder(encoder_name)
        width = pooled_width(self.encoder)
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, dim))

    def forward(self, images: Tensor) -> Tensor:
        return F.normalize(self.head(pooled_features(self.encoder, self.encoder(images))), dim=1)


# ---------------------------------------------------------------------------------------- the task
class PretrainTask(TrainingTask):
    """Query network (trained), key network (momentum copy), queue and InfoNCE (module docstring)."""

    checkpoint_kind = "pretrain"
    primary_network = "query"

    def __init__(self, config: PretrainConfig) -> None:
        super().__init__()
        self.config = config
        query = EmbeddingNet(config.encoder, config.dim)
        key = copy.deepcopy(query)
        for param in key.parameters():
            param.requires_grad_(False)
        self.networks["query"] = query
        self.networks["key"] = key
        self.networks["queue"] = MoCoQueue(config.dim, config.queue, seed=config.seed)
        self.loss = InfoNCELoss(config.temperature)

    def batch_size_of(self, batch: dict) -> int:
        return int(batch["index"].shape[0])

    def forward(self, batch: dict) -> dict[str, Tensor]:
        query_net, key_net, queue = self.networks["query"], self.networks["key"], self.networks["queue"]
        splits = self.config.bn_splits
        with self.net_autocast():
            q = torch.cat([query_net(chunk) for chunk in batch["query"].chunk(splits)]).float()
        with torch.no_grad():
            momentum_update(query_net, key_net, self.config.momentum)
            with self.net_autocast():
                k = _shuffled_keys(key_net, batch["key"], splits, self.dist).float()
        negatives = queue.queue.clone().detach()  # the enqueue below must not touch what backward needs
        loss = self.loss(q, k, negatives)
        with torch.no_grad():
            positive = (q * k).sum(1)
            top1 = (positive[:, None] > q @ negatives.t()).all(dim=1).float().mean()
            queue.enqueue(distributed.gather(k, self.dist))
        return {"loss": loss, "positive_similarity": positive.mean(), "top1": top1}

    def visuals(self, batch: dict) -> dict[str, Tensor]:
        """The two views of each image the contrastive loss pairs: the query (RGB) and its key."""
        return {"query": batch["query"], "key": batch["key"]}

    def checkpoint_payload(self) -> dict[str, Any]:
        return {**super().checkpoint_payload(), "encoder_name": self.config.encoder}

    def encoder_payload(self) -> dict[str, Any]:
        """The `--encoder-init` checkpoint: the query encoder's weights (kind "encoder")."""
        encoder = self.networks["query"].encoder
        return {
            "kind": "encoder",
            "encoder_name": self.config.encoder,
            "config": config_to_dict(self.config),
            "model": {name: value.detach().cpu() for name, value in encoder.state_dict().items()},
        }


@torch.no_grad()
def _shuffled_keys(key_net: nn.Module, images: Tensor, splits: int, ctx: distributed.DistContext) -> Tensor:
    """Key embeddings whose batch-norm groups differ from the queries' (shuffle BN; module docstring)."""
    everything = distributed.gather(images, ctx)
    permutation = torch.randperm(everything.shape[0], device=images.device)
    distributed.broadcast_from_main(permutation, ctx)  # every process must use rank 0's permutation
    mine = everything[permutation].chunk(ctx.world_size)[ctx.rank]
    encoded = torch.cat([key_net(chunk) for chunk in mine.chunk(splits)])
    gathered = distributed.gather(encoded, ctx)
    restored = torch.empty_like(gathered)
    restored[permutation] = gathered
    return restored.chunk(ctx.world_size)[ctx.rank]


# ------------------------------------------------------------------------------------ running a job
def open_pretrain_data(config: PretrainConfig, run_dir: Path, ctx: distributed.DistContext) -> RecipeData:
    """The recipe's data: views of the images `config.data` names, once the config fits the processes."""
    check_config(config, ctx.world_size)
    return RecipeData(config, build_pretrain_dataset(config))


def build_pretrain_dataset(config: PretrainConfig):
    from depthcli.data.pretrain_views import PretrainViews, open_image_source

    if not config.data:
        raise DepthcliError("--data is required: a cache file, a NYU/KITTI root or a folder of images")
    return PretrainViews(open_image_source(config.data, config.dataset), config.size, config.key)


def write_encoder_checkpoint(task: PretrainTask, run_dir: Path) -> dict[str, Path]:
    """After training: `run_dir/encoder.ckpt`, the query encoder for `--encoder-init`."""
    return {"encoder": save_checkpoint(run_dir / ENCODER_CHECKPOINT, task.encoder_payload())}


PRETRAIN_RECIPE = Recipe(PRETRAIN, PretrainTask, open_pretrain_data, finish=write_encoder_checkpoint)
