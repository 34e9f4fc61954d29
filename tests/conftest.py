"""Shared fixtures: where the real data samples live (../shared/data beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    override = os.environ.get("DEPTHCLI_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def kitti_mini() -> Path:
    """Ten real KITTI raw frames (1242x375) with calibration and velodyne scans."""
    root = _shared_data_dir() / "kitti_raw_mini"
    if not root.is_dir():
        pytest.fail(f"real KITTI sample missing at {root}; set DEPTHCLI_SHARED_DATA")
    return root


@pytest.fixture(scope="session")
def nyu_real_sample() -> Path:
    """One real NYU frame (224x224 rgb.png + dense depth.npy in metres)."""
    root = _shared_data_dir() / "nyu_real_sample"
    if not root.is_dir():
        pytest.fail(f"real NYU sample missing at {root}; set DEPTHCLI_SHARED_DATA")
    return root
