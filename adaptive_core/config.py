import dataclasses
import math

from .estimator import FIRST_JUDGED_STEP
from .policy import AdaptiveSkipPolicy
from .reuse import REUSE_STRATEGIES, CalibratedReuse


@dataclasses.dataclass(frozen=True)
class SkipConfig:
    """The AdaptiveDiffusion skipping policy, with the paper's names.

    threshold:        δ. The next network call is skipped when the third-order estimator
                      |d_k - 2 d_{k-1} + d_{k-2}| / (2 d_{k-1}) is at most δ. 0 disables skipping.
    max_skip_steps:   C_max, the most consecutive steps that may reuse the last noise prediction.
                      0 means never skip.
    warmup_steps:     the first steps of a run always call the network. The estimator needs four
                      latents, so step 3 is the earliest that can ever be skipped.
    reference_quirks: reproduce the reference implementation's decisions exactly: its C_max
                      guard only counts after five decisions, and its C_max = 0 means unlimited.
                      It also reuses as the reference does (``hold``), whatever ``reuse`` says.
    reuse:            what a skipped step uses in place of the network's noise prediction: the
                      last one (``hold``, the paper), an extrapolation along the schedule from
                      the last two (``linear``) or three (``lagrange``) real calls, or the best of
                      every predictor as measured during the run (``auto``; see reuse.py).
    """
    threshold: float = 0.01
    max_skip_steps: int = 4
    warmup_steps: int = 4
    reference_quirks: bool = False
    reuse: str = "hold"

    def __post_init__(self):
        for problem in validate(self.threshold, self.max_skip_steps, self.warmup_steps, self.reuse):
            raise ValueError(problem)

    def disabled_because(self):
        if self.threshold <= 0:
            return "threshold is 0 (skipping disabled)"
        if self.max_skip_steps == 0 and not self.reference_quirks:
            return "max_skip_steps is 0"
        return None

    @property
    def first_judged_step(self):
        return max(self.warmup_steps, FIRST_JUDGED_STEP)

    @property
    def reuse_strategy(self):
        return "hold" if self.reference_quirks else self.reuse

    def build(self):
        predictors = REUSE_STRATEGIES[self.reuse_strategy]
        return AdaptiveSkipPolicy(self), CalibratedReuse(predictors, calibrate=len(predictors) > 1)

    def settings(self):
        return {"criterion": "third_order", "threshold": self.threshold, "max_skip_steps": self.max_skip_steps,
                "warmup_steps": self.warmup_steps, "reference_quirks": self.reference_quirks,
                "reuse": self.reuse_strategy}

    def describe(self):
        return (f"third-order δ={self.threshold:g}, C_max={self.max_skip_steps}, warmup={self.warmup_steps}, "
                f"reuse={self.reuse_strategy}")


def validate(threshold, max_skip_steps, warmup_steps, reuse):
    """Human-readable problems with these widget values, each naming its widget."""
    problems = []
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or not 0 <= threshold <= 1:
        problems.append(f"threshold must be a number between 0 and 1 (0 disables skipping), got {threshold!r}")
    if isinstance(max_skip_steps, bool) or not isinstance(max_skip_steps, int) or max_skip_steps < 0:
        problems.append(f"max_skip_steps must be a whole number >= 0 (0 never skips), got {max_skip_steps!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        problems.append(f"warmup_steps must be a whole number >= 0, got {warmup_steps!r}")
    if reuse not in REUSE_STRATEGIES:
        problems.append(f"reuse must be one of {', '.join(REUSE_STRATEGIES)}, got {reuse!r}")
    return problems
