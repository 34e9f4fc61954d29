"""Which evaluation set a command means: a dataset root (KITTI / NYU), an eval cache, or a GT .npz.

The one entry point the commands call; the sources themselves live in `ground_truth` and `eval_cache`.
"""

from __future__ import annotations

import os

from depthcli.data.standard_splits import read_split_argument
from depthcli.errors import DepthcliError
from depthcli.evaluation.eval_cache import cache_eval_set, is_cache
from depthcli.evaluation.ground_truth import (
    EvalSet,
    entry_name,
    kitti_eval_set,
    kitti_frames,
    no_ground_truth,
    npz_eval_set,
    nyu_eval_set,
)
from depthcli.evaluation.protocols import Protocol, get_protocol


def open_eval_set(
    data: str | os.PathLike | None,
    split: str | os.PathLike | None,
    protocol: str | Protocol,
    frames: str = "auto",
    gt_file: str | os.PathLike | None = None,
) -> EvalSet:
    """The evaluation set for `protocol` from a dataset root (KITTI / NYU), an eval cache, or a GT .npz."""
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    if gt_file is not None:
        images = None
        if data is not None and (protocol.dataset == "nyu" or is_cache(data)):
            images = open_eval_set(data, split, protocol, frames)
        elif data is not None:
            if split is None:
                raise DepthcliError("--gt-npz with a KITTI --data needs --split (the split the GT was exported from)")
            images = kitti_frames(data, split, frames)[0]
        elif split is not None:  # names and drives of the split, no images
            entries, label = read_split_argument(split)
            drives = tuple(sorted({entry.folder for entry in entries}))
            images = EvalSet([entry_name(entry) for entry in entries], label, no_ground_truth, drives=drives)
        return npz_eval_set(gt_file, images)
    if data is None:
        raise DepthcliError("give --data (dataset root or eval cache) or --gt-npz (monodepth2's gt_depths.npz)")
    if is_cache(data):
        return cache_eval_set(data, split, protocol)
    if protocol.dataset == "nyu":
        return nyu_eval_set(data, split)
    if split is None:
        raise DepthcliError(f"protocol {protocol.name} needs --split (e.g. eigen, or a test_files.txt)")
    return kitti_eval_set(data, split, protocol, frames)
