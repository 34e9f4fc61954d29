"""Two-process DistributedDataParallel training on CPU (gloo), as `torchrun --nproc-per-node 2` runs it."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
from test_train_selfsup import SIZE, SlidingTexture

from depthcli.checkpoints import load_checkpoint
from depthcli.engine.selfsup import SelfSupTask
from depthcli.engine.trainer import train
from depthcli.recipe_configs import SELFSUP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, run_dir: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    config = SELFSUP.build_config(
        "diffnet",
        overrides={
            "size": SIZE,
            "scales": (0,),
            "batch_size": 1,
            "max_steps": 2,
            "num_workers": 0,
            "save_every": 0,
            "log_every": 1,
        },
    )
    torch.manual_seed(rank)  # different inits on purpose: DDP must broadcast rank 0's weights
    task = SelfSupTask(config)
    result = train(task, SlidingTexture(count=4), config, run_dir, progress=False, device="cpu")
    state = {"parameters": dict(task.named_parameters()), "all": task.state_dict()}
    torch.save(
        {part: {k: v.detach().clone() for k, v in values.items()} for part, values in state.items()},
        f"{run_dir}/rank{rank}.pt",
    )
    assert result.steps == 2


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # gradients are averaged, so parameters agree; BatchNorm running stats stay per rank (as in any DDP run)
    assert rank0["parameters"].keys() == rank1["parameters"].keys()
    for name, value in rank0["parameters"].items():
        assert torch.equal(value, rank1["parameters"][name]), name
    saved = load_checkpoint(tmp_path / "last.ckpt", expected_kind="depth")
    assert saved["train_state"]["step"] == 2
    for name, value in saved["model"].items():
        assert torch.equal(value, rank0["all"][f"networks.depth.{name}"]), name
