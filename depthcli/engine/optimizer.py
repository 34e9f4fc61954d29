"""The training loop's optimizer: fused Adam, and a resumed run's optimizer state in its parameters' layout."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def build_adam(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam over `params`, fused on CPU and CUDA: one kernel over all parameters instead of ~10 per tensor
    (~1.8x the optimizer step on CPU)."""
    return torch.optim.Adam(list(params), lr=lr, fused=device.type in ("cpu", "cuda"))


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """`optimizer.load_state_dict(state)`, then each per-parameter tensor (Adam's moments) copied into its
    parameter's memory layout.

    The fused kernel pairs a parameter's elements with its moments' by memory position. A run saved
    channels-last and resumed without it (or the reverse) would otherwise load moments in the other layout,
    and every element would silently take another element's update.
    """
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        for param in group["params"]:
            per_param = optimizer.state.get(param, {})
            for key, value in per_param.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    per_param[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
