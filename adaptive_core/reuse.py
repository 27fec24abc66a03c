"""What a skipped call returns in place of the network's output, and how well each way has done.

Every call returns the denoised estimate D at (x, σ); d = (x - D)/σ is k-diffusion's derivative
(ε for EPS/V models, the velocity for flow models). A skipped call at (x_t, σ_t) returns a D̂_t
made from the last real calls by one of the predictors below; ``t`` is the call's position on the
run's schedule in steps (StepTracker.position), the sampler's own time grid.

A predictor extrapolates either d (then D̂ = x_t - σ_t·d̂) or D itself (what SADA extrapolates;
its hold is the stale denoised image ComfyUI-AccelDiff reuses) with the polynomial through the
last 1, 2 or 3 real calls, or the line through the newest and the oldest of three (a wider base
averages out the step-to-step jitter that a line through neighbours amplifies). A higher order is
used only where each added term is smaller than the one before (a converging series) and the
first-order term moves the value by at most MAX_CORRECTION of its size; otherwise the lower order
is (counted in ``fallbacks``). All of it runs on the device.

The reuse also calibrates itself: at each real call it rebuilds what every predictor would have
returned and keeps, per predictor, a running relative error ||D̂ - D|| / ||D|| per step of distance
from the last real call (t - t_last). A skip is served by the predictor with the smallest one, and
that error is what the error-controlled policy judges.
"""
import dataclasses
import math

import torch

# An extrapolation that moves the value by more than this fraction of its size is not trusted.
MAX_CORRECTION = 0.5
# Weight of the newest measurement in each predictor's running error.
NEWEST = 0.5
# Several predictors: the first serves until another has been measured clearly closer (by this
# factor), so that measurement noise does not switch between predictors that do about as well.
SWITCH_MARGIN = 0.8


@dataclasses.dataclass(frozen=True)
class Predictor:
    name: str
    space: str  # "eps": extrapolates d; "x0": extrapolates D
    points: tuple  # which remembered calls, counted back from the newest (0)

    @property
    def needs(self):
        return max(self.points) + 1


PREDICTORS = {p.name: p for p in (
    Predictor("hold", "eps", (0,)), Predictor("linear", "eps", (1, 0)), Predictor("lagrange", "eps", (2, 1, 0)),
    Predictor("wide linear", "eps", (2, 0)), Predictor("hold x0", "x0", (0,)), Predictor("linear x0", "x0", (1, 0)),
    Predictor("wide linear x0", "x0", (2, 0)))}
# The reuse widget: one fixed predictor, or ``auto``, the others with self-calibration. Lagrange is
# left out of ``auto``: its error measured over one window is a poor guide to the next one on long
# skip runs (2.5-3x fewer calls lost 2-3 dB on the Wan demo when auto could pick it, docs/bench/).
REUSE_STRATEGIES = {"hold": ("hold",), "linear": ("linear",), "lagrange": ("lagrange",),
                    "auto": ("linear",) + tuple(name for name in PREDICTORS if name not in ("linear", "lagrange"))}


