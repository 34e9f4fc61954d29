"""Cache integrity under hostile conditions: two builds racing for one output (real processes), metadata
damage that format 2's checksum must see, every reader turning a damaged file into one line, and
property-based fuzzing of the reader (random bit flips and truncations: a clean DepthcliError naming
the file, or exactly the original data, or a difference that `cache verify` reports)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthcli.data.cache import build_cache
from depthcli.data.cache_file import cache_info, open_cache, verify_cache
from depthcli.data.datasets import CachedKittiDataset, CachedNyuDataset
from depthcli.data.pretrain_views import open_image_source
from depthcli.errors import DepthcliError
from depthcli.evaluation.eval_cache import cache_eval_set
from depthcli.evaluation.protocols import get_protocol
from depthcli.locks import lock_path_for

FUZZ_EXAMPLES = 25  # per cache kind, a few seconds in all; the slow run below tries many more
FUZZ_EXAMPLES_SLOW = 600
FIRST_BYTES = 17_000  # HDF5 superblock, object headers, attributes and the small tables live here


@pytest.fixture(scope="module")
def splits(kitti_mini, tmp_path_factory):
    """Two small KITTI splits (train: frames 2-3 with neighbours; eval: one frame) and the folder."""
    folder = tmp_path_factory.mktemp("integrity")
    lines = (kitti_mini / "eval_files.txt").read_text().splitlines(keepends=True)
    (folder / "two.txt").write_text("".join(lines[2:4]))
    (folder / "one.txt").write_text(lines[5])
    return folder


@pytest.fixture(scope="module")
def caches(splits, kitti_mini, synthetic_nyu):
    """kind -> a small cache of that kind (KITTI training, KITTI full-size eval, NYU)."""
    return {
        "kitti-train": build_cache("kitti", kitti_mini, splits / "train.h5", split=splits / "two.txt", size=(64, 32)),
        "kitti-eval": build_cache("kitti", kitti_mini, splits / "eval.h5", split=splits / "one.txt"),
        "nyu": build_cache("nyu", synthetic_nyu, splits / "nyu.h5", size=(64, 32)),
    }


# ---- one build per output --------------------------------------------------------------------------

_HOLDING_BUILD = """
import pathlib, sys, time
from depthcli.data.cache import build_cache
root, out, split, ready, release = sys.argv[1:6]
def report(done, total):
    if done == 1:  # one entry written: the partial file and the lock exist; hold them until released
        pathlib.Path(ready).touch()
        while not pathlib.Path(release).exists():
            time.sleep(0.05)
