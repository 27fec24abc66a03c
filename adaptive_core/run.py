import math
import time
from typing import Callable

import torch

from .estimator import ThirdOrderEstimator
from .interfaces import Decision, PolicyConfig, Reason, RunStatus
from .report import RunReport, StepRecord
from .steps import StepTracker


class AdaptiveRun:
    """State of one sampling run: created when the run starts, dropped when it ends.

    Each network call goes through ``__call__``: locate its step, let the policy decide on a step's
    first call (the step's other calls follow), then either rebuild the prediction from the reuse
    or call the network and store what it returned. Per call it reads one small tensor back to the
    host (sigma, estimator value, whether the stored prediction is finite).
    """

    def __init__(self, config: PolicyConfig, schedule, sampler: str = "unknown", lookahead: bool = False,
                 skipping_forbidden: str = "", scale_input: Callable = None,
                 on_step: Callable[[StepRecord], None] = None):
        """on_step is told each step's decision as soon as it is final (for live displays)."""
        self.config = config
        self.tracker = StepTracker(schedule, lookahead)
        self.estimator = ThirdOrderEstimator()
        self.policy, self.cache = config.build()
        self.cache_finite = None
        self.scale_input = scale_input or (lambda sigma, x: x)
        self.skipping_forbidden = skipping_forbidden
        self.skipping = config.disabled_because() is None and not skipping_forbidden
        self.report = RunReport(config, sampler=sampler, schedule_steps=len(self.tracker.schedule) - 1)
        self.decision = None
        self.on_step = on_step
        self.started = time.perf_counter()

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, predict: Callable[[], torch.Tensor]) -> torch.Tensor:
        sigma_value, value, finite, pending = self._read(x, sigma)
        step, starts = self.tracker.locate(sigma_value)
        if starts:
            self._decide(step, sigma_value, value, pending)
        record = self.report.records[-1]
        reuse = not self.decision.compute and sigma_value > 0 and finite and self.cache.can_rebuild(x)
        if not self.decision.compute and not reuse:
            # Numeric trouble or nothing to reuse: fall back to a real call, never propagate it.
            self.decision = Decision(True, Reason.NO_CACHE if finite else Reason.NON_FINITE)
            self.policy.overrule(self.decision)
            record.computed, record.reason = True, self.decision.reason
        if starts and self.on_step:
            self.on_step(record)
        record.calls += 1
        at = self.tracker.position(sigma_value)
        if reuse:
            self.report.calls_skipped += 1
            return self.cache.rebuild(x, sigma, at)
        self.report.calls_made += 1
        denoised = predict()
        if sigma_value > 0 and self.skipping:
            self.cache.store(x, sigma, denoised, at)
            self.cache_finite = self.cache.finite()
        return denoised

    def _read(self, x, sigma):
        """sigma, the estimator value and whether the stored prediction is finite, in one read-back;
        and the estimator's pending state. Peeked before we know whether this call starts a step,
        so that one read does; a step's later calls discard it."""
        if not self.skipping:
            return float(sigma[0]), math.nan, True, None
        scaled = self.scale_input(sigma, x)
        value, difference = self.estimator.peek(scaled)
        finite = self.cache_finite if self.cache_finite is not None else torch.ones((), dtype=torch.bool)
        sigma_value, value, finite = torch.stack(
            [sigma[0].float(), value.float().to(sigma.device), finite.float().to(sigma.device)]).tolist()
        return sigma_value, value, finite == 1.0, (scaled, difference)

    def _decide(self, step, sigma_value, value, pending):
        if self.skipping:
            self.estimator.commit(*pending)
            self.decision = self.policy.decide(step, value)
        else:
            self.decision = Decision(True, Reason.SAMPLER if self.skipping_forbidden else Reason.DISABLED)
        self.report.records.append(StepRecord(step, sigma_value, self.decision.compute, self.decision.reason, value))

    def finish(self, status: RunStatus = RunStatus.COMPLETE) -> RunReport:
        report = self.report
        report.status = status
        report.seconds = time.perf_counter() - self.started
        if report.records and report.computed_steps == len(report.records):
            why = (self.config.disabled_because() or self.skipping_forbidden
                   or self.policy.why_nothing_skipped(len(report.records)))
            if why:
                report.notes.append(f"nothing skipped: {why}")
        report.reuse_fallbacks = self.cache.fallbacks
        self.cache.clear()
        self.estimator = None
        return report
