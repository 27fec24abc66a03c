import math

from .estimator import FIRST_JUDGED_STEP, LATENTS_NEEDED, ThirdOrderEstimator
from .interfaces import Decision, Reason

# The reference judges from step 4 on: one step later than the estimator allows.
REFERENCE_FIRST_JUDGED_STEP = FIRST_JUDGED_STEP + 1


class AdaptiveSkipPolicy:
    """The paper's rule: the third-order estimator value before step k turns into compute-or-reuse
    for step k.

    Steps count from the first step this run samples (denoise < 1 and start_at_step included).
    Built by SkipConfig, which has already declined to run it when its settings never skip.
    """

    def __init__(self, config):
        self.config = config
        self.estimator = ThirdOrderEstimator()
        self.pending = None  # the latent peeked at this call and its first difference, for commit
        self.judged = []  # computed? for each step from the reference's first judged step on
        self.consecutive_skips = 0
        self.smallest_value = math.inf

    def peek(self, x, sigma):
        # Peeked before we know whether this call starts a step, so that one read does; a step's
        # later calls discard it.
        value, difference = self.estimator.peek(x)
        self.pending = (x, difference)
        return {"estimator": value}

    def decide(self, step: int, values: dict) -> Decision:
        self.estimator.commit(*self.pending)
        value = values["estimator"]
        if math.isfinite(value):
            self.smallest_value = min(self.smallest_value, value)
        decision = self._decide_like_reference(step, value) if self.config.reference_quirks else self._decide(step, value)
        if step >= REFERENCE_FIRST_JUDGED_STEP:
            self.judged.append(decision.compute)
        self.consecutive_skips = 0 if decision.compute else self.consecutive_skips + 1
        return decision

    def overrule(self, decision: Decision):
        self.consecutive_skips = 0
        if self.judged:
            self.judged[-1] = decision.compute

    def why_nothing_skipped(self, steps):
        if steps <= self.config.first_judged_step:
            return (f"all {steps} steps are warm-up steps (warmup_steps={self.config.warmup_steps}; "
                    f"the estimator needs {LATENTS_NEEDED} latents)")
        if math.isfinite(self.smallest_value):
            return (f"the estimator never fell to δ={self.config.threshold:g} "
                    f"(smallest value {self.smallest_value:.4g})")
        return None

    def _decide(self, step, value):
        c = self.config
        if step < c.first_judged_step:
            return Decision(True, Reason.WARMUP, value)
        if not math.isfinite(value):
            return Decision(True, Reason.NON_FINITE, value)
        if self.consecutive_skips >= c.max_skip_steps:
            return Decision(True, Reason.MAX_SKIP, value)
        return Decision(value > c.threshold, Reason.ESTIMATOR, value)

    def _decide_like_reference(self, step, value):
        # The reference's guard looks at the outcomes of the steps from its first judged step on,
        # only once more than four exist, and `mask[-0:]` is the whole list.
        if step < max(self.config.warmup_steps, REFERENCE_FIRST_JUDGED_STEP):
            return Decision(True, Reason.WARMUP, value)
        recent = self.judged[-self.config.max_skip_steps:]
        if len(self.judged) > 4 and not any(recent):
            return Decision(True, Reason.MAX_SKIP, value)
        if not math.isfinite(value):
            return Decision(True, Reason.NON_FINITE, value)
        return Decision(value > self.config.threshold, Reason.ESTIMATOR, value)
