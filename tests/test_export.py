"""`depthcli export onnx`: the ONNX graph computes what the torch net computes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthcli.checkpoints import save_checkpoint
from depthcli.cli.app import app
from depthcli.errors import DepthcliError
from depthcli.export import export_checkpoint_onnx
from depthcli.nets import build_depth_net
from depthcli.nets.loading import load_depth_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "md2.ckpt"
    config = {"net": "monodepth2", "size": [128, 64], "min_depth": 0.1, "max_depth": 100.0}
    save_checkpoint(path, {"kind": "depth", "config": config, "model": build_depth_net("monodepth2").state_dict()})
    return path


def test_onnx_round_trip(tmp_path, checkpoint):
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnx/onnxruntime not installed (pip install 'depthcli[onnx]')")
    import onnxruntime

    out = tmp_path / "md2.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", str(checkpoint), "--out", str(out), "--dynamic"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = load_depth_model(checkpoint).net
    generator = torch.Generator().manual_seed(2)
    for batch, height, width in [(1, 64, 128), (2, 96, 160)]:  # traced size, then other dynamic axes
        image = torch.rand(batch, 3, height, width, generator=generator)
        (onnx_disp,) = session.run(None, {"image": image.numpy()})
        with torch.no_grad():
            torch_disp = model(image)[("disp", 0)].numpy()
        assert onnx_disp.shape == torch_disp.shape == (batch, 1, height, width)
        assert np.abs(onnx_disp - torch_disp).max() < 1e-4


def test_export_without_onnx_says_how_to_install(tmp_path, checkpoint, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "onnx" else real_find_spec(name, *args)
    )
    with pytest.raises(DepthcliError, match=r"pip install 'depthcli\[onnx\]'"):
        export_checkpoint_onnx(checkpoint, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_export_rejects_bad_size(tmp_path, checkpoint):
    with pytest.raises(DepthcliError, match="multiples of 32"):
        export_checkpoint_onnx(checkpoint, tmp_path / "x.onnx", size=(100, 64))
