"""Reading weight files from outside depthcli (official releases, ImageNet downloads) and loading them
under translated names, with one readable line for every way a file can be wrong.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from depthcli.errors import DepthcliError

_SHOW_KEYS = 5


def load_reference_file(path: Path) -> dict[str, Any]:
    """`torch.load(weights_only=True)` of a release file; anything unreadable -> DepthcliError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DepthcliError(f"{path} cannot be read as a state dict ({reason[:160]}); re-download it") from exc
    if not isinstance(state, dict):
        raise DepthcliError(f"{path} holds a {type(state).__name__}, not a state dict; give the release folder")
    return state


def load_mapped(module: nn.Module, mapped: dict[str, Tensor], unmatched: list[str], source: Path) -> None:
    """Strict load with one readable line for every way the names or shapes can disagree.

    BatchNorm's `num_batches_tracked` counters are optional: files saved by PyTorch < 0.4.1 lack them
    and they do not affect inference, so ours are kept.
    """
    own = module.state_dict()
    unexpected = unmatched + [key for key in mapped if key not in own]
    mapped = {**{key: own[key] for key in own if key.endswith(".num_batches_tracked")}, **mapped}
    missing = [key for key in own if key not in mapped]
    if unexpected or missing:
        parts = []
        if unexpected:
            parts.append(f"unmatched keys {unexpected[:_SHOW_KEYS]}" + (" ..." if len(unexpected) > _SHOW_KEYS else ""))
        if missing:
            parts.append(f"missing keys {missing[:_SHOW_KEYS]}" + (" ..." if len(missing) > _SHOW_KEYS else ""))
        raise DepthcliError(
            f"{source} does not follow the expected layout: {'; '.join(parts)}; is it the right project?"
        )
    wrong = [
        f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}"
        for key, value in mapped.items()
        if value.shape != own[key].shape
    ]
    if wrong:
        raise DepthcliError(f"{source} has tensors of the wrong shape: {wrong[:3]}; is it a different network size?")
    module.load_state_dict(mapped)
