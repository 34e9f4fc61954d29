"""Training: the recipes (`selfsup`, `supervised`, `pretrain`), one runner for all of them, the generic loop."""
