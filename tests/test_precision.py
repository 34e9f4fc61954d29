"""The fast setting (bf16 autocast, channels-last): which precision `auto` picks, and losses near float32.

Tolerances. bf16 keeps 8 significant bits, so every network op rounds with a relative error of up to
2^-9 (0.2 %). The disparity and pose heads run in float32 (`depthcli.nets.layers.in_float32`), and the
losses are float32 means over thousands of pixels, so the rounding of single activations largely
averages out: photometric terms and totals moved by 0.006-0.08 % relative in our runs. Their bound,
1 % relative, leaves a wide margin and still catches photometric maths run in bf16 (checked directly
too) or a wrong cast. RA-Depth's cross-scale consistency is the mean |difference| of two disparity
maps (~0.04 here) that bf16 perturbs independently by up to ~1e-3 each (max seen in `predict`: 2e-4),
so it is bounded absolutely: 2e-3 (it moved by 4e-4).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from depthcli.engine import selfsup
from depthcli.engine.selfsup import SelfSupTask, training_transform
from depthcli.errors import DepthcliError
from depthcli.geometry import intrinsics_from_normalised
from depthcli.precision import PerformanceNote, autocast_factory, cpu_has_native_bf16, resolve_amp
from depthcli.recipe_configs import SELFSUP

RELATIVE_TOLERANCE = 0.01
CONSISTENCY_TOLERANCE = 2e-3
AUTOMASK_SHARE_TOLERANCE = 0.02  # bf16 against float32: share of pixels whose automask choice flips
SIZE = (128, 64)
KITTI_K = torch.tensor([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _fake_cpuinfo(tmp_path, flags: str):
    path = tmp_path / f"cpuinfo_{abs(hash(flags))}"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\n")
    return path


def test_cpu_bf16_detection_reads_the_feature_flags(tmp_path):
    assert cpu_has_native_bf16(_fake_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert cpu_has_native_bf16(_fake_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not cpu_has_native_bf16(_fake_cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_auto_picks_bf16_only_with_native_support_and_notes_the_fallback(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr("depthcli.precision.cpu_has_native_bf16", lambda: True)
    assert resolve_amp("auto", cpu) == "bf16"
    monkeypatch.setattr("depthcli.precision.cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr("depthcli.precision._notes_given", set())
    with pytest.warns(PerformanceNote, match="using float32"):
        assert resolve_amp("auto", cpu) == "off"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp("auto", cpu) == "off"  # the note is given once per process
    with pytest.warns(PerformanceNote, match="emulated"):
        assert resolve_amp("bf16", cpu) == "bf16"  # asked for explicitly: honoured
    assert resolve_amp("off", cpu) == "off"
    with pytest.raises(DepthcliError, match="--amp 'fp8'"):
        resolve_amp("fp8", cpu)


def _textured_batch(config, batch_size: int = 2) -> dict:
    """Frames cropped from one smooth random texture, shifted sideways by 2 px per frame (a sliding camera)."""
    width, height = config.size
    generator = torch.Generator().manual_seed(3)
    samples = []
    for index in range(batch_size):
        coarse = torch.rand(1, 3, height // 4, (width + 4) // 4 + 1, generator=generator)
        texture = F.interpolate(coarse, size=(height, width + 4), mode="bilinear", align_corners=False)[0]
        sample = {}
        for frame in config.frame_ids:
            sample[("color", frame, 0)] = texture[:, :, 2 + 2 * frame : 2 + 2 * frame + width].contiguous()
            sample[("color_aug", frame, 0)] = sample[("color", frame, 0)]
        K = intrinsics_from_normalised(KITTI_K, width, height)
        sample[("K", 0)], sample[("inv_K", 0)], sample["index"] = K, torch.linalg.inv(K), index
        transform = training_transform(config)
        torch.manual_seed(index)
        samples.append(transform(sample) if transform else sample)
    return default_collate(samples)


@pytest.mark.parametrize("preset, net", [("monodepth2", "monodepth2"), ("diffnet", "diffnet-small"),
                                         ("radepth", "radepth-small")])  # fmt: skip
def test_fast_setting_losses_stay_within_tolerance_of_float32(preset, net, monkeypatch):
    config = SELFSUP.build_config(preset, overrides={"net": net, "size": SIZE, "consistency_ramp": (0, 0)})
    torch.manual_seed(0)
    task = SelfSupTask(config)
    task.train()
    batch = _textured_batch(config)
    photometric_dtypes = set()
    original = selfsup.photometric_error

    def recording(pred, target):
        photometric_dtypes.update({pred.dtype, target.dtype})
        return original(pred, target)

    monkeypatch.setattr(selfsup, "photometric_error", recording)
    torch.manual_seed(1)  # the automask's tie-breaking noise
    with torch.no_grad():
        reference = {name: value.item() for name, value in task(batch).items()}
    task.to(memory_format=torch.channels_last)
    task.net_autocast = autocast_factory("bf16", torch.device("cpu"))
    torch.manual_seed(1)
    with torch.no_grad():
        fast = task(batch)
    assert photometric_dtypes == {torch.float32}  # the photometric maths never ran in bf16
    assert all(value.dtype == torch.float32 for value in fast.values())
    for name, value in reference.items():
        if name == "consistency":  # a difference of two disparity maps: bounded absolutely
            assert fast[name].item() == pytest.approx(value, abs=CONSISTENCY_TOLERANCE), name
        elif name == "automask_dropped":  # a share of pixels: close calls may flip, a few pixels in a hundred
            assert fast[name].item() == pytest.approx(value, abs=AUTOMASK_SHARE_TOLERANCE), name
        else:
            assert fast[name].item() == pytest.approx(value, rel=RELATIVE_TOLERANCE), name
