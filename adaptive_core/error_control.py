"""Error-controlled skipping: a step reuses when the reuse that would serve it is expected to be
close enough to the network's own answer, the way an adaptive ODE solver accepts a step whose
estimated local error is within tolerance.

The reuse (reuse.py) measures, at every real call, how far each of its predictors was from what
the network returned: ||D̂ - D|| / ||D||, per step of distance from the last real call. A step
from σ to σ' moves the latent by (σ - σ')/σ · (x - D) (the Euler form every sampler shares to
first order), so serving it with D̂ puts an error of |σ - σ'|/σ · ||D̂ - D|| into the latent. For
the next step, h steps after the last real call, the predicted error is

    e = r · h · |σ - σ'| / σ,   relative to the size of the picture ||D||,

with r the best predictor's running error; the step skips when e is at most the tolerance. The
error grows with h, so a run of skips ends by itself where the prediction would drift, and the
real call that ends it is measured in turn; and the last step, which puts its error straight into
the result (σ' = 0), is the hardest to skip.
"""
import dataclasses
import math

from .config import validate
from .interfaces import Decision, Reason
from .reuse import REUSE_STRATEGIES, CalibratedReuse

# A predictor is judged on real calls before it serves: the first two steps always compute.
FIRST_JUDGED_STEP = 2


@dataclasses.dataclass(frozen=True)
class ErrorControlConfig:
    """tolerance:      the largest predicted relative error of a skipped step's update (vs the
                       update the network's own prediction would give). 0 disables skipping.
    max_skip_steps:    the most consecutive steps that may reuse. 0 means never skip.
    warmup_steps:      the first steps always call the network (at least the first two: the
                       reuse must have been measured before it serves).
    reuse:             which predictors may serve a skip (reuse.REUSE_STRATEGIES); ``auto``
                       lets the measured errors choose among all of them, per skip.
    """
    tolerance: float = 0.005
    max_skip_steps: int = 4
    warmup_steps: int = 2
    reuse: str = "auto"

    def __post_init__(self):
        for problem in validate(self.tolerance, self.max_skip_steps, self.warmup_steps, self.reuse):
            raise ValueError(problem.replace("threshold", "threshold (the tolerance)"))

    @property
    def first_judged_step(self):
        return max(self.warmup_steps, FIRST_JUDGED_STEP)

    def disabled_because(self):
        if self.tolerance <= 0:
            return "threshold is 0 (skipping disabled)"
        if self.max_skip_steps == 0:
            return "max_skip_steps is 0"
        return None

    def build(self):
        reuse = CalibratedReuse(REUSE_STRATEGIES[self.reuse], calibrate=True)
        return ErrorControlledPolicy(self, reuse), reuse

    def settings(self):
        return {"criterion": "error", "threshold": self.tolerance, "max_skip_steps": self.max_skip_steps,
                "warmup_steps": self.warmup_steps, "reuse": self.reuse}

    def describe(self):
        return (f"error tolerance={self.tolerance:g}, C_max={self.max_skip_steps}, warmup={self.warmup_steps}, "
                f"reuse={self.reuse}")


class ErrorControlledPolicy:
    def __init__(self, config: ErrorControlConfig, reuse: CalibratedReuse):
        self.config, self.reuse = config, reuse
        self.consecutive_skips = 0
        self.smallest_value = math.inf

    def peek(self, x, sigma):
        return {}

    def decide(self, step: int, values: dict) -> Decision:
        c = self.config
        if step < c.first_judged_step:
            decision = Decision(True, Reason.WARMUP)
        elif "error" not in values:
            decision = Decision(True, Reason.NO_CACHE)  # no predictor measured yet
        else:
            sigma, next_sigma = values["sigma"], values["next_sigma"]
            value = values["error"] * (step - self.reuse.last_call) * abs(sigma - next_sigma) / sigma
            if not math.isfinite(value):
                decision = Decision(True, Reason.NON_FINITE, value)
            elif self.consecutive_skips >= c.max_skip_steps:
                decision = Decision(True, Reason.MAX_SKIP, value)
            else:
                decision = Decision(value > c.tolerance, Reason.ESTIMATOR, value)
            if math.isfinite(value):
                self.smallest_value = min(self.smallest_value, value)
        self.consecutive_skips = 0 if decision.compute else self.consecutive_skips + 1
        return decision

    def overrule(self, decision: Decision):
        self.consecutive_skips = 0

    def why_nothing_skipped(self, steps):
        if steps <= self.config.first_judged_step:
            return f"all {steps} steps are warm-up steps (warmup_steps={self.config.warmup_steps})"
        if math.isfinite(self.smallest_value):
            return (f"the predicted error never fell to the tolerance {self.config.tolerance:g} "
                    f"(smallest {self.smallest_value:.4g})")
        return None
