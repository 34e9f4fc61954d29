"""depthcli.paths and depthcli.locks: input/output checks, outputs that name an input, globs over symlink
loops (the same rule for `predict 'a/**/*.png'` and `predict a --recursive`), one writer per output."""

from __future__ import annotations

import os

import pytest

from depthcli.atomic import atomic_write_text
from depthcli.errors import DepthcliError
from depthcli.locks import exclusive_lock, lock_path_for
from depthcli.paths import check_input_file, check_output_file, glob_paths, refuse_output_overwriting_inputs
from depthcli.predict import plan_inputs


def test_input_file_kinds_are_named(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    assert check_input_file(tmp_path / "f.txt", "split file") == tmp_path / "f.txt"
    cases = {
        tmp_path / "none": "split file .*none does not exist; use another",
        tmp_path: "is a folder, not a regular file",
        tmp_path / "pipe": "is a named pipe, not a regular file",
        "/dev/null": "/dev/null is a device, not a regular file",
    }
    for path, message in cases.items():
        with pytest.raises(DepthcliError, match=message):
            check_input_file(path, "split file", "use another")


def test_atomic_writes_refuse_to_replace_a_pipe_or_a_folder(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DepthcliError, match="pipe.*is a named pipe"):
        atomic_write_text(tmp_path / "pipe", "data")
    assert (tmp_path / "pipe").exists() and not (tmp_path / "pipe").is_file()
    with pytest.raises(DepthcliError, match="is a folder"):
        check_output_file(tmp_path, "--out")
    assert check_output_file(tmp_path / "new.json") == tmp_path / "new.json"


def test_output_naming_an_input_is_refused_under_any_name(tmp_path, monkeypatch):
    split = tmp_path / "data" / "split.txt"
    split.parent.mkdir()
    split.write_text("a")
    (tmp_path / "link.txt").symlink_to(split)
    os.link(split, tmp_path / "hard.txt")
    monkeypatch.chdir(tmp_path)
    for output in (split, "data/split.txt", tmp_path / "data" / ".." / "data" / "split.txt", "link.txt", "hard.txt"):
        with pytest.raises(DepthcliError, match=f"--out {output} is the same file as --split {split}"):
            refuse_output_overwriting_inputs([("--out", output)], [("--root", tmp_path), ("--split", split)])
    # a new file, an unrelated file, and absent paths pass
    (tmp_path / "other.txt").write_text("b")
    refuse_output_overwriting_inputs(
        [("--out", tmp_path / "new.h5"), ("--out", tmp_path / "other.txt"), ("--json", None)],
        [("--split", split), ("--root", None), ("--split", tmp_path / "missing.txt")],
    )


@pytest.fixture
def looped_tree(tmp_path):
    """a.png, sub/b.png, sub/.hidden.png, .dot/c.png, and two links from sub back to the root (a loop that a
    walker following links could take 2**depth ways)."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / ".dot").mkdir()
    for name in ("a.png", "sub/b.png", "sub/.hidden.png", ".dot/c.png"):
        (root / name).write_bytes(b"png")
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)
    (root / "sub" / "again").symlink_to(root, target_is_directory=True)
    (root / "sub" / "linked.png").symlink_to(root / "a.png")  # a symlinked file is still an input
    return root


def test_glob_over_a_symlink_loop_ends_and_skips_hidden_names(looped_tree):
    root = looped_tree
    assert glob_paths(f"{root}/**/*.png") == [root / "a.png", root / "sub" / "b.png", root / "sub" / "linked.png"]
    assert glob_paths(f"{root}/**/.*.png") == [root / "sub" / ".hidden.png"]  # a spelled-out dot shows them
    assert glob_paths(f"{root}/s?b/*.png") == [root / "sub" / "b.png", root / "sub" / "linked.png"]
    with pytest.raises(DepthcliError, match="not a valid glob"):
        glob_paths(f"{root}/a**b/*.png")


def test_predict_glob_and_recursive_follow_the_same_rule(looped_tree):
    by_glob, _ = plan_inputs([f"{looped_tree}/**/*.png"])
    by_folder, _ = plan_inputs([looped_tree], recursive=True)
    names = ["a.png", "sub/b.png", "sub/linked.png"]
    assert sorted(str(frame.source.relative_to(looped_tree)) for frame in by_glob) == names
    assert sorted(str(frame.source.relative_to(looped_tree)) for frame in by_folder) == names


def test_lock_refuses_a_second_holder_and_is_gone_after_release(tmp_path):
    out = tmp_path / "cache.h5"
    with exclusive_lock(out, "cache build") as lock:
        assert lock == lock_path_for(out) == tmp_path / "cache.h5.lock"
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
        second_holder = rf"cache.h5 is being written by another cache build \(pid {os.getpid()} on "
        with pytest.raises(DepthcliError, match=second_holder):
            with exclusive_lock(out, "cache build"):
                pass
    assert not lock_path_for(out).exists()
    lock_path_for(out).write_text("pid 1 on a host that died\n")  # left by a killed holder: not a lock
    with exclusive_lock(out, "cache build"):
        pass
    assert not lock_path_for(out).exists()
