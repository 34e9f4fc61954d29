"""Checkpoints: round trips, atomic writes under failure, and one clear error for every bad file."""

from __future__ import annotations

import pickle

import pytest
import torch

from depthcli import checkpoints
from depthcli.checkpoints import load_checkpoint, save_checkpoint
from depthcli.errors import DepthcliError
from depthcli.nets import build_depth_net, build_encoder
from depthcli.nets.loading import load_depth_model, load_encoder_init


def _payload(value: float = 1.0) -> dict:
    return {
        "kind": "depth",
        "config": {"net": "monodepth2", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0},
        "model": {"weight": torch.full((3, 2), value)},
        "train_state": {"step": 5, "rng": torch.arange(7, dtype=torch.uint8), "note": None, "pair": (1, 2.5)},
    }


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    path = save_checkpoint(tmp_path / "a.ckpt", _payload(2.0))
    loaded = load_checkpoint(path, expected_kind="depth")
    assert (loaded["format"], loaded["version"], loaded["kind"]) == ("depthcli", 1, "depth")
    assert torch.equal(loaded["model"]["weight"], torch.full((3, 2), 2.0))
    assert torch.equal(loaded["train_state"]["rng"], torch.arange(7, dtype=torch.uint8))
    assert loaded["train_state"]["step"] == 5
    assert loaded["train_state"]["pair"] == (1, 2.5) and loaded["train_state"]["note"] is None
    assert loaded["config"]["size"] == [64, 64]


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.ckpt", _payload(1.0))
    real_save = torch.save

    def disk_full(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", disk_full)
    with pytest.raises(DepthcliError, match="No space left"):
        save_checkpoint(path, _payload(9.0))
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    assert torch.equal(load_checkpoint(path)["model"]["weight"], torch.full((3, 2), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left behind


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing", "does not exist"),
        ("directory", "is a folder, not a regular file"),
        ("truncated", "cannot be read"),
        ("garbage", "cannot be read"),
        ("pickle_code", "cannot be read"),
        ("other_project", "not a depthcli checkpoint"),
        ("future_version", "format version 7"),
        ("wrong_kind", "holds a 'encoder' model, expected 'depth'"),
    ],
)
def test_bad_checkpoints_are_one_line_errors(tmp_path, case, pattern):
    path = tmp_path / "model.ckpt"
    if case == "directory":
        path.mkdir()
    elif case == "truncated":
        save_checkpoint(path, _payload())
        path.write_bytes(path.read_bytes()[:200])
    elif case == "garbage":
        path.write_bytes(b"\x00\x01not a zip file at all" * 10)
    elif case == "pickle_code":
        torch.save({"format": "depthcli", "x": _Evil()}, path)
    elif case == "other_project":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)
    elif case == "future_version":
        torch.save({"format": "depthcli", "version": 7, "kind": "depth", "config": {}}, path)
    elif case == "wrong_kind":
        save_checkpoint(path, {"kind": "encoder", "config": {}, "model": {}})
    with pytest.raises(DepthcliError, match=pattern) as info:
        load_checkpoint(path, expected_kind="depth")
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_pickle_payload_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"format": "depthcli", "x": _Evil()}, handle, protocol=2)
    with pytest.raises(DepthcliError):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_load_depth_model_rebuilds_the_net(tmp_path):
    torch.manual_seed(0)
    net = build_depth_net("monodepth2")
    config = {"net": "monodepth2", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0}
    path = save_checkpoint(tmp_path / "d.ckpt", {"kind": "depth", "config": config, "model": net.state_dict()})
    loaded = load_depth_model(path)
    model = loaded.net
    assert loaded.config == config and not model.training
    assert (loaded.net_name, loaded.size, loaded.min_depth, loaded.max_depth) == ("monodepth2", (64, 64), 0.1, 100.0)
    assert loaded.path == path
    image = torch.rand(1, 3, 64, 64)
    net.eval()
    with torch.no_grad():
        assert torch.equal(model(image)[("disp", 0)], net(image)[("disp", 0)])


@pytest.mark.parametrize("net_name, scales", [("diffnet-small", (0,)), ("monodepth2", (0, 2))])
def test_a_net_trained_on_fewer_scales_loads(tmp_path, net_name, scales):
    """A run trained with `--set scales=...` holds only those disparity heads; predict/eval must rebuild it so."""
    torch.manual_seed(0)
    net = build_depth_net(net_name, scales=scales).eval()
    config = {"net": net_name, "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0, "scales": list(scales)}
    path = save_checkpoint(tmp_path / "d.ckpt", {"kind": "depth", "config": config, "model": net.state_dict()})
    loaded = load_depth_model(path).net
    assert loaded.scales == scales
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = net(image), loaded(image)
    for scale in scales:
        assert torch.equal(got[("disp", scale)], expected[("disp", scale)])


def test_load_depth_model_errors(tmp_path):
    path = save_checkpoint(tmp_path / "d.ckpt", {"kind": "depth", "config": {"net": "monodepth2"}, "model": {}})
    with pytest.raises(DepthcliError, match="lacks size, min_depth, max_depth"):
        load_depth_model(path)
    config = {"net": "diffnet", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0}
    bad = save_checkpoint(tmp_path / "m.ckpt", {"kind": "depth", "config": config, "model": {"w": torch.zeros(1)}})
    with pytest.raises(DepthcliError, match="does not fit the depth net 'diffnet'"):
        load_depth_model(bad)


def test_encoder_init_loads_matching_weights_and_rejects_others(tmp_path):
    torch.manual_seed(1)
    encoder = build_encoder("resnet18")
    good = save_checkpoint(
        tmp_path / "enc.ckpt",
        {"kind": "encoder", "config": {}, "encoder_name": "resnet18", "model": encoder.state_dict()},
    )
    model = build_depth_net("monodepth2")
    load_encoder_init(model, good)
    for name, value in encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], value), name
    wrong = save_checkpoint(
        tmp_path / "r50.ckpt", {"kind": "encoder", "config": {}, "encoder_name": "resnet50", "model": {}}
    )
    with pytest.raises(DepthcliError, match="resnet50 encoder weights but the model's encoder is hrnet18"):
        load_encoder_init(build_depth_net("diffnet"), wrong)
    other = save_checkpoint(tmp_path / "b.ckpt", {"kind": "boundary-net", "config": {}, "model": {}})
    with pytest.raises(DepthcliError, match="needs an encoder or depth checkpoint"):
        load_encoder_init(model, other)


