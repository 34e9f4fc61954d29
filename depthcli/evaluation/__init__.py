"""Evaluation: depth metrics, the KITTI Eigen / benchmark and NYU protocols, and the resolution sweep."""

from depthcli.evaluation.eval_sets import open_eval_set
from depthcli.evaluation.evaluate import EvalResult, evaluate_model, evaluate_predictions
from depthcli.evaluation.ground_truth import EvalSet
from depthcli.evaluation.metrics import METRIC_NAMES, compute_depth_errors
from depthcli.evaluation.protocols import PROTOCOLS, get_protocol

__all__ = [
    "METRIC_NAMES",
    "PROTOCOLS",
    "EvalResult",
    "EvalSet",
    "compute_depth_errors",
    "evaluate_model",
    "evaluate_predictions",
    "get_protocol",
    "open_eval_set",
]
