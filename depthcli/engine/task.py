"""What a training task provides to the loop (`depthcli.engine.trainer`): networks, losses, validation.

The loop/task split: the task holds the science of one recipe (its networks and the losses of one
batch), the loop everything that is not science (optimizer, schedule, data order, checkpoints, logs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from depthcli.engine.distributed import SINGLE_PROCESS
from depthcli.engine.seeding import seed_everything
from depthcli.visualize import colorize_in_range, disparity_range
from depthcli.weights.initialise import initialise


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
        self.dist = SINGLE_PROCESS  # the job's processes (set by the loop; for tasks that talk across them)

    @classmethod
    def from_config(cls, config: Any) -> TrainingTask:
        """The task a run starts from: every RNG seeded with `config.seed`, then `cls(config)`, then the
        weights `config` names (`init`, `encoder_init`, `pose_encoder_init`: depthcli.weights.initialise). Built
        this way again, its networks hold the run's exact initial weights (the "untrained" reference of
        demo and benchmark)."""
        seed_everything(config.seed)
        task = cls(config)
        initialise(task, config)
        return task

    def batch_size_of(self, batch: dict) -> int:
        return int(batch["index"].shape[0]) if "index" in batch else int(next(iter(batch.values())).shape[0])

    def validate(self, loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Metrics on held-out data (called in eval mode under no_grad); empty when there is no GT."""
        return {}

    def visuals(self, batch: dict) -> dict[str, Tensor]:
        """Pictures of `batch` for TensorBoard, by name: (B,3,H,W) or (B,1,H,W) floats in [0, 1].

        Called every `log_images_every` steps on the batch just trained on, in eval mode under no_grad,
        with every RNG restored afterwards; {} shows nothing.
        """
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


def coloured_disparity(disp: Tensor, like: Tensor | None = None) -> Tensor:
    """(B,1,H,W) disparities -> (B,3,H,W) colour-mapped pictures in [0, 1], each sample ranged as
    `depthcli.visualize.colorize_disparity` ranges it, or as the same sample of `like` is (so that a
    prediction and its ground truth share one colour scale; values below the range are the darkest)."""
    pictures = []
    for index, values in enumerate(disp[:, 0].detach().float().cpu().numpy()):
        reference = values if like is None else like[index, 0].detach().float().cpu().numpy()
        pictures.append(colorize_in_range(values, *disparity_range(reference)))
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float() / 255.0
