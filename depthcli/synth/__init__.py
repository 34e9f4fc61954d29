"""Synthetic KITTI-like drives and NYU-like rooms with exact geometry, written in the real formats."""

from depthcli.synth.generate import SynthSummary, synth_kitti, synth_nyu

__all__ = ["SynthSummary", "synth_kitti", "synth_nyu"]
