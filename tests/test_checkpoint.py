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
        ("directory", "does not exist"),
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