class CalibratedReuse:
    """Remembers the last real calls (at most 3 d and, for x0 predictors, 3 D: one latent-sized
    tensor each) and serves skipped calls from them with the named predictors.

    ``calibrate`` turns the measuring on, which choosing among several predictors and the
    error-controlled policy need; without it only the (first) predictor runs.
    """

    def __init__(self, predictors, calibrate: bool):
        self.predictors = [PREDICTORS[name] for name in predictors]
        self.keep = max(p.needs for p in self.predictors)
        self.calibrate = calibrate
        self.spaces = {p.space for p in self.predictors}
        self.clear()
        self.probes = {}  # what peek returns, made once per real call
        self.host_fallbacks = 0
        self.device_fallbacks = None

    def store(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor, at: float):
        """A real call's output; only for σ > 0 (at σ = 0 the derivative is undefined)."""
        if self.times and self.times[-1] == at:
            # a multi-call sampler evaluating the same σ again (Heun's corrector, then the next step)
            self._forget_newest()
        if self.calibrate and self.times and at > self.times[-1]:
            self._measure(x, sigma, denoised, at)
        self.times.append(at)
        self.history["eps"].append(((x - denoised) / broadcast_sigma(sigma, x)).detach())
        if "x0" in self.spaces:
            self.history["x0"].append(denoised.detach())
        del self.times[:-self.keep]
        for values in self.history.values():
            del values[:-self.keep]
        finite = torch.stack([torch.isfinite(v).all() for values in self.history.values() for v in values]).all()
        self.probes = {"finite": finite}
        if self.errors is not None:
            self.probes["choice"], self.probes["error"] = self._choose(self.errors)

    def peek(self) -> dict:
        """What the host needs before a step, as 0-dim device tensors (read together with the
        run's other values, never on their own): whether the memory is finite and, once measured,
        the best predictor and its running error per step of distance."""
        return self.probes

    @property
    def last_call(self) -> float:
        return self.times[-1]

    def can_rebuild(self, x: torch.Tensor) -> bool:
        return bool(self.times) and self.history["eps"][-1].shape == x.shape

    def rebuild(self, x: torch.Tensor, sigma: torch.Tensor, at: float, values: dict) -> torch.Tensor:
        """D̂ at this call from the predictor peek chose, counting fallbacks."""
        prediction, accepted = self._predict(self._serving(values), x, sigma, at)
        if accepted is not None:
            missed = (~accepted).to(torch.int32)
            self.device_fallbacks = missed if self.device_fallbacks is None else self.device_fallbacks + missed
        return prediction

    def serving(self, values: dict) -> str:
        return self._serving(values).name

    def _serving(self, values):
        return self.predictors[int(values.get("choice", 0))]

    @property
    def fallbacks(self) -> int:
        """Skipped calls that used a lower order than their predictor's (one read-back, at the end)."""
        device = int(self.device_fallbacks) if self.device_fallbacks is not None else 0
        return self.host_fallbacks + device

    def clear(self):
        self.times = []  # schedule positions (host floats) of the remembered real calls, oldest first
        self.history = {"eps": [], "x0": []}
        self.errors = None  # per predictor, on the device: running error per step of distance (inf: none yet)

    def _choose(self, errors):
        """(the predictor to serve, the error the policy should expect of it), on the device. The
        first predictor serves while unmeasured, judged by the smallest error measured so far."""
        handicap = torch.full_like(errors, 1 / SWITCH_MARGIN)
        handicap[0] = 1.0
        choice = torch.where(torch.isinf(errors[0]), torch.zeros((), dtype=torch.long, device=errors.device),
                             (errors * handicap).argmin())
        error = torch.where(torch.isinf(errors[choice]), errors.min(), errors[choice])
        return choice, error

    def _forget_newest(self):
        self.times.pop()
        for values in self.history.values():
            if values:
                values.pop()

    def _predict(self, predictor, x, sigma, at, counting=True):
        """(D̂, whether the predictor's full order was accepted, as a 0-dim tensor; None where the
        history was too short or out of order, which falls back on the host)."""
        points = [i for i in predictor.points if i < len(self.times)]
        forward = self._forward(at)
        full = len(points) == len(predictor.points) and forward
        if not full:
            self.host_fallbacks += counting and len(predictor.points) > 1
            points = points if forward else [0]
        times = [self.times[-1 - i] for i in points]
        values = [self.history[predictor.space][-1 - i] for i in points]
        value, accepted = guarded_extrapolation(times, values, at)
        accepted = accepted if full else None
        if predictor.space == "eps":
            value = x - broadcast_sigma(sigma, x) * value
        return value, accepted

    def _forward(self, at):
        return all(a < b for a, b in zip(self.times, self.times[1:])) and at > self.times[-1]

    def _measure(self, x, sigma, denoised, at):
        """Each predictor's relative error of this call's denoised output, per step of distance, into
        its running error. A predictor without enough history yet is not measured."""
        size = denoised.norm()
        distance = at - self.times[-1]
        measured = []
        for predictor in self.predictors:
            if predictor.needs > len(self.times):
                measured.append(torch.full((), math.inf, device=x.device))
                continue
            rebuilt, _ = self._predict(predictor, x, sigma, at, counting=False)
            measured.append((rebuilt - denoised).norm() / size / distance)
        measured = torch.stack(measured).float()
        # NaN (a zero output) counts as unmeasured, like inf
        measured = torch.where(torch.isfinite(measured), measured, torch.full_like(measured, math.inf))
        if self.errors is None:
            self.errors = measured
        else:
            blended = NEWEST * measured + (1 - NEWEST) * self.errors
            self.errors = torch.where(torch.isinf(self.errors), measured,
                                      torch.where(torch.isinf(measured), self.errors, blended))


def guarded_extrapolation(times, values, at):
    """The polynomial through (times, values) at ``at``, each order used only while the series
    converges (see the module docstring); (value, accepted 0-dim tensor or None for one point)."""
    held = values[-1]
    prediction, lower, accepted, limit = held, held, None, MAX_CORRECTION * held.norm()
    for count in range(2, len(times) + 1):
        candidate = lagrange(times[-count:], values[-count:], at)
        change = (candidate - lower).norm()
        ok = change <= limit
        accepted = ok if accepted is None else accepted & ok
        prediction = torch.where(accepted, candidate, prediction)
        lower, limit = candidate, change
    return prediction, accepted


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
    return sigma.reshape((-1,) + (1,) * (x.ndim - 1)).to(x.dtype)
