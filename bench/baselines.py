"""Step-level parts of two newer training-free step skippers, written from their papers' text
(no code copied), as benchmark baselines only. Both plug into AdaptiveRun as a policy and a cache.

SADA (Jiang et al., ICML 2025, arXiv 2507.17135): a step is skipped when the ODE trajectory is
locally stable, judged from the second-order difference of the solver's gradient y = dx/dσ at the
last real calls; a skipped step's denoised image is reconstructed by Lagrange interpolation of the
last real calls' x0 predictions. We read the criterion as ||Δ²y|| <= τ·||Δy|| on the last three real
calls, with at most ``max_skips`` skips in a row; token-wise pruning (the other half of SADA) is not
a step-level method and is left out.

ZEUS (Wang et al., arXiv 2604.01552): a fixed interleaved schedule; a skipped step predicts the
network output with the affine two-point rule in the step index (ψ̂ = 2ψ_k - ψ_{k-1} for adjacent
real calls; scaled by their distance when they are further apart), and a second skip in the same
window reuses the observed ψ_k instead of chaining extrapolations. ψ here is k-diffusion's
derivative d (ε or velocity): the network output up to the σ scaling. Steps are counted per call,
so this baseline is only run on single-call samplers.

Each baseline is a PolicyConfig (adaptive_core/interfaces.py): the product's patch_model runs it
through the same run and wrappers as the paper's rule.
"""
import dataclasses

from adaptive_diffusion.adaptive_core import (REUSE_STRATEGIES, CalibratedReuse, Decision,
                                              Reason, broadcast_sigma, lagrange)


class Baseline:
    """What every baseline config shares: it always runs, and reports its fields."""

    def disabled_because(self):
        return None

    def settings(self):
        return {"policy": type(self).__name__, **dataclasses.asdict(self)}

    def describe(self):
        return ", ".join(f"{k}={v}" for k, v in self.settings().items())


class BaselinePolicy:
    """A policy that reads nothing back and explains nothing."""

    def peek(self, x, sigma):
        return {}

    def overrule(self, decision):
        pass

    def why_nothing_skipped(self, steps):
        return None


class History(CalibratedReuse):
    """The last three real calls: schedule position, derivative d and denoised x0, unmeasured."""

    def __init__(self):
        super().__init__(REUSE_STRATEGIES["auto"], calibrate=False)

    @property
    def derivatives(self):
        return self.history["eps"]

    @property
    def denoised(self):
        return self.history["x0"]


class SadaCache(History):
    def rebuild(self, x, sigma, at, values):
        if len(self.times) < 3:
            return x - broadcast_sigma(sigma, x) * self.derivatives[-1]
        return lagrange(self.times, self.denoised, at)

    def serving(self, values):
        return "SADA x0 Lagrange"


class SadaPolicy(BaselinePolicy):
    def __init__(self, history, tolerance, max_skips=1, warmup_steps=4):
        self.history, self.tolerance, self.max_skips, self.warmup_steps = history, tolerance, max_skips, warmup_steps
        self.skips = 0

    def decide(self, step, values):
        y = self.history.derivatives
        stable = False
        if step >= self.warmup_steps and len(y) == 3 and self.skips < self.max_skips:
            second = (y[2] - 2 * y[1] + y[0]).norm()
            first = (y[2] - y[1]).norm()
            stable = bool(second <= self.tolerance * first)
        self.skips = self.skips + 1 if stable else 0
        return Decision(not stable, Reason.ESTIMATOR)

    def overrule(self, decision):
        self.skips = 0


@dataclasses.dataclass(frozen=True)
class Sada(Baseline):
    tolerance: float
    max_skips: int = 1

    def build(self):
        history = SadaCache()
        return SadaPolicy(history, self.tolerance, self.max_skips), history


class ZeusCache(History):
    def __init__(self):
        super().__init__()
        self.step = -1
        self.real_steps = []

    def store(self, x, sigma, denoised, at):
        super().store(x, sigma, denoised, at)
        self.step += 1
        self.real_steps = (self.real_steps + [self.step])[-2:]

    def rebuild(self, x, sigma, at, values):
        self.step += 1
        y, (before, last) = self.derivatives, ([None] + self.real_steps)[-2:]
        if self.step == last + 1 and before is not None:
            prediction = y[-1] + (y[-1] - y[-2]) / (last - before)
        else:
            prediction = y[-1]
        return x - broadcast_sigma(sigma, x) * prediction

    def serving(self, values):
        return "ZEUS two-point"


class EveryKth(BaselinePolicy):
    """Fixed-interval reuse: after warm-up, call the network on every k-th step only (ZEUS's
    schedule, and the plain fixed-interval baseline)."""

    def __init__(self, k, warmup_steps=4):
        self.k, self.warmup_steps = k, warmup_steps

    def decide(self, step, values):
        compute = step < self.warmup_steps or (step - self.warmup_steps) % self.k == 0
        return Decision(compute, Reason.SCHEDULE)


@dataclasses.dataclass(frozen=True)
class Zeus(Baseline):
    interval: int

    def build(self):
        return EveryKth(self.interval), ZeusCache()


@dataclasses.dataclass(frozen=True)
class FixedInterval(Baseline):
    """Every k-th step computes, the others hold the last prediction."""
    k: int

    def build(self):
        return EveryKth(self.k), CalibratedReuse(REUSE_STRATEGIES["hold"], calibrate=False)


class ForcedPolicy(BaselinePolicy):
    def __init__(self, skipped):
        self.skipped = skipped

    def decide(self, step, values):
        return Decision(step not in self.skipped, Reason.SCHEDULE)


@dataclasses.dataclass(frozen=True)
class Forced(Baseline):
    """A given set of steps reuses, every other step computes: the greedy oracle's paths, served
    by one of the product's reuse strategies."""
    skipped: frozenset
    reuse: str = "hold"

    def build(self):
        predictors = REUSE_STRATEGIES[self.reuse]
        return ForcedPolicy(self.skipped), CalibratedReuse(predictors, calibrate=len(predictors) > 1)

