"""`depthcli models --json`: the four depth nets with the published parameter and multiply-add counts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from depthcli.cli.app import app

# Parameters (within 1 %) and multiply-adds at 640x192 as the papers report them (docs/protocols.md).
PUBLISHED = {"monodepth2": (14.33e6, 8.0e9), "diffnet": (10.87e6, 11.8e9), "radepth": (9.98e6, 10.7e9)}


def test_models_json_lists_depth_nets_with_published_counts():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert {"monodepth2", "diffnet", "radepth", "nyu-resnet50"} <= set(rows)
    assert all(set(row) == {"name", "params", "macs", "scales"} for row in rows.values())
    for name, (params, macs) in PUBLISHED.items():
        assert rows[name]["params"] == pytest.approx(params, rel=0.01)
        assert rows[name]["macs"] == pytest.approx(macs, rel=0.02)
    assert rows["monodepth2"]["scales"] == [0, 1, 2, 3]
    assert rows["diffnet"]["scales"] == [0, 1, 2, 3]
    assert rows["radepth"]["scales"] == [0]


def test_models_rejects_bad_size():
    result = CliRunner().invoke(app, ["models", "--size", "641x192"])
    assert result.exit_code != 0
    assert "641x192" in str(result.exception)
