"""Where a run may start: empty directories only unless --resume/--overwrite, --resume auto, one run per
directory, and the temp files a killed save leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from depthcli.atomic import UNNAMED_WRITER_IDLE_S, atomic_write_text, leftover_temp_files
from depthcli.engine.run_dir import RunDirectory, resolve_start
from depthcli.errors import DepthcliError


def _a_run(path):
    """The files of a run that has saved (contents do not matter here)."""
    path.mkdir()
    for name, text in (
        ("last.ckpt", "L"),
        ("best.ckpt", "B"),
        ("metrics.jsonl", '{"step": 1}\n'),
        ("config.json", "{}"),
    ):
        (path / name).write_text(text)
    return path


def test_a_new_run_needs_an_empty_directory(tmp_path):
    run = _a_run(tmp_path / "run")
    with pytest.raises(
        DepthcliError, match=r"run directory .*run is not empty \(best.ckpt, config.json, last.ckpt"
    ) as info:
        resolve_start(run, False, False, "train")
    assert "depthcli train --resume --out" in str(info.value) and "--overwrite" in str(info.value)
    assert (run / "metrics.jsonl").read_text() == '{"step": 1}\n'  # nothing touched
    assert resolve_start(tmp_path / "fresh", False, False, "train") == (False, False)
    (tmp_path / "empty").mkdir()
    assert resolve_start(tmp_path / "empty", False, False, "train") == (False, False)
    assert resolve_start(run, False, True, "train") == (False, True)
    assert resolve_start(run, True, False, "train") == (True, False)


def test_overwrite_removes_the_previous_runs_files_but_not_others(tmp_path):
    run = _a_run(tmp_path / "run")
    (run / "train_cache.h5").write_text("cache")
    (run / "notes.txt").write_text("mine")
    (run / "step_0000200.ckpt").write_text("kept by --keep-last")
    (run / "epoch_00.ckpt").write_text("kept by --save-epochs")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents.1").write_text("curves")
    removed = RunDirectory(run).remove_previous_run()
    assert sorted(removed) == sorted(
        ["best.ckpt", "config.json", "epoch_00.ckpt", "last.ckpt", "metrics.jsonl", "step_0000200.ckpt", "tensorboard"]
    )
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt", "train_cache.h5"]


def test_resume_auto_resumes_a_saved_run_and_starts_one_that_never_saved(tmp_path):
    saved = _a_run(tmp_path / "saved")
    assert resolve_start(saved, "auto", False, "train") == (True, False)
    killed_early = tmp_path / "killed_early"  # a run killed before its first checkpoint
    killed_early.mkdir()
    (killed_early / "config.json").write_text("{}")
    (killed_early / "train_cache.h5").write_text("cache")
    assert resolve_start(killed_early, "auto", False, "train") == (False, True)
    assert resolve_start(tmp_path / "new", "auto", False, "train") == (False, True)
    (saved / "last.ckpt").unlink()  # results without last.ckpt are not thrown away silently
    with pytest.raises(DepthcliError, match=r"is not empty \(best.ckpt\)"):
        resolve_start(saved, "auto", False, "train")


@pytest.mark.parametrize(
    "resume, overwrite, pattern",
    [
        (True, True, "--resume continues the run in --out and --overwrite replaces it: give one of them"),
        (True, False, "--resume: no checkpoint"),
    ],
)
def test_contradictions_and_missing_checkpoints_are_one_line(tmp_path, resume, overwrite, pattern):
    with pytest.raises(DepthcliError, match=pattern):
        resolve_start(tmp_path / "none", resume, overwrite, "pretrain")


def test_out_that_is_a_file_or_under_one_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(DepthcliError, match="--out .*a_file is a file, not a run directory"):
        resolve_start(tmp_path / "a_file", False, False, "train")
    with pytest.raises(DepthcliError, match="cannot create the run directory .*a_file/run: Not a directory"):
        RunDirectory(tmp_path / "a_file" / "run").create()


def test_one_run_per_directory(tmp_path):
    files = RunDirectory(tmp_path / "run")
    with files.lock("depthcli train"):
        with pytest.raises(DepthcliError, match=r"last.ckpt is being written by another depthcli train \(pid"):
            with RunDirectory(tmp_path / "run").lock("depthcli train"):
                pass
        assert files.contents() == []  # the lock file is not a run's file
    with files.lock("depthcli train"):  # released
        pass


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_a_killed_save_are_removed_and_live_ones_kept(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = run / f".last.ckpt.{_dead_pid()}-abcd1234.tmp"
    live = run / f".last.ckpt.{os.getpid()}-abcd1234.tmp"
    old_unnamed, new_unnamed = run / ".best.ckpt.zyxw9876.tmp", run / ".best.ckpt.zyxw5432.tmp"
    foreign = run / f".notes.txt.{_dead_pid()}-abcd1234.tmp"  # not one of a run's files
    for path in (dead, live, old_unnamed, new_unnamed, foreign):
        path.write_bytes(b"half a checkpoint")
    stale = time.time() - UNNAMED_WRITER_IDLE_S - 5
    os.utime(old_unnamed, (stale, stale))
    assert RunDirectory(run).remove_leftover_temp_files() == [old_unnamed, dead]
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (live, new_unnamed, foreign))


def test_atomic_writes_name_their_writer(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(source, target):
        seen.append(os.path.basename(source))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_text(tmp_path / "config.json", "{}")
    assert seen[0].startswith(f".config.json.{os.getpid()}-") and seen[0].endswith(".tmp")
    assert leftover_temp_files(tmp_path, {"config.json"}.__contains__) == []
