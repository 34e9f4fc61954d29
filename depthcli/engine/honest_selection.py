"""Train-side hook of honest model selection (depthcli.evaluation.selection holds the checks)."""

from __future__ import annotations

import dataclasses


def warn_about_selection(config) -> None:
    """Say loudly when best.ckpt would be picked on data sharing drives with a standard test split."""
    from depthcli.evaluation.selection import announce_train_selection

    announce_train_selection(dataclasses.asdict(config))
