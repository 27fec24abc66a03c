import dataclasses
import json
import math

from .config import SkipConfig


@dataclasses.dataclass
class StepRecord:
    step: int
    sigma: float
    computed: bool
    reason: str
    estimator: float  # r_k seen before this step; NaN where it could not be computed yet
    calls: int = 0  # network calls (CFG'd model evaluations) this step made or skipped

    def as_dict(self):
        return {"step": self.step, "sigma": self.sigma, "computed": self.computed, "reason": self.reason,
                "estimator": self.estimator if math.isfinite(self.estimator) else None,
                "calls": self.calls}


@dataclasses.dataclass
class RunReport:
    """What one sampling run did: per step computed or reused, and the totals."""
    config: SkipConfig
    sampler: str = "unknown"
    schedule_steps: int = 0
    records: list = dataclasses.field(default_factory=list)
    calls_made: int = 0
    calls_skipped: int = 0
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole sampling run
    reuse_fallbacks: int = 0  # skipped calls whose extrapolation fell back to a lower order
    status: str = "complete"  # or "interrupted" (cancelled by the user), "failed" (an error ended it)

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

    def summary(self):
        c = self.config
        partial = ("" if self.status == "complete"
                   else f"{self.status.upper()} after {len(self.records)} of {self.schedule_steps} steps, ")
        line = (f"AdaptiveDiffusion: {partial}computed {self.computed_steps}/{len(self.records)} steps "
                f"({self.call_ratio:.2f}x fewer calls), δ={c.threshold:g}, C_max={c.max_skip_steps}, "
                f"warmup={c.warmup_steps}, reuse={c.reuse_strategy}, sampler={self.sampler}")
        return "; ".join([line] + self.notes)

    def as_dict(self):
        c = self.config
        return {
            "method": "AdaptiveDiffusion",
            "status": self.status,
            "sampler": self.sampler,
            "threshold": c.threshold,
            "max_skip_steps": c.max_skip_steps,
            "warmup_steps": c.warmup_steps,
            "reference_quirks": c.reference_quirks,
            "reuse": c.reuse_strategy,
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
            },
            "notes": list(self.notes),
            "summary": self.summary(),
        }

    def to_json(self):
        return json.dumps(self.as_dict(), indent=1, ensure_ascii=False)
