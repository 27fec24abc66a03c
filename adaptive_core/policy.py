import dataclasses
import math

from .config import SkipConfig
from .estimator import LATENTS_NEEDED


@dataclasses.dataclass(frozen=True)
class Decision:
    compute: bool
    reason: str  # why: warmup, estimator, max_skip, disabled, sampler, non_finite, no_cache


class SkipPolicy:
    """Turns the estimator value before step k into compute-or-reuse for step k.

    Steps count from the first step this run samples (denoise < 1 and start_at_step included).
    """

    def __init__(self, config: SkipConfig):
        self.config = config
        self.judged = []  # computed? for each step from the reference's first judged step on
        self.consecutive_skips = 0

    def decide(self, step: int, value: float) -> Decision:
        decision = self._decide(step, value)
        if step >= LATENTS_NEEDED:
            self.judged.append(decision.compute)
        self.consecutive_skips = 0 if decision.compute else self.consecutive_skips + 1
        return decision

    def overrule(self, decision: Decision):
        """The run had to compute a step the policy meant to skip."""
        self.consecutive_skips = 0
        if self.judged:
            self.judged[-1] = decision.compute

    def _decide(self, step, value):
        c = self.config
        if c.threshold <= 0:
            return Decision(True, "disabled")
        if c.reference_quirks:
            return self._decide_like_reference(step, value)
        if step < max(c.warmup_steps, LATENTS_NEEDED - 1):
            return Decision(True, "warmup")
        if not math.isfinite(value):
            return Decision(True, "non_finite")
        if self.consecutive_skips >= c.max_skip_steps:
            return Decision(True, "max_skip")
        return Decision(value > c.threshold, "estimator")

    def _decide_like_reference(self, step, value):
        # The reference judges step k >= 4 only; its guard looks at the outcomes of the steps
        # from 4 on, only once more than four exist, and `mask[-0:]` is the whole list.
        if step < max(self.config.warmup_steps, LATENTS_NEEDED):
            return Decision(True, "warmup")
        recent = self.judged[-self.config.max_skip_steps:]
        if len(self.judged) > 4 and not any(recent):
            return Decision(True, "max_skip")
        if not math.isfinite(value):
            return Decision(True, "non_finite")
        return Decision(value > self.config.threshold, "estimator")
