import time
from typing import Callable

import torch

from .interfaces import Decision, PolicyConfig, Reason, RunStatus
from .report import RunReport, StepRecord
from .steps import StepTracker


class AdaptiveRun:
    """State of one sampling run: created when the run starts, dropped when it ends.

    Each network call goes through ``__call__``: read what the host needs (one small read-back per
    call), locate the call's step, let the policy decide on a step's first call (the step's other
    calls follow), then rebuild the output from the reuse, or call the network and store its answer.
    """

    def __init__(self, config: PolicyConfig, schedule, sampler: str = "unknown", lookahead: bool = False,
                 skipping_forbidden: str = "", scale_input: Callable = None,
                 on_step: Callable[[StepRecord], None] = None):
        """on_step is told each step's decision as soon as it is final (for live displays)."""
        self.config = config
        self.tracker = StepTracker(schedule, lookahead)
        self.policy, self.reuse = config.build()
        self.scale_input = scale_input or (lambda sigma, x: x)
        self.skipping_forbidden = skipping_forbidden
        self.skipping = config.disabled_because() is None and not skipping_forbidden
        self.report = RunReport(config, sampler=sampler, schedule_steps=len(self.tracker.schedule) - 1)
        self.decision = None
        self.on_step = on_step
        self.started = time.perf_counter()

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, predict: Callable[[], torch.Tensor]) -> torch.Tensor:
        values = self._read(x, sigma)
        step, starts = self.tracker.locate(values["sigma"])
        if starts:
            values["next_sigma"] = self.tracker.next_sigma(step)
            self._decide(step, values)
        at = self.tracker.position(values["sigma"])
        if self._reusing(x, values, starts):
            return self.reuse.rebuild(x, sigma, at, values)
        denoised = predict()
        if values["sigma"] > 0 and self.skipping:
            self.reuse.store(x, sigma, denoised, at)
        return denoised

    def _read(self, x, sigma):
        """Everything the host needs for this call, by name, in one read-back: σ, and what the
        policy and the reuse peeked on the device."""
        if not self.skipping:
            return {"sigma": float(sigma[0])}
        probes = {"sigma": sigma[0], **self.policy.peek(self.scale_input(sigma, x), sigma), **self.reuse.peek()}
        read = torch.stack([p.float().to(sigma.device) for p in probes.values()]).tolist()
        return dict(zip(probes, read))

    def _decide(self, step, values):
        if self.skipping:
            self.decision = self.policy.decide(step, values)
        else:
            self.decision = Decision(True, Reason.SAMPLER if self.skipping_forbidden else Reason.DISABLED)
        self.report.records.append(StepRecord(step, values["sigma"], self.decision.compute, self.decision.reason,
                                              self.decision.value))

    def _reusing(self, x, values, starts):
        """Whether this call is served by the reuse, with the step's record and the counts kept. A
        skip that cannot be served (numeric trouble, nothing stored) calls the network instead,
        and the step is recorded as computed."""
        record = self.report.records[-1]
        reuse = not self.decision.compute and self._can_reuse(x, values, record)
        if reuse:
            record.reuse = self.reuse.serving(values)
        if starts and self.on_step:
            self.on_step(record)
        record.calls += 1
        self.report.calls_skipped += reuse
        self.report.calls_made += not reuse
        return reuse

    def _can_reuse(self, x, values, record):
        finite = values.get("finite", 1.0) == 1.0
        if values["sigma"] > 0 and finite and self.reuse.can_rebuild(x):
            return True
        self.decision = Decision(True, Reason.NO_CACHE if finite else Reason.NON_FINITE, self.decision.value)
        self.policy.overrule(self.decision)
        record.computed, record.reason = True, self.decision.reason
        return False

    def finish(self, status: RunStatus = RunStatus.COMPLETE) -> RunReport:
        report = self.report
        report.status = status
        report.seconds = time.perf_counter() - self.started
        if report.records and report.computed_steps == len(report.records):
            why = (self.config.disabled_because() or self.skipping_forbidden
                   or self.policy.why_nothing_skipped(len(report.records)))
            if why:
                report.notes.append(f"nothing skipped: {why}")
        report.reuse_fallbacks = self.reuse.fallbacks
        self.reuse.clear()
        self.policy = None
        return report
