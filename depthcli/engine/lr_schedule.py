"""The learning-rate schedule of every recipe: linear warm-up, then one step decay (monodepth2's StepLR
expressed as a fraction of the run, so that it scales with `max_steps` / `epochs`)."""

from __future__ import annotations

import torch

from depthcli.recipe_configs import TrainConfig


def lr_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """LR multiplier at a step: linear warmup over `warmup_steps`, then x`lr_gamma` from `lr_decay_at`."""
    decay_step = max(1, round(cfg.lr_decay_at * total_steps))

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
        return warmup * (cfg.lr_gamma if step >= decay_step else 1.0)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