# ------------------------------------------------------------------------------------ integrity
def _written_without_digest(path, payload: dict) -> None:
    """What an older depthcli (or a hand edit re-saved with torch.save) leaves: the payload, no digest."""
    torch.save({"format": "depthcli", "version": 1, **payload}, path)


def test_the_digest_is_sha256_over_places_dtypes_shapes_bytes_and_values(tmp_path):
    import hashlib

    payload = {"kind": "depth", "config": {"net": "x"}, "model": {"w": torch.tensor([1.0, 2.0])}, "provenance": {}}
    stored = load_checkpoint(save_checkpoint(tmp_path / "a.ckpt", payload))["digest"]
    expected = hashlib.sha256()  # the stored order, written out by hand
    for line in (
        "|dict|6\n",
        "/'format'|str|'depthcli'\n",
        "/'version'|int|1\n",
        "/'kind'|str|'depth'\n",
        "/'config'|dict|1\n",
        "/'config'/'net'|str|'x'\n",
        "/'model'|dict|1\n",
        "/'model'/'w'|tensor|torch.float32|(2,)\n",
        "/'provenance'|dict|0\n",
    ):
        expected.update(line.encode())
        if "tensor" in line:
            expected.update(b"\x00\x00\x80\x3f\x00\x00\x00\x40")  # 1.0 and 2.0, float32 little-endian
    assert stored == "sha256:" + expected.hexdigest()


def test_flipped_bytes_are_refused_naming_the_file(tmp_path):
    torch.manual_seed(0)
    net = build_depth_net("radepth-small")
    config = {"net": "radepth-small", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0}
    path = save_checkpoint(tmp_path / "d.ckpt", {"kind": "depth", "config": config, "model": net.state_dict()})
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the weights: the zip structure stays readable, the numbers change
    data[middle : middle + 4096] = bytes(value ^ 0xFF for value in data[middle : middle + 4096])
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(DepthcliError, match="is damaged: its contents do not match the sha256 digest") as info:
        load_depth_model(damaged)
    assert str(damaged) in str(info.value) and "\n" not in str(info.value)
    assert load_depth_model(path).net_name == "radepth-small"  # the intact file still loads


def test_checkpoints_without_a_digest_still_load(tmp_path):
    path = tmp_path / "old.ckpt"
    _written_without_digest(path, _payload(3.0))
    loaded = load_checkpoint(path, expected_kind="depth")
    assert "digest" not in loaded and torch.equal(loaded["model"]["weight"], torch.full((3, 2), 3.0))


def test_nonfinite_weights_are_refused_on_load(tmp_path):
    payload = _payload()
    payload["networks"] = {"pose": {"decoder.bias": torch.tensor([0.0, float("inf")])}}
    path = save_checkpoint(tmp_path / "diverged.ckpt", payload)
    with pytest.raises(DepthcliError, match=r"1 weight tensor\(s\) hold NaN or inf \(first: pose.decoder.bias\)"):
        load_checkpoint(path)


def test_a_raw_pickle_is_one_line_without_a_torch_warning(tmp_path, recwarn):
    path = tmp_path / "raw.ckpt"
    path.write_bytes(pickle.dumps({"format": "depthcli", "model": {}}))
    with pytest.raises(DepthcliError, match="cannot be read"):
        load_checkpoint(path)
    assert not recwarn.list


@pytest.mark.parametrize(
    "key, value, pattern",
    [
        ("size", "abc", r"key 'size' must be a list, got 'abc'"),
        ("size", [100, 64], r"key 'size': depth nets need width and height that are multiples of 32"),
        ("min_depth", "abc", r"key 'min_depth' must be a number, got 'abc'"),
        ("min_depth", float("nan"), r"key 'min_depth' must be a finite number > 0, got nan"),
        ("max_depth", 0.05, r"key 'min_depth' \(0.1\) must be below max_depth \(0.05"),
        ("net", ["monodepth2"], r"key 'net' must be a string"),
        ("val_data", 5, r"key 'val_data' must be a string, got 5"),
    ],
)
def test_a_hand_edited_config_is_one_line_naming_file_and_key(tmp_path, key, value, pattern):
    config = {"net": "monodepth2", "size": [64, 64], "min_depth": 0.1, "max_depth": 100.0, key: value}
    path = tmp_path / "edited.ckpt"
    _written_without_digest(path, {"kind": "depth", "config": config, "model": {}})
    with pytest.raises(DepthcliError, match=pattern) as info:
        load_depth_model(path)
    assert str(info.value).startswith(f"checkpoint {path}: key '") and "\n" not in str(info.value)
