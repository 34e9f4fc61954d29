"""Which torch device a job runs on: `auto`, `cpu`, `cuda` or `cuda:N`, checked against the devices present.

One rule for every command that takes `--device` (train, pretrain, predict): asking for a GPU that is not
there is one error line, not a CUDA traceback halfway through a job.
"""

from __future__ import annotations

import torch

from depthcli.errors import DepthcliError

DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N"


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; `cuda:N` picks a GPU; asking for a missing GPU is a user error, not a crash."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, colon, number = name.partition(":")
    if kind not in ("cpu", "cuda") or (colon and (kind != "cuda" or not number.isdigit())):
        raise DepthcliError(f"--device {name!r}: choose auto, cpu, cuda or cuda:N")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DepthcliError(f"--device {name}: no CUDA device is available; use --device cpu or auto")
        if number and int(number) >= count:
            raise DepthcliError(f"--device {name}: only {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return torch.device(name)