build_cache("kitti", root, out, split=split, size=(64, 32), progress=report)
"""


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "depthcli", *map(str, args)], capture_output=True, text=True)


def test_second_build_to_the_same_output_refuses_and_a_killed_holder_frees_it(kitti_mini, splits, tmp_path):
    out = tmp_path / "cache.h5"
    build_cache("kitti", kitti_mini, out, split=splits / "one.txt", size=(64, 32))  # a good previous cache
    previous = hashlib.sha256(out.read_bytes()).hexdigest()
    script = tmp_path / "holding_build.py"
    script.write_text(textwrap.dedent(_HOLDING_BUILD))
    ready, release = tmp_path / "ready", tmp_path / "release"
    split = splits / "two.txt"
    holder = subprocess.Popen([sys.executable, str(script), kitti_mini, out, split, ready, release])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holding build did not start"
            time.sleep(0.05)
        args = ("cache", "build", "--dataset", "kitti", "--root", kitti_mini, "--split", split, "--out", out)
        second = _cli(*args, "--size", "64x64")
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert f"{out} is being written by another" in lines[0] and f"pid {holder.pid}" in lines[0]
        assert hashlib.sha256(out.read_bytes()).hexdigest() == previous, "the good cache must be untouched"
        assert (tmp_path / "cache.h5.partial").exists(), "the holder's partial file must survive the refusal"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert lock_path_for(out).exists(), "a killed build leaves its lock file, but not the lock"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == previous
    third = _cli(*args, "--size", "64x64")
    assert third.returncode == 0, third.stderr
    assert verify_cache(out) == [] and cache_info(out)["samples"] == 2
    assert not lock_path_for(out).exists() and not (tmp_path / "cache.h5.partial").exists()


def test_lock_is_released_after_a_failed_build(kitti_mini, tmp_path):
    """A build that fails (bad split line) must not keep the output locked for the next attempt."""
    bad = tmp_path / "bad.txt"
    bad.write_text("2011_09_26/2011_09_26_drive_0000_sync 77 l\n")
    out = tmp_path / "c.h5"
    with pytest.raises(DepthcliError, match="missing frame"):
        build_cache("kitti", kitti_mini, out, split=bad, size=(64, 32))
    assert not lock_path_for(out).exists()
    good = tmp_path / "good.txt"
    good.write_text((kitti_mini / "eval_files.txt").read_text().splitlines()[3] + "\n")
    assert build_cache("kitti", kitti_mini, out, split=good, size=(64, 32)) == out


# ---- metadata covered by the checksum ----------------------------------------------------------------


def _edit_table(path, name, value):
    with h5py.File(path, "r+") as handle:
        handle[name][0] = value


def _edit_attribute(path, owner, key, value):
    with h5py.File(path, "r+") as handle:
        (handle[owner] if owner else handle).attrs[key] = value


EDITS = {  # what a hand edit or a flipped bit could change while every pixel checksum stays right
    "frames/hw": ("kitti-train", lambda p: _edit_table(p, "frames/hw", [20, 30])),
    "frames/source": ("kitti-train", lambda p: _edit_table(p, "frames/source", "other/0000000001.png")),
    "samples/folder": ("kitti-train", lambda p: _edit_table(p, "samples/folder", "2011_09_26/elsewhere")),
    "samples/frame_index": ("kitti-train", lambda p: _edit_table(p, "samples/frame_index", 9)),
    "samples/K": ("kitti-train", lambda p: _edit_table(p, "samples/K", np.eye(4))),
    "samples/gt_hw": ("kitti-eval", lambda p: _edit_table(p, "samples/gt_hw", [300, 1000])),
    "offsets attribute": ("kitti-train", lambda p: _edit_attribute(p, "samples/frames", "offsets", [0, 1, -1])),
    "size attribute": ("kitti-train", lambda p: _edit_attribute(p, None, "size", "640x192")),
    "NYU K attribute": ("nyu", lambda p: _edit_attribute(p, None, "K", np.eye(4))),
    "NYU split": ("nyu", lambda p: _edit_table(p, "split/test", 0)),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_checksum_covers_every_table_and_attribute_a_reader_trusts(edit, caches, tmp_path):
    kind, apply = EDITS[edit]
    path = tmp_path / f"{kind}.h5"
    path.write_bytes(caches[kind].read_bytes())
    assert verify_cache(path) == []
    apply(path)
    problems = verify_cache(path)
    assert len(problems) == 1 and str(path) in problems[0] and "checksum" in problems[0], problems
    with pytest.raises(DepthcliError, match="do not match its checksum"):
        cache_info(path)


def _attributes_only(source, path):
    with h5py.File(source, "r") as good, h5py.File(path, "w") as bad:
        for key, value in good.attrs.items():
            bad.attrs[key] = value
    return path


READERS = {
    "info": cache_info,
    "kitti dataset": lambda p: CachedKittiDataset(p, frame_ids=(0,)),
    "nyu dataset": lambda p: CachedNyuDataset(p, split="all"),
    "eval": lambda p: cache_eval_set(p, None, get_protocol("kitti-eigen")),
    "pretrain": lambda p: open_image_source(p, "kitti"),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_attributes_without_datasets_are_one_line_in_every_reader(reader, caches, tmp_path):
    path = _attributes_only(caches["kitti-eval"], tmp_path / "attrs_only.h5")
    with pytest.raises(DepthcliError) as error:
        READERS[reader](path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert verify_cache(path) == [str(error.value)]


def test_hand_crafted_file_with_a_matching_checksum_still_fails_its_layout_check(caches, tmp_path):
    """A checksum recomputed over a malformed file (frames/hw beyond the stored images) is not enough."""
    from depthcli.data.cache_file import content_checksum

    path = tmp_path / "crafted.h5"
    path.write_bytes(caches["kitti-train"].read_bytes())
    with h5py.File(path, "r+") as handle:
        handle["frames/hw"][0] = [33, 64]  # the stored frames are 32 high
        handle.attrs["checksum"] = content_checksum(handle)
    with pytest.raises(DepthcliError, match=r"frames/hw holds values outside"):
        open_cache(path)


def test_version_1_cache_is_refused_with_a_rebuild_message(caches, tmp_path):
    path = tmp_path / "v1.h5"
    path.write_bytes(caches["kitti-train"].read_bytes())
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = 1
    with pytest.raises(DepthcliError, match=r"format version 1, from an older depthcli.*rebuild it"):
        CachedKittiDataset(path)


def test_damaged_entry_read_during_training_is_one_line(caches, tmp_path):
    """The tables check out when the dataset is made; a file cut or garbled later names the file (and entry)."""
    path = tmp_path / "eval.h5"
    data = bytearray(caches["kitti-eval"].read_bytes())
    path.write_bytes(data)
    dataset = CachedKittiDataset(path, frame_ids=(0,))  # checked, and no handle left open
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DepthcliError, match=r"cannot be opened any more.*cache verify"):
        dataset[0]
    with h5py.File(caches["kitti-eval"]) as handle:
        chunk = handle["samples/depth_gt"].id.get_chunk_info(0)
    data[chunk.byte_offset : chunk.byte_offset + chunk.size] = b"\xff" * chunk.size  # no longer lzf data
    path.write_bytes(data)
    with pytest.raises(DepthcliError, match=r"samples/depth_gt entry 0 cannot be read.*cache verify"):
        CachedKittiDataset(path, frame_ids=(0,))[0]


# ---- fuzzing the reader ------------------------------------------------------------------------------


def _arrays(sample: dict) -> dict:
    return {key: value.numpy() for key, value in sample.items() if isinstance(value, torch.Tensor)}


def _read_everything(path, kind: str) -> tuple[dict, list]:
    """What the readers give: the info dict (size of the file aside) and every array of every sample."""
    info = {key: value for key, value in cache_info(path).items() if key != "file_bytes"}
    if kind == "nyu":
        dataset = CachedNyuDataset(path, split="all")
        return info, [_arrays(dataset[i]) for i in range(len(dataset))]
    frame_ids = (0,) if kind == "kitti-eval" else (0, -1, 1)
    dataset = CachedKittiDataset(path, frame_ids=frame_ids)
    arrays = [_arrays(dataset[i]) for i in range(len(dataset))]
    if kind == "kitti-eval":
        eval_set = cache_eval_set(path, None, get_protocol("kitti-eigen"))
        arrays += [{"name": np.array(eval_set.names), "gt": eval_set.load_gt(0), "rgb": eval_set.load_image(0)}]
    return info, arrays


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x)
        for x, y in zip(a, b, strict=True)
    )


def _damage(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    damaged = bytearray(data)
    for offset, bit in flips:
        damaged[offset % len(damaged)] ^= 1 << bit
    return bytes(damaged[:cut] if cut is not None else damaged)


damage = st.one_of(
    st.tuples(st.lists(st.tuples(st.integers(0, FIRST_BYTES - 1), st.integers(0, 7)), min_size=1, max_size=12),
              st.none()),
    st.tuples(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 7)), min_size=1, max_size=4), st.none()),
    st.tuples(st.just([]), st.integers(0, 2**31)),
)  # fmt: skip


def _check_damaged_copy(caches, kind: str, flips, cut, workdir) -> None:
    source = caches[kind]
    data = source.read_bytes()
    expected_info, expected_arrays = _read_everything(source, kind)
    path = workdir / f"damaged-{kind}.h5"
    path.write_bytes(_damage(data, flips, None if cut is None else cut % len(data)))
    try:
        info, arrays = _read_everything(path, kind)
    except DepthcliError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
        return
    problems = verify_cache(path)  # must not raise either
    assert info == expected_info, "the metadata a reader trusts changed without an error"
    if not _same(arrays, expected_arrays):
        assert problems, "a reader got different pixels and `cache verify` saw nothing"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("kind", ["kitti-train", "kitti-eval", "nyu"])
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(damage=damage)
def test_damaged_cache_reads_correctly_or_fails_in_one_line(kind, damage, caches, workdir):
    _check_damaged_copy(caches, kind, *damage, workdir)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["kitti-train", "kitti-eval", "nyu"])
@settings(max_examples=FUZZ_EXAMPLES_SLOW, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(damage=damage)
def test_damaged_cache_fuzz_long_run(kind, damage, caches, workdir):
    _check_damaged_copy(caches, kind, *damage, workdir)
