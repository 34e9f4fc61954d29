"""The CLI shell: version, one-line errors, size parsing shared by every command."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from depthcli import __version__
from depthcli.atomic import atomic_path, atomic_write_text
from depthcli.errors import DepthcliError
from depthcli.sizes import HALF_RESOLUTION_LADDER, RESOLUTION_LADDER, parse_image_size, parse_resolutions, parse_size


def test_version_via_module():
    out = subprocess.run([sys.executable, "-m", "depthcli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"depthcli {__version__}"


def test_parse_size_accepts_multiples_of_32():
    assert parse_size("640x192") == (640, 192)
    assert parse_size(" 1024X320 ") == (1024, 320)


@pytest.mark.parametrize("bad", ["640", "640x190", "0x192", "axb", "640x192x3", "-32x32"])
def test_parse_size_rejects(bad):
    with pytest.raises(DepthcliError, match="size"):
        parse_size(bad)


@pytest.mark.parametrize("width, height", [(32, 32), (64, 32), (640, 190), (96, 48)])
def test_one_size_rule_for_typed_sizes_and_net_inputs(width, height):
    """Multiples of 32, each side at least 64: what parse_size accepts is exactly what the nets run on."""
    from depthcli.nets import check_input_size

    with pytest.raises(DepthcliError, match="multiples of 32 and at least 64"):
        parse_size(f"{width}x{height}")
    with pytest.raises(DepthcliError, match="multiples of 32 and at least 64"):
        check_input_size(width, height)
    assert parse_size("64x64") == (64, 64)
    check_input_size(64, 64)
    assert parse_image_size(f"{width}x{height}") == (width, height)  # synthetic worlds render any size


def test_resolution_span_is_the_ladder():
    assert parse_resolutions("416x128..1024x320") == list(RESOLUTION_LADDER)
    assert parse_resolutions("1024x320..512x160") == [(512, 160), (640, 192), (832, 256), (1024, 320)]
    assert parse_resolutions("640x192,1024x320") == [(640, 192), (1024, 320)]
    with pytest.raises(DepthcliError, match="not on the ladder"):
        parse_resolutions("448x128..1024x320")
    with pytest.raises(DepthcliError, match="empty"):
        parse_resolutions(",")


def test_half_ladder_scales_the_ladder_to_320x96_in_valid_sizes():
    for size in HALF_RESOLUTION_LADDER:
        assert parse_size(f"{size[0]}x{size[1]}") == size  # multiples of 32: every net takes them
    # RA-Depth's width factors 416/640 .. 1024/640 around the 320-wide rung, within one 32-pixel step
    for (width, _), (full_width, _) in zip(HALF_RESOLUTION_LADDER, RESOLUTION_LADDER, strict=True):
        assert abs(width - full_width / 2) <= 16


def test_atomic_path_keeps_previous_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_unwritable_dir_is_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DepthcliError, match="cannot write"):
        atomic_write_text(blocker / "sub" / "out.txt", "data")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_path_new_file_gets_plain_open_mode(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "atomic.txt", "data")
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("data")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode) == expected


def test_atomic_path_keeps_mode_of_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
