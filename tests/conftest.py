"""Shared fixtures: the real data samples (tests/data, or DEPTHCLI_SHARED_DATA) and synthetic worlds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    """tests/data in the checkout; DEPTHCLI_SHARED_DATA names another folder with the same samples."""
    override = os.environ.get("DEPTHCLI_SHARED_DATA")
    return Path(override) if override else REPO_ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def kitti_mini() -> Path:
    """Ten real KITTI raw frames (1242x375) with calibration and velodyne scans (see its README.md)."""
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


# Synthetic worlds (depthcli.synth), built once per test session for any test that needs exact depth.
SYNTHETIC_KITTI_SIZE = (416, 128)
SYNTHETIC_KITTI_FRAMES = 12
SYNTHETIC_NYU_SIZE = (160, 120)
SYNTHETIC_NYU_FRAMES = 8


@pytest.fixture(scope="session")
def synthetic_kitti(tmp_path_factory) -> Path:
    """A KITTI raw root: 1 drive x 12 frames at 416x128, calib, velodyne, depth_true/, split files."""
    from depthcli.synth import synth_kitti

    root = tmp_path_factory.mktemp("synthetic_kitti")
    synth_kitti(root, frames=SYNTHETIC_KITTI_FRAMES, drives=1, size=SYNTHETIC_KITTI_SIZE, seed=0)
    return root


@pytest.fixture(scope="session")
def synthetic_nyu(tmp_path_factory) -> Path:
    """A folder with nyu_depth_v2_labeled.mat (8 views at 160x120, exact depths) and splits.mat."""
    from depthcli.synth import synth_nyu

    root = tmp_path_factory.mktemp("synthetic_nyu")
    synth_nyu(root, frames=SYNTHETIC_NYU_FRAMES, size=SYNTHETIC_NYU_SIZE, seed=0)
    return root


@pytest.fixture
def kitti_mini_links(kitti_mini, tmp_path) -> Path:
    """The real KITTI sample as a tree of symlinks in tmp_path: tests break single files (unlink first)."""
    target = tmp_path / "raw"
    for path in kitti_mini.rglob("*"):
        if path.is_file():
            dest = target / path.relative_to(kitti_mini)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path)
    return target


@pytest.fixture(scope="session")
def official_releases(tmp_path_factory) -> dict[str, Path]:
    """Release folders of monodepth2, DIFFNet and RA-Depth (all four files) written from the official key
    lists of tests/fixtures/official; shared, so tests change copies (`official_release.linked_copy`)."""
    from official_release import PROJECTS, load_fixture, write_release

    root = tmp_path_factory.mktemp("official_releases")
    return {project: write_release(root / project, load_fixture(project)[0]) for project in PROJECTS}
