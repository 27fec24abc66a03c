"""AdaptiveDiffusion (NeurIPS 2024) step skipping and AdaDiff (ECCV 2024) early exit as a
framework-free library: torch, numpy and Pillow only.

The ComfyUI adapter in ``nodes/`` feeds it one call at a time; nothing here imports ComfyUI.
"""
from .config import SkipConfig
from .estimator import ThirdOrderEstimator
from .policy import SkipPolicy, Decision
from .reuse import NoisePredictionCache
from .steps import StepTracker
from .report import RunReport, StepRecord
from .run import AdaptiveRun
from .skip_map import render_skip_map
from .uncertainty import UncertaintyHeads
from .early_exit import ExitReport, ExitRun
from .layer_map import render_layer_map

__all__ = [
    "SkipConfig", "ThirdOrderEstimator", "SkipPolicy", "Decision", "NoisePredictionCache",
    "StepTracker", "RunReport", "StepRecord", "AdaptiveRun", "render_skip_map",
    "UncertaintyHeads", "ExitReport", "ExitRun", "render_layer_map",
]
