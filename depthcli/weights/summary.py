"""What a depthcli checkpoint holds, in a few lines: net, size, depth range, parameters, where it came from.

`depthcli weights info` shows this summary (and `--json` prints it) instead of one row per tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from depthcli.checkpoints import TRAIN_STATE, TRAINED

# BatchNorm statistics are buffers, not parameters (as in `depthcli models` and the papers' counts).
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
# The name under which each checkpoint kind's "model" is reported.
_PRIMARY_NAMES = {"depth": "depth", "pretrain": "query", "encoder": "encoder"}


def parameter_count(state: dict[str, Any]) -> int:
    """Learned values in a state dict: every floating tensor except BatchNorm statistics."""
    return sum(
        value.numel()
        for key, value in state.items()
        if isinstance(value, Tensor) and value.is_floating_point() and not key.endswith(_BUFFER_SUFFIXES)
    )


def _source(payload: dict[str, Any]) -> str:
    config = payload.get("config", {})
    if config.get("imported_from"):
        return f"imported {config.get('net')} release {config['imported_from']}"
    step = _training_position(payload).get("step", payload.get("step"))
    if step is None:
        return "unknown"
    started = f", started from {config['init']}" if config.get("init") else ""
    resumable = "" if isinstance(payload.get(TRAIN_STATE), dict) else ", weights only"
    return f"training run, step {step}{started}{resumable}"


def _training_position(payload: dict[str, Any]) -> dict[str, Any]:
    """Step, epoch and best metric: from the training state, or a weights-only checkpoint's record of them."""
    for key in (TRAIN_STATE, TRAINED):
        if isinstance(payload.get(key), dict):
            return payload[key]
    return {}


def checkpoint_summary(payload: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """JSON-able summary of a loaded checkpoint (keys absent from the checkpoint are left out)."""
    config = payload.get("config", {})
    kind = payload.get("kind")
    networks = {}
    if isinstance(payload.get("model"), dict):
        networks[_PRIMARY_NAMES.get(kind, "model")] = parameter_count(payload["model"])
    for name, state in (payload.get("networks") or {}).items():
        if isinstance(state, dict):
            networks[name] = parameter_count(state)
    summary: dict[str, Any] = {"path": str(path), "kind": kind}
    for key in ("net", "pose_net", "encoder_name", "size"):
        value = config.get(key, payload.get(key))
        if value is not None:
            summary[key] = value
    if "min_depth" in config and "max_depth" in config:
        summary["depth_range"] = [config["min_depth"], config["max_depth"]]
    summary["parameters"] = networks
    summary["source"] = _source(payload)
    if isinstance(payload.get("metrics"), dict):
        summary["metrics"] = payload["metrics"]
    if _training_position(payload).get("best_metric") is not None:
        summary["best_validation"] = _training_position(payload)["best_metric"]
    if isinstance(payload.get("provenance"), dict):
        summary["provenance"] = {
            key: payload["provenance"][key]
            for key in ("command", "depthcli", "torch", "git_commit", "time_utc")
            if key in payload["provenance"]
        }
    return summary
