"""depthcli: monocular depth estimation research suite (pretrain, train, eval, sweep, predict)."""

__version__ = "0.1.0"
