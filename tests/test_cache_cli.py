"""`depthcli cache build|info|verify` end to end, and every bad input as one line + exit 2, no traceback."""

from __future__ import annotations

import json
import re
import sys

import pytest
from typer.testing import CliRunner

from depthcli.cli.app import app, main

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


def _run_main(monkeypatch, capsys, *args):
    """Run the real entry point (what the console script runs) and return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_build_info_verify_round_trip(kitti_mini, tmp_path):
    runner = CliRunner()
    out = tmp_path / "train.h5"
    args = ["cache", "build", "--dataset", "kitti", "--root", kitti_mini, "--out", out, "--size", "320x96"]
    result = runner.invoke(app, [str(a) for a in args + ["--split", kitti_mini / "eval_files.txt"]])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "skipped 2 split entr(ies)" in result.output
    info = runner.invoke(app, ["cache", "info", str(out)])
    assert info.exit_code == 0
    described = json.loads(info.output)
    assert (described["size"], described["samples"], described["frames"], described["complete"]) == (
        "320x96",
        8,
        10,
        True,
    )
    verified = runner.invoke(app, ["cache", "verify", str(out)])
    assert verified.exit_code == 0 and "OK" in verified.output
    # Cut the file: verify exits 1 and names it.
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[:-100_000])
    verified = runner.invoke(app, ["cache", "verify", str(cut)])
    assert verified.exit_code == 1 and "cut.h5" in verified.output and "problem" in verified.output


def _break(kind, root, tmp_path):
    """Make the linked KITTI copy `root` bad in one way; returns the extra CLI args and the expected text."""
    date = root / "2011_09_26"
    frames = root / DRIVE / "image_02" / "data"
    scans = root / DRIVE / "velodyne_points" / "data"
    eval_split = ["--split", root / "eval_files.txt"]
    if kind == "missing calib key":
        text = (date / "calib_cam_to_cam.txt").read_text()
        (date / "calib_cam_to_cam.txt").unlink()
        (date / "calib_cam_to_cam.txt").write_text(
            "\n".join(line for line in text.splitlines() if "P_rect_02" not in line)
        )
        return eval_split, "no key 'P_rect_02'"
    if kind == "truncated png":
        data = (frames / "0000000003.png").read_bytes()
        (frames / "0000000003.png").unlink()
        (frames / "0000000003.png").write_bytes(data[: len(data) // 2])
        return eval_split, "0000000003.png is truncated"
    if kind == "corrupt png":
        (frames / "0000000004.png").unlink()
        (frames / "0000000004.png").write_bytes(b"\x89PNG garbage IEND")
        return eval_split, "0000000004.png is corrupt"
    if kind == "velodyne size":
        data = (scans / "0000000002.bin").read_bytes()
        (scans / "0000000002.bin").unlink()
        (scans / "0000000002.bin").write_bytes(data[:-4])
        return eval_split, "0000000002.bin is .* not a multiple of 16"
    if kind == "split to missing frame":
        (tmp_path / "split.txt").write_text(f"{DRIVE} 1 l\n{DRIVE} 77 l\n")
        return ["--split", tmp_path / "split.txt"], "line 2 points at missing frame .*0000000077.png"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["missing calib key", "truncated png", "corrupt png", "velodyne size", "split to missing frame"]
)
def test_bad_kitti_data_is_one_line_exit_2(kind, kitti_mini_links, tmp_path, monkeypatch, capsys):
    root = kitti_mini_links
    extra, expected = _break(kind, root, tmp_path)
    code, _, err = _run_main(
        monkeypatch, capsys, "cache", "build", "--dataset", "kitti", "--root", root, "--out", tmp_path / "o.h5", *extra
    )
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(expected, err), err
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--dataset", "kitti", "--root", "{tmp}/nowhere"], "{tmp}/nowhere does not exist"),
        (["--dataset", "nyu", "--root", "{tmp}/nowhere"], "{tmp}/nowhere does not exist"),
        (["--dataset", "kitti", "--root", "{tmp}"], "{tmp} is not a KITTI raw layout"),
        (["--dataset", "nyu", "--root", "{tmp}"], "{tmp} is not a NYU layout"),
        (["--dataset", "kitti", "--root", "{kitti}", "--size", "640x190"], "'640x190'.*multiples of 32"),
        (["--dataset", "kitti", "--root", "{kitti}", "--size", "big"], "'big' is not of the form"),
        (["--dataset", "cityscapes", "--root", "{kitti}"], "'cityscapes' is not one of kitti, nyu"),
        (["--dataset", "kitti", "--root", "{kitti}", "--ext", "bmp"], "'bmp' is not one of png, jpg"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(args, expected, kitti_mini, tmp_path, monkeypatch, capsys):
    (tmp_path / "stray.txt").write_text("not a dataset")
    fill = lambda text: text.format(tmp=tmp_path, kitti=kitti_mini)  # noqa: E731
    code, _, err = _run_main(monkeypatch, capsys, "cache", "build", "--out", tmp_path / "o.h5", *map(fill, args))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(fill(expected), err), err


def test_unwritable_output_directory(kitti_mini, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a directory should be")
    out = blocker / "sub" / "cache.h5"
    code, _, err = _run_main(
        monkeypatch, capsys, "cache", "build", "--dataset", "kitti", "--root", kitti_mini, "--out", out,
        "--split", kitti_mini / "train_files.txt", "--size", "64x64",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(blocker / "sub") in err and "writable" in err


def test_info_and_verify_on_missing_or_foreign_files(tmp_path, monkeypatch, capsys):
    code, _, err = _run_main(monkeypatch, capsys, "cache", "info", tmp_path / "none.h5")
    assert code == 2 and "none.h5 does not exist" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "text.h5").write_text("plain text")
    code, _, err = _run_main(monkeypatch, capsys, "cache", "verify", tmp_path / "text.h5")
    assert code == 1 and "text.h5" in err and "Traceback" not in err
