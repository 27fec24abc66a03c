import math
from typing import Callable

import torch

from .config import SkipConfig
from .estimator import ThirdOrderEstimator
from .policy import Decision, SkipPolicy
from .report import RunReport, StepRecord
from .reuse import NoisePredictionCache
from .steps import StepTracker


class AdaptiveRun:
    """State of one sampling run: created when the run starts, dropped when it ends.

    Each network call goes through ``__call__``; the first call of a step asks the policy whether
    the step computes, the step's other calls follow that decision. Per call it reads one small
    tensor back to the host (sigma, estimator value, whether the cached prediction is finite).
    """

    def __init__(self, config: SkipConfig, schedule, sampler: str = "unknown", lookahead: bool = False,
                 skipping_forbidden: str = "", scale_input: Callable = None, policy=None, cache=None,
                 on_step: Callable[[StepRecord], None] = None):
        """policy and cache default to the paper's; anything with their methods can stand in.
        on_step is told each step's decision as soon as it is final (for live displays)."""
        self.config = config
        self.tracker = StepTracker(schedule, lookahead)
        self.estimator = ThirdOrderEstimator()
        self.policy = policy or SkipPolicy(config)
        self.cache = cache or NoisePredictionCache(config.reuse_strategy)
        self.cache_finite = None
        self.scale_input = scale_input or (lambda sigma, x: x)
        self.skipping_forbidden = skipping_forbidden
        self.report = RunReport(config, sampler=sampler, schedule_steps=len(self.tracker.schedule) - 1)
        self.decision = Decision(True, "warmup")
        self.smallest_value = math.inf
        self.on_step = on_step

    @property
    def skipping(self):
        return self.config.enabled and not self.skipping_forbidden

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, predict: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.skipping:
            # Peeked before we know whether this call starts a step, so that sigma, the estimator
            # value and the cache's health come back in one read; intermediate calls discard it.
            scaled = self.scale_input(sigma, x)
            value, difference = self.estimator.peek(scaled)
            cache_finite = self.cache_finite if self.cache_finite is not None else torch.ones((), dtype=torch.bool, device=x.device)
            sigma_value, value, finite = torch.stack(
                [sigma[0].float(), value.float().to(sigma.device), cache_finite.float().to(sigma.device)]).tolist()
        else:
            sigma_value, value, finite = float(sigma[0]), math.nan, 1.0

        step, starts = self.tracker.locate(sigma_value)
        if starts:
            if self.skipping:
                self.estimator.commit(scaled, difference)
                self.decision = self.policy.decide(step, value)
                if math.isfinite(value):
                    self.smallest_value = min(self.smallest_value, value)
            else:
                self.decision = Decision(True, "sampler" if self.skipping_forbidden else "disabled")
            self.report.records.append(StepRecord(step, sigma_value, self.decision.compute, self.decision.reason, value))
        record = self.report.records[-1]

        reuse = not self.decision.compute and sigma_value > 0 and finite == 1.0 and self.cache.can_rebuild(x)
        if not self.decision.compute and not reuse:
            # Numeric trouble or nothing to reuse: fall back to a real call, never propagate it.
            self.decision = Decision(True, "no_cache" if finite == 1.0 else "non_finite")
            self.policy.overrule(self.decision)
            record.computed, record.reason = True, self.decision.reason
        if starts and self.on_step:
            self.on_step(record)
        record.calls += 1
        if reuse:
            self.report.calls_skipped += 1
            return self.cache.rebuild(x, sigma, self.tracker.position(sigma_value))

        self.report.calls_made += 1
        denoised = predict()
        if sigma_value > 0 and self.skipping:
            self.cache.store(x, sigma, denoised, self.tracker.position(sigma_value))
            self.cache_finite = self.cache.finite()
        return denoised

    def finish(self, status: str = "complete") -> RunReport:
        report, c = self.report, self.config
        report.status = status
        if report.records and report.computed_steps == len(report.records):
            if c.threshold <= 0:
                report.notes.append("nothing skipped: threshold is 0 (skipping disabled)")
            elif c.max_skip_steps == 0 and not c.reference_quirks:
                report.notes.append("nothing skipped: max_skip_steps is 0")
            elif self.skipping_forbidden:
                report.notes.append(f"nothing skipped: {self.skipping_forbidden}")
            elif len(report.records) <= max(c.warmup_steps, 3):
                report.notes.append(f"nothing skipped: all {len(report.records)} steps are warm-up steps "
                                    f"(warmup_steps={c.warmup_steps}; the estimator needs 4 latents)")
            elif math.isfinite(self.smallest_value):
                report.notes.append(f"nothing skipped: the estimator never fell to δ={c.threshold:g} "
                                    f"(smallest value {self.smallest_value:.4g})")
        report.reuse_fallbacks = self.cache.fallbacks
        self.cache.clear()
        self.estimator = None
        return report
