"""`depthcli --help` stays fast: the CLI modules import torch and the science only inside the commands."""

from __future__ import annotations

import subprocess
import sys

from depthcli.cli import common as common_cli
from depthcli.cli import weights as weights_cli
from depthcli.evaluation import ground_truth, protocols, reporting
from depthcli.inference import IMAGE_RESIZES
from depthcli.weights.release_import import PROJECTS

# What a bare `import depthcli.cli.app` (and so every `--help`) must not pull in.
HEAVY_MODULES = (
    "torch",
    "numpy",
    "cv2",
    "matplotlib",
    "h5py",
    "scipy",
    "depthcli.evaluation",
    "depthcli.predict",
    "depthcli.nets",
    "depthcli.data",
    "depthcli.synth",
    "depthcli.engine",
    "depthcli.export",
    "depthcli.weights.release_import",
)

HELP_ARGS = (
    ["--help"],
    ["eval", "--help"],
    ["data", "check", "kitti", "--help"],
    ["sweep", "--help"],
    ["predict", "--help"],
    ["models", "--help"],
    ["weights", "import", "--help"],
    ["export", "onnx", "--help"],
    ["synth", "kitti", "--help"],
    ["cache", "build", "--help"],
    ["train", "--help"],
    ["pretrain", "--help"],
)


def _heavy_modules_loaded_by(code: str) -> list[str]:
    """Run `code` in a fresh interpreter and list the heavy modules it left in sys.modules."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_importing_the_app_loads_no_science():
    assert _heavy_modules_loaded_by("import depthcli.cli.app") == []


def test_help_of_every_command_loads_no_science():
    code = (
        "from typer.testing import CliRunner\n"
        "from depthcli.cli.app import app\n"
        f"for args in {HELP_ARGS!r}:\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0 and 'Usage' in result.output, (args, result.output)\n"
    )
    assert _heavy_modules_loaded_by(code) == []


def test_option_choices_kept_in_the_cli_match_the_science():
    """The CLI lists these in --help without importing the science; they must not drift apart."""
    assert common_cli.PROTOCOL_NAMES == tuple(protocols.PROTOCOLS)
    assert common_cli.PRED_TYPES == protocols.PRED_TYPES
    assert common_cli.GT_SOURCES == protocols.GT_SOURCES
    assert common_cli.GT_DEPTHS == protocols.GT_DEPTHS
    assert common_cli.CROPS == protocols.CROPS
    assert common_cli.SQ_REL_FORMULAS == protocols.SQ_REL_FORMULAS
    assert common_cli.RESIZE_MODES == protocols.RESIZE_MODES
    assert common_cli.FRAME_FORMATS == ground_truth.FRAME_FORMATS
    assert common_cli.IMAGE_RESIZES == IMAGE_RESIZES
    assert common_cli.TABLE_FORMATS == reporting.TABLE_FORMATS
    assert weights_cli.PROJECT_NAMES == PROJECTS
