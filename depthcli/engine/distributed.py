"""Process-group setup for `torchrun` launches: one process per device, rank 0 logs and saves.

Without torchrun's environment variables everything degrades to a single process (world size 1) and
no process group is created, so the trainer has one code path. This module is the one place that reads
the process rank: everything else is handed the `DistContext` that `session` (or `setup`) returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist

from depthcli.devices import resolve_device
from depthcli.errors import DepthcliError


@dataclasses.dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str | None = None) -> DistContext:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA) or run single-process.

    `device` is "auto" (CUDA when available; also None), "cpu", "cuda" or, single-process, "cuda:N"
    (`depthcli.devices.resolve_device`: a device that is not there is one error line). Under torchrun
    each process takes the GPU of its local rank.
    """
    requested = resolve_device(device or "auto")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        if requested.type == "cuda" and requested.index is not None:
            torch.cuda.set_device(requested)  # what the nets' and losses' own CUDA tensors default to
        return DistContext(0, 1, 0, requested)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = requested.type == "cuda"
    if use_cuda and requested.index is not None:
        raise DepthcliError(
            f"--device {device}: under torchrun each process uses the GPU of its local rank; give --device cuda"
        )
    if use_cuda:
        torch.cuda.set_device(local_rank)
        run_device = torch.device("cuda", local_rank)
    else:
        run_device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank, world_size, local_rank, run_device)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of a (detached) tensor over ranks; identity for a single process."""
    if not ctx.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / ctx.world_size


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: str | None = None) -> Iterator[DistContext]:
    """`setup` on entry and `teardown` on exit: the process group of one job."""
    ctx = setup(device)
    try:
        yield ctx
    finally:
        teardown(ctx)


def gather(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """All processes' `tensor` concatenated in rank order (the tensor itself in a single process)."""
    if not ctx.enabled:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def broadcast_from_main(tensor: torch.Tensor, ctx: DistContext) -> None:
    """Overwrite `tensor` in place with rank 0's (nothing to do in a single process)."""
    if ctx.enabled:
        dist.broadcast(tensor, src=0)
