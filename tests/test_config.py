"""Config resolution: preset < config file < flags, and every bad key or value names its source."""

from __future__ import annotations

import dataclasses
import json

import pytest

from depthcli.config import build_config, config_from_dict, config_to_dict, load_config_file, save_config
from depthcli.errors import DepthcliError
from depthcli.recipe_configs import SELFSUP, SelfSupConfig


@dataclasses.dataclass
class ToyConfig:
    name: str = "default"
    lr: float = 1e-4
    steps: int = 10
    size: tuple[int, int] | None = None
    scales: tuple[int, ...] = (0, 1)
    flag: bool = False


def test_precedence_preset_then_file_then_flags(tmp_path):
    config_file = tmp_path / "run.toml"
    config_file.write_text('lr = 0.5\nsteps = 7\nname = "from-file"\nscales = [0]\n')
    preset = {"lr": 0.1, "steps": 3, "flag": True}
    config = build_config(ToyConfig, preset, config_file, {"steps": 99})
    # steps: flag beats file beats preset; lr: file beats preset; flag: preset beats default.
    assert config == ToyConfig(name="from-file", lr=0.5, steps=99, size=None, scales=(0,), flag=True)


def test_json_file_and_int_to_float_and_list_to_tuple(tmp_path):
    config_file = tmp_path / "run.json"
    config_file.write_text(json.dumps({"lr": 1, "size": [64, 32]}))
    config = build_config(ToyConfig, {}, config_file)
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.size == (64, 32)


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    config_file = tmp_path / "bad.toml"
    config_file.write_text("lerning_rate = 0.1\n")
    with pytest.raises(DepthcliError, match=r"bad\.toml.*'lerning_rate'"):
        build_config(ToyConfig, {}, config_file)


def test_unknown_flag_key_and_wrong_types_are_errors():
    with pytest.raises(DepthcliError, match="command-line flags.*'nope'"):
        build_config(ToyConfig, {}, None, {"nope": 1})
    with pytest.raises(DepthcliError, match="'steps' must be an integer"):
        build_config(ToyConfig, {}, None, {"steps": 1.5})
    with pytest.raises(DepthcliError, match="'size' must be a list of 2"):
        build_config(ToyConfig, {}, None, {"size": [1, 2, 3]})
    with pytest.raises(DepthcliError, match="'flag' must be true or false"):
        build_config(ToyConfig, {}, None, {"flag": "yes"})


def test_bad_files(tmp_path):
    with pytest.raises(DepthcliError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 3\n")
    with pytest.raises(DepthcliError, match=r"broken\.toml cannot be parsed"):
        load_config_file(broken)
    odd = tmp_path / "run.ini"
    odd.write_text("x")
    with pytest.raises(DepthcliError, match="unknown extension"):
        load_config_file(odd)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(DepthcliError, match="table of key"):
        load_config_file(listed)


def test_saved_config_reads_back_identically(tmp_path):
    config = SELFSUP.build_config("radepth", overrides={"size": (128, 64), "lr": 3e-4})
    path = save_config(config, tmp_path / "config.json")
    assert build_config(SelfSupConfig, {}, path) == config
    assert config_from_dict(SelfSupConfig, config_to_dict(config), "checkpoint") == config
    assert json.loads(path.read_text())["size"] == [128, 64]


def test_presets_follow_the_papers():
    mono, diff, ra = (SELFSUP.build_config(name) for name in ("monodepth2", "diffnet", "radepth"))
    assert (mono.net, mono.scales, mono.arbitrary_scale) == ("monodepth2", (0, 1, 2, 3), False)
    assert (diff.net, diff.scales) == ("diffnet", (0, 1, 2, 3))
    assert (ra.net, ra.scales, ra.arbitrary_scale, ra.consistency_weight) == ("radepth", (0,), True, 1.0)
    for config in (mono, diff, ra):
        assert (config.lr, config.batch_size, config.epochs, config.min_depth, config.max_depth) == (
            1e-4,
            12,
            20,
            0.1,
            100.0,
        )
        assert config.epochs * config.lr_decay_at == 15  # StepLR x0.1 at epoch 15 of 20
    with pytest.raises(DepthcliError, match="unknown preset"):
        SELFSUP.build_config("monodepth3")
