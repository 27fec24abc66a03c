import collections
import dataclasses
import json
import math

from .interfaces import Decision, PolicyConfig, Reason, RunStatus


@dataclasses.dataclass
class StepRecord:
    step: int
    sigma: float
    computed: bool
    reason: Reason
    estimator: float  # what the policy judged before this step; NaN where it could not yet
    calls: int = 0  # network calls (CFG'd model evaluations) this step made or skipped
    reuse: str = None  # the predictor that served a reused step

    @property
    def cell(self):
        return Decision(self.computed, self.reason).cell

    def as_dict(self):
        return {"step": self.step, "sigma": self.sigma, "computed": self.computed, "reason": self.reason,
                "cell": self.cell, "estimator": self.estimator if math.isfinite(self.estimator) else None,
                "calls": self.calls, "reuse": self.reuse}


@dataclasses.dataclass
class RunReport:
    """What one sampling run did: per step computed or reused, and the totals."""
    config: PolicyConfig
    sampler: str = "unknown"
    schedule_steps: int = 0
    records: list = dataclasses.field(default_factory=list)
    calls_made: int = 0
    calls_skipped: int = 0
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole sampling run
    reuse_fallbacks: int = 0  # skipped calls whose extrapolation fell back to a lower order
    status: RunStatus = RunStatus.COMPLETE

    @property
    def full_calls(self):
        return self.calls_made + self.calls_skipped

    @property
    def computed_steps(self):
        return sum(r.computed for r in self.records)

    @property
    def call_ratio(self):
        """Network calls of a full run per call made: the expected speedup."""
        return self.full_calls / self.calls_made if self.calls_made else 1.0

    @property
    def threshold(self):
        """The threshold line the maps draw: the policy's threshold while it can skip, else None."""
        return None if self.config.disabled_because() else self.config.settings().get("threshold")

    def summary(self):
        partial = ("" if self.status == "complete"
                   else f"{self.status.upper()} after {len(self.records)} of {self.schedule_steps} steps, ")
        line = (f"AdaptiveDiffusion: {partial}computed {self.computed_steps}/{len(self.records)} steps "
                f"({self.call_ratio:.2f}x fewer calls), {self.config.describe()}, sampler={self.sampler}")
        return "; ".join([line] + self.notes)

    def as_dict(self):
        return {
            "method": "AdaptiveDiffusion",
            "status": self.status,
            "sampler": self.sampler,
            **self.config.settings(),
            "steps": [r.as_dict() for r in self.records],
            "totals": {
                "steps": len(self.records),
                "schedule_steps": self.schedule_steps,
                "computed_steps": self.computed_steps,
                "reused_steps": len(self.records) - self.computed_steps,
                "network_calls": self.calls_made,
                "full_run_network_calls": self.full_calls,
                "expected_speedup": round(self.call_ratio, 4),
                "sampling_seconds": round(self.seconds, 6),
                "reuse_fallbacks": self.reuse_fallbacks,
                "reused_by": dict(collections.Counter(r.reuse for r in self.records if r.reuse)),
            },
            "notes": list(self.notes),
            "summary": self.summary(),
        }

    def to_json(self):
        return json.dumps(self.as_dict(), indent=1, ensure_ascii=False)
