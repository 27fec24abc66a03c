"""AdaptiveDiffusion (NeurIPS 2024) step skipping and AdaDiff (ECCV 2024) early exit as a
framework-free library: torch only (the pictures of a run are in ``maps/``).

The ComfyUI adapter in ``nodes/`` feeds it one call at a time; nothing here imports ComfyUI.
"""
from .interfaces import Decision, PolicyConfig, Reason, Reuse, RunStatus, SkipPolicy
from .config import SkipConfig
from .error_control import ErrorControlConfig, ErrorControlledPolicy
from .estimator import ThirdOrderEstimator
from .policy import AdaptiveSkipPolicy
from .reuse import PREDICTORS, REUSE_STRATEGIES, CalibratedReuse, broadcast_sigma, lagrange
from .steps import StepTracker
from .report import RunReport, StepRecord
from .run import AdaptiveRun
from .uncertainty import UncertaintyHeads
from .early_exit import ExitReport, ExitRun

__all__ = [
    "Decision", "PolicyConfig", "Reason", "Reuse", "RunStatus", "SkipPolicy", "SkipConfig",
    "ErrorControlConfig", "ErrorControlledPolicy", "ThirdOrderEstimator", "AdaptiveSkipPolicy",
    "PREDICTORS", "REUSE_STRATEGIES", "CalibratedReuse",
    "broadcast_sigma", "lagrange", "StepTracker", "RunReport", "StepRecord", "AdaptiveRun",
    "UncertaintyHeads", "ExitReport", "ExitRun",
]
