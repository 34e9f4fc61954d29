"""Export a depth checkpoint to ONNX: one input image batch, one output (the scale-0 disparity)."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from depthcli.atomic import atomic_path
from depthcli.errors import DepthcliError, out_of_memory_as_error
from depthcli.nets import check_input_size
from depthcli.nets.loading import load_depth_model
from depthcli.paths import check_output_file, refuse_output_overwriting_inputs

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "disp"


class FullResolutionDisparity(nn.Module):
    """Wraps a depth net so that its graph returns a single tensor, `("disp", 0)`, (B,1,H,W) sigmoid."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)[("disp", 0)]


def require_onnx() -> None:
    """The exporter needs the `onnx` package; say how to get it instead of an ImportError."""
    if importlib.util.find_spec("onnx") is None:
        raise DepthcliError("ONNX export needs the onnx package: pip install 'depthcli[onnx]'")


def export_onnx(model: nn.Module, size: tuple[int, int], out: str | os.PathLike, dynamic: bool = False) -> Path:
    """Write `model` (eval mode) as ONNX traced at `size` = (W,H).

    Input `image`: float32 (B,3,H,W) in [0,1]; output `disp`: (B,1,H,W). With `dynamic`, batch,
    height and width are free axes (sides must still be multiples of 32 at run time). Uses the
    TorchScript-based exporter (`dynamo=False`), which needs only `onnx`.
    """
    width, height = size
    check_input_size(width, height)
    require_onnx()
    wrapper = FullResolutionDisparity(model).eval()
    example = torch.rand(1, 3, height, width, device=next(model.parameters()).device)
    dynamic_axes = None
    if dynamic:
        axes = {0: "batch", 2: "height", 3: "width"}
        dynamic_axes = {INPUT_NAME: axes, OUTPUT_NAME: axes}
    out = Path(out)
    memory = out_of_memory_as_error(f"trace the net at {width}x{height}", "export at a smaller --size")
    with atomic_path(out) as tmp, warnings.catch_warnings(), memory:
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return out


def export_checkpoint_onnx(
    checkpoint: str | os.PathLike, out: str | os.PathLike, size: tuple[int, int] | None = None, dynamic: bool = False
) -> tuple[Path, tuple[int, int]]:
    """Load a depth checkpoint and export it at `size` (default: its training size)."""
    if size is not None:
        check_input_size(*size)
    check_output_file(out, "--out")
    refuse_output_overwriting_inputs([("--out", out)], [("checkpoint", checkpoint)])
    require_onnx()
    model = load_depth_model(checkpoint, device="cpu")
    size = tuple(size) if size is not None else model.size
    return export_onnx(model.net, size, out, dynamic=dynamic), size
