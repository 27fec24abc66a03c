import torch

# Strategy name -> polynomial order of the extrapolation (how many real calls it remembers - 1).
REUSE_STRATEGIES = {"hold": 0, "linear": 1, "lagrange": 2}
# An extrapolation that moves the prediction by more than this fraction of its size is not trusted.
MAX_CORRECTION = 0.5


class NoisePredictionCache:
    """What a skipped step reuses: the noise prediction of the last real calls.

    In ComfyUI's parametrisation x = x0 + σ·n (EPS/V) or x = (1-σ)·x0 + σ·n (flow) every call
    returns the denoised estimate D; d = (x - D)/σ is k-diffusion's derivative (ε for EPS/V models,
    the velocity for flow models). A skipped call at (x_t, σ_t) returns D_t = x_t - σ_t·d̂, where d̂ is

    - ``hold`` (order 0, the paper): d of the last real call;
    - ``linear`` (order 1): the line through the last two real calls' d, evaluated at the
      skipped call's time;
    - ``lagrange`` (order 2): the parabola through the last three.

    The time ``at`` is the call's position on the run's schedule in steps (StepTracker.position):
    the schedule is the sampler's own time grid, and along it d varies more evenly than in σ or
    log σ (bench/extrapolation.py measures all three). A higher order is used only when each
    added term is smaller than the one before (a converging series) and the first-order term moves
    d by at most MAX_CORRECTION of its size; otherwise the next lower order is used (counted in
    ``fallbacks``). The checks run on the device: no read-back.

    Holds order + 1 latent-sized tensors between calls; returning the stale D instead would be a
    different, worse approximation.
    """

    def __init__(self, strategy: str):
        self.order = REUSE_STRATEGIES[strategy]
        self.times = []  # schedule positions (host floats) of the remembered real calls, oldest first
        self.derivatives = []
        self.host_fallbacks = 0
        self.device_fallbacks = None

    def store(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor, at: float):
        """Only for σ > 0: at σ = 0 the derivative is undefined."""
        if self.times and self.times[-1] == at:
            # a multi-call sampler evaluating the same σ again (Heun's corrector, then the next step)
            self.times.pop()
            self.derivatives.pop()
        self.times.append(at)
        self.derivatives.append(((x - denoised) / broadcast_sigma(sigma, x)).detach())
        del self.times[:-(self.order + 1)], self.derivatives[:-(self.order + 1)]

    def finite(self) -> torch.Tensor:
        """Whether everything remembered is usable, as a 0-dim tensor (not read back here)."""
        return torch.stack([torch.isfinite(d).all() for d in self.derivatives]).all()

    def can_rebuild(self, x: torch.Tensor) -> bool:
        return bool(self.derivatives) and self.derivatives[-1].shape == x.shape

    def rebuild(self, x: torch.Tensor, sigma: torch.Tensor, at: float) -> torch.Tensor:
        return x - broadcast_sigma(sigma, x) * self.extrapolate(at)

    def extrapolate(self, at: float) -> torch.Tensor:
        held = self.derivatives[-1]
        usable = len(self.times)
        forward = all(a < b for a, b in zip(self.times, self.times[1:])) and at > self.times[-1]
        if not forward or usable < self.order + 1:
            self.host_fallbacks += self.order > 0
            usable = usable if forward else 1
        prediction, lower, accepted, limit = held, held, None, MAX_CORRECTION * held.norm()
        for points in range(2, usable + 1):
            candidate = lagrange(self.times[-points:], self.derivatives[-points:], at)
            change = (candidate - lower).norm()
            ok = change <= limit
            accepted = ok if accepted is None else accepted & ok
            prediction = torch.where(accepted, candidate, prediction)
            lower, limit = candidate, change
        if accepted is not None and usable == self.order + 1:
            missed = (~accepted).to(torch.int32)
            self.device_fallbacks = missed if self.device_fallbacks is None else self.device_fallbacks + missed
        return prediction

    @property
    def fallbacks(self) -> int:
        """Skipped calls that used a lower order than the strategy's (one read-back, at the end)."""
        device = int(self.device_fallbacks) if self.device_fallbacks is not None else 0
        return self.host_fallbacks + device

    def clear(self):
        self.times, self.derivatives = [], []


def lagrange(nodes, values, at):
    """The polynomial through (nodes[i], values[i]) evaluated at ``at``; weights on the host."""
    total = 0
    for i, (node, value) in enumerate(zip(nodes, values)):
        weight = 1.0
        for j, other in enumerate(nodes):
            if j != i:
                weight *= (at - other) / (node - other)
        total = total + weight * value
    return total


def broadcast_sigma(sigma, x):
    """σ of shape (batch,) shaped to multiply x."""
    return sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1)).to(x.dtype)
