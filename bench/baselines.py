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
"""
from adaptive_diffusion.adaptive_core.policy import Decision
from adaptive_diffusion.adaptive_core.reuse import NoisePredictionCache, _broadcast, _lagrange


class History(NoisePredictionCache):
    """The last three real calls: schedule position, derivative d and denoised x0."""

    def __init__(self):
        super().__init__("lagrange")
        self.denoised = []

    def store(self, x, sigma, denoised, at):
        if self.times and self.times[-1] == at:
            self.denoised.pop()
        super().store(x, sigma, denoised, at)
        self.denoised = (self.denoised + [denoised.detach()])[-3:]


class SadaCache(History):
    def rebuild(self, x, sigma, at):
        if len(self.times) < 3:
            return x - _broadcast(sigma, x) * self.derivatives[-1]
        return _lagrange(self.times, self.denoised, at)


class SadaPolicy:
    def __init__(self, history, tolerance, max_skips=1, warmup_steps=4):
        self.history, self.tolerance, self.max_skips, self.warmup_steps = history, tolerance, max_skips, warmup_steps
        self.skips = 0

    def decide(self, step, value):
        y = self.history.derivatives
        stable = False
        if step >= self.warmup_steps and len(y) == 3 and self.skips < self.max_skips:
            second = (y[2] - 2 * y[1] + y[0]).norm()
            first = (y[2] - y[1]).norm()
            stable = bool(second <= self.tolerance * first)
        self.skips = self.skips + 1 if stable else 0
        return Decision(not stable, "sada")

    def overrule(self, decision):
        self.skips = 0


def sada(tolerance, max_skips=1):
    def parts():
        history = SadaCache()
        return SadaPolicy(history, tolerance, max_skips), history
    return parts


class ZeusCache(History):
    def __init__(self):
        super().__init__()
        self.step = -1
        self.real_steps = []

    def store(self, x, sigma, denoised, at):
        super().store(x, sigma, denoised, at)
        self.step += 1
        self.real_steps = (self.real_steps + [self.step])[-2:]

    def rebuild(self, x, sigma, at):
        self.step += 1
        y, (before, last) = self.derivatives, ([None] + self.real_steps)[-2:]
        if self.step == last + 1 and before is not None:
            prediction = y[-1] + (y[-1] - y[-2]) / (last - before)
        else:
            prediction = y[-1]
        return x - _broadcast(sigma, x) * prediction


class EveryKth:
    """Fixed-interval reuse: after warm-up, call the network on every k-th step only (ZEUS's
    schedule, and the plain fixed-interval baseline)."""

    def __init__(self, k, warmup_steps=4):
        self.k, self.warmup_steps = k, warmup_steps

    def decide(self, step, value):
        compute = step < self.warmup_steps or (step - self.warmup_steps) % self.k == 0
        return Decision(compute, "interval")

    def overrule(self, decision):
        pass


def zeus(interval):
    def parts():
        return EveryKth(interval), ZeusCache()
    return parts

