"""Weights from outside a run: official release folders, ImageNet files, run starts, checkpoint summaries."""
