"""MoCo-style contrastive learning pieces (GrMC pretraining): InfoNCE, the key queue, momentum update.

The loss is stateless; the queue is state by nature, so it lives in its own small module whose
buffers travel with the checkpoint of the pretraining job.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depthcli.errors import DepthcliError


class InfoNCELoss(nn.Module):
    """Cross entropy over `[q.k, q.queue^T] / T` with the positive at index 0 (MoCo).

    `q` (B,D) and `k` (B,D) are L2-normalised embeddings of two views of the same images; `queue`
    (K,D) holds normalised keys of earlier batches (negatives). Gradients do not flow into `k` or
    `queue`: the key encoder is updated by momentum, not by backpropagation.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
        positive = (q * k.detach()).sum(dim=1, keepdim=True)
        negatives = q @ queue.detach().t()
        logits = torch.cat([positive, negatives], dim=1) / self.temperature
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, labels)


class MoCoQueue(nn.Module):
    """Ring buffer of the last `size` keys (size, dim); the newest batch overwrites the oldest.

    Starts filled with random unit vectors, as MoCo does. `size` must be a multiple of every batch
    size enqueued so that batches never straddle the wrap-around.
    """

    queue: torch.Tensor
    pointer: torch.Tensor

    def __init__(self, dim: int, size: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("queue", F.normalize(torch.randn(size, dim, generator=generator), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Store `keys` (B,dim) (detached) in place of the oldest B entries."""
        batch = keys.shape[0]
        if self.size % batch != 0:
            raise DepthcliError(
                f"MoCo queue size {self.size} is not a multiple of the batch size {batch}; choose a queue size "
                f"that is (e.g. {batch * max(1, self.size // batch)}) and drop the last incomplete batch"
            )
        start = int(self.pointer)
        self.queue[start : start + batch] = keys.detach().to(self.queue.dtype)
        self.pointer.fill_((start + batch) % self.size)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float = 0.999) -> None:
    """Move `target`'s parameters towards `online`'s: `t <- m * t + (1 - m) * o` (MoCo key encoder).

    Buffers (BatchNorm statistics) are not copied: the key encoder keeps its own, from its own forward
    passes, as in MoCo.
    """
    for online_param, target_param in zip(online.parameters(), target.parameters(), strict=True):
        target_param.mul_(m).add_(online_param.detach(), alpha=1 - m)
