"""Checkpoints: one atomically written `torch.save` dict, loaded with `weights_only=True`.

Layout (docs/formats.md): `{"format": "depthcli", "version": 1, "kind": ..., "config": {...},
"provenance": {...}, "model": state_dict, ...}`. Everything inside is tensors and plain Python values so
that loading never unpickles code; every way a file can be wrong becomes one DepthcliError line naming
the file. A training checkpoint also holds `train_state` (what `--resume` needs); a weights-only one
(`weights_only`) holds instead `trained`, where in the run it was taken.

This is the file format only, on the package's ground floor so that every layer may read and write
checkpoints; rebuilding a network from one is `depthcli.nets.loading`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from depthcli.atomic import atomic_path
from depthcli.errors import DepthcliError
from depthcli.provenance import provenance

FORMAT = "depthcli"
VERSION = 1
TRAIN_STATE = "train_state"  # optimizer, scheduler, scaler, RNG states and loop position: what --resume needs
TRAINED = "trained"  # weights-only checkpoints: the step, epoch and best metric they were taken at


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` (which must name its "kind" and hold a plain-dict "config") atomically.

    A payload without "provenance" gets this command's (`depthcli.provenance`). A failure mid-write
    (disk full, interrupt) leaves the previous file at `path` untouched.
    """
    if "kind" not in payload or not isinstance(payload.get("config"), dict):
        raise ValueError("checkpoint payload needs a 'kind' and a plain-dict 'config'")
    path = Path(path)
    full = {"format": FORMAT, "version": VERSION, **payload}
    if "provenance" not in full:
        full["provenance"] = provenance()
    with atomic_path(path) as tmp:
        torch.save(full, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, expected_kind: str | None = None) -> dict[str, Any]:
    """Load and validate a depthcli checkpoint; any bad file becomes a one-line DepthcliError."""
    path = Path(path)
    if not path.is_file():
        raise DepthcliError(f"checkpoint {path} does not exist (or is not a file); check the path")
    try:
        with warnings.catch_warnings():  # torch warns about a raw pickle's protocol before refusing it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # foreign or damaged bytes surface as many types (IndexError, UnpicklingError, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DepthcliError(
            f"checkpoint {path} cannot be read ({reason[:160]}); it is truncated, corrupted or not a "
            "depthcli checkpoint"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DepthcliError(
            f"checkpoint {path} is not a depthcli checkpoint (no format marker); give a file written by depthcli"
        )
    if payload.get("version") != VERSION:
        raise DepthcliError(
            f"checkpoint {path} has format version {payload.get('version')!r}, this depthcli reads version "
            f"{VERSION}; use a matching depthcli release"
        )
    if expected_kind is not None and payload.get("kind") != expected_kind:
        raise DepthcliError(
            f"checkpoint {path} holds a {payload.get('kind')!r} model, expected {expected_kind!r}; "
            "give the right checkpoint"
        )
    if not isinstance(payload.get("config"), dict):
        raise DepthcliError(f"checkpoint {path} has no config; it was not written by depthcli")
    return payload


def load_state(module: nn.Module, state: dict, path: str | os.PathLike, what: str) -> None:
    """`module.load_state_dict(state)`; a mismatch is one DepthcliError line naming the file and `what`."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DepthcliError(f"checkpoint {path} does not fit the {what}: {first[:200]}") from exc


def weights_only(payload: dict[str, Any], *, keep_networks: bool = True) -> dict[str, Any]:
    """`payload` without its training state (optimizer, scheduler, RNG): what eval, predict and `--init` need.

    `keep_networks=False` also drops the task's other networks (the pose net), leaving the model alone.
    The step, epoch and best metric the state held stay, under TRAINED.
    """
    slim = {key: value for key, value in payload.items() if key not in (TRAIN_STATE, "format", "version")}
    state = payload.get(TRAIN_STATE)
    if isinstance(state, dict):
        slim[TRAINED] = {key: state[key] for key in ("step", "epoch", "best_metric") if key in state}
    if not keep_networks:
        slim.pop("networks", None)
    return slim


def slim_checkpoint(source: str | os.PathLike, out: str | os.PathLike, *, depth_only: bool = False) -> list[str]:
    """Write `source` weights-only (`weights_only`) to `out`; returns what was left out (`train_state`,
    `networks.pose`, ...). `depth_only` keeps the depth net alone."""
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise DepthcliError(
            f"--out {out} is the checkpoint itself; write the slim copy elsewhere (the original keeps what "
            "--resume needs)"
        )
    payload = load_checkpoint(source)
    if depth_only and payload["kind"] != "depth":
        raise DepthcliError(f"--depth-only: checkpoint {source} holds a {payload['kind']!r} model, not a depth net")
    slim = weights_only(payload, keep_networks=not depth_only)
    dropped = [TRAIN_STATE] if TRAIN_STATE in payload else []
    dropped += [f"networks.{name}" for name in payload.get("networks", {}) if "networks" not in slim]
    save_checkpoint(out, slim)
    return dropped
