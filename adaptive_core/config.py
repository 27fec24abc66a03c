import dataclasses
import math

from .reuse import REUSE_STRATEGIES


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
                      last one (``hold``, the paper) or an extrapolation in σ from the last two
                      (``linear``) or three (``lagrange``) real calls (see reuse.py).
    """
    threshold: float = 0.01
    max_skip_steps: int = 4
    warmup_steps: int = 4
    reference_quirks: bool = False
    reuse: str = "linear"

    def __post_init__(self):
        for problem in self.problems():
            raise ValueError(problem)

    def problems(self):
        return validate(self.threshold, self.max_skip_steps, self.warmup_steps, self.reuse)

    @property
    def enabled(self):
        return self.threshold > 0 and (self.max_skip_steps > 0 or self.reference_quirks)

    @property
    def reuse_strategy(self):
        return "hold" if self.reference_quirks else self.reuse


def validate(threshold, max_skip_steps, warmup_steps, reuse="hold"):
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
