"""`train` / `pretrain` flags drawn from the config classes: every default --help prints is the one the code
uses, --set and --print-config, real choice lists, YAML configs and shell completion."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from depthcli.cli.app import app
from depthcli.cli.config_flags import parse_value
from depthcli.errors import DepthcliError

PRESETS = {"train": ("monodepth2", "diffnet", "radepth", "nyu-resnet50"), "pretrain": ("grmc", "moco")}


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _printed_config(command: str, *args: str) -> dict:
    result = _invoke(command, *args, "--print-config")
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.output)


def _help_defaults(command: str) -> dict[str, dict[str, str]]:
    """{option: {preset: default text}} for every option whose --help names a default."""
    click_command = typer.main.get_command(app).commands[command]
    presets = PRESETS[command]
    group = re.compile(r"\s*(.+?) \(((?:" + "|".join(presets) + r")(?:, (?:" + "|".join(presets) + r"))*)\)(?:,|$)")
    found = {}
    for param in click_command.params:
        match = re.search(r"\(default: (.*)\)$", param.help or "")
        if match is None or param.opts[0] in ("--task", "--preset"):
            continue
        text, per_preset = match.group(1), {}
        while text and (piece := group.match(text)):
            per_preset.update({name: piece.group(1) for name in piece.group(2).split(", ")})
            text = text[piece.end() :]
        found[param.opts[0]] = per_preset or dict.fromkeys(presets, match.group(1))
    return found


def _matches(text: str, value) -> bool:
    """Whether --help's `text` states `value` (sizes as WxH, booleans on/off, unset as a phrase)."""
    if value is None or value == "":
        return not re.fullmatch(r"[\d.e+-]+|\d+x\d+|on|off", text)
    if isinstance(value, bool):
        return text == ("on" if value else "off")
    if isinstance(value, list):
        return text == "x".join(map(str, value))
    if isinstance(value, (int, float)):
        return float(text) == value
    return text == value


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_every_default_printed_by_help_is_the_one_the_code_uses(command):
    defaults = _help_defaults(command)
    assert {"--batch-size", "--lr", "--epochs", "--num-workers", "--size", "--amp", "--data"} <= set(defaults)
    for preset in PRESETS[command]:
        config = _printed_config(command, "--preset", preset)
        for option, per_preset in defaults.items():
            key = option.split("/")[0].removeprefix("--").replace("-", "_")
            if key not in config:
                continue  # a flag of the other train task
            assert preset in per_preset, (option, per_preset)
            assert _matches(per_preset[preset], config[key]), (preset, option, per_preset[preset], config[key])


def test_help_states_the_drifted_defaults_right():
    """What the hand-typed help said wrongly: pretrain workers 'default 2', train batch '12' for every preset."""
    train, pretrain = _help_defaults("train"), _help_defaults("pretrain")
    assert train["--batch-size"]["radepth"] == "12" and train["--batch-size"]["nyu-resnet50"] == "8"
    assert "0 on CPU" in pretrain["--num-workers"]["grmc"]
    assert _printed_config("pretrain")["num_workers"] is None and _printed_config("pretrain")["preset"] == "grmc"


def test_choice_lists_are_shown_and_completed():
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    for choices in ("[auto|off|bf16|fp16]", "[monodepth2|diffnet|radepth|nyu-resnet50]", "[selfsup|supervised]"):
        assert choices in out
    assert "[grmc|moco]" in CliRunner().invoke(app, ["pretrain", "--help"], env={"COLUMNS": "250"}).output
    completion = {"_DEPTHCLI_COMPLETE": "complete_bash", "COMP_WORDS": "depthcli train --preset r", "COMP_CWORD": "3"}
    result = CliRunner().invoke(app, [], env=completion, prog_name="depthcli")
    assert result.output.split() == ["radepth"]


def test_set_and_flags_reach_the_config_and_the_task_follows_the_preset():
    config = _printed_config(
        "train", "--preset", "radepth", "--set", "lr=2e-4", "--set", "scales=[0]", "--set", "net=radepth-small",
        "--set", "consistency_ramp=[10, 20]", "--batch-size", "3", "--size", "128x64",
    )  # fmt: skip
    assert (config["lr"], config["scales"], config["net"], config["consistency_ramp"]) == (
        2e-4,
        [0],
        "radepth-small",
        [10, 20],
    )
    assert (config["batch_size"], config["size"], config["arbitrary_scale"]) == (3, [128, 64], True)
    supervised = _printed_config("train", "--preset", "nyu-resnet50", "--label-fraction", "0.1")
    assert (supervised["label_fraction"], supervised["batch_size"], supervised["max_depth"]) == (0.1, 8, 10.0)


def test_yaml_config_files_work_out_of_the_box(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 0.002\nscales: [0, 1]\nautomask: false\n")
    config = _printed_config("train", "--preset", "monodepth2", "--config", str(path), "--set", "lr=0.003")
    assert (config["lr"], config["scales"], config["automask"]) == (0.003, [0, 1], False)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--set", "lr"], "--set 'lr' is not KEY=VALUE"),
        (["--set", "lerning_rate=0.1"], "unknown config key 'lerning_rate'"),
        (["--set", "batch_size=2", "--batch-size", "3"], "'batch_size' is given twice"),
        (["--set", "batch_size=2.5"], "'batch_size' must be an integer"),
        (
            ["--label-fraction", "0.5"],
            "(label_fraction) applies to --task supervised, not --task selfsup",
        ),
        (["--amp", "fp8"], "--amp 'fp8' is not one of auto, off, bf16, fp16"),
        (["--task", "video"], "--task 'video' is not one of selfsup, supervised"),
    ],
)
def test_bad_config_flags_are_one_line_errors(args, pattern):
    result = _invoke("train", "--preset", "radepth", *args, "--print-config")
    assert isinstance(result.exception, DepthcliError), result.output
    assert pattern in str(result.exception) and "\n" not in str(result.exception)


def test_out_is_required_to_train_but_not_to_print():
    result = _invoke("train", "--preset", "radepth", "--data", "x")
    assert isinstance(result.exception, DepthcliError) and "--out is required" in str(result.exception)


@pytest.mark.parametrize(
    "text, value",
    [("2e-4", 2e-4), ("[0, 1]", [0, 1]), ("true", True), ("null", None), ("radepth-small", "radepth-small"),
     ('"quoted"', "quoted"), ("inf", float("inf")), ("12", 12)],
)  # fmt: skip
def test_set_values_are_read_as_json_then_toml_then_text(text, value):
    assert parse_value(text) == value
