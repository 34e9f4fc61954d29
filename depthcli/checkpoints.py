"""Checkpoints: one atomically written `torch.save` dict, loaded with `weights_only=True`.

Layout (docs/formats.md): `{"format": "depthcli", "version": 1, "kind": ..., "config": {...},
"model": state_dict, ...}`. Everything inside is tensors and plain Python values so that loading never
unpickles code; every way a file can be wrong becomes one DepthcliError line naming the file.

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

FORMAT = "depthcli"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` (which must name its "kind" and hold a plain-dict "config") atomically.

    A failure mid-write (disk full, interrupt) leaves the previous file at `path` untouched.
    """
    if "kind" not in payload or not isinstance(payload.get("config"), dict):
        raise ValueError("checkpoint payload needs a 'kind' and a plain-dict 'config'")
    path = Path(path)
    full = {"format": FORMAT, "version": VERSION, **payload}
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
