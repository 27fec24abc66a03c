"""The reuse strategies on analytic trajectories through a whole run (adaptive_core alone, no
ComfyUI); the cache alone is in test_reuse_memory.py."""
import dataclasses

import pytest
import torch

from reuse_cases import SHAPE, SIGMAS, polynomial_derivative
from adaptive_diffusion.adaptive_core import (AdaptiveRun, CalibratedReuse, REUSE_STRATEGIES, SkipConfig,  # noqa: E402
                                              StepTracker)
from adaptive_diffusion.adaptive_core.reuse import PREDICTORS  # noqa: E402


def euler(derivative_at, config, record=None):
    """Euler's method through AdaptiveRun, as ComfyUI's sampler would call it; returns the last latent."""
    run = AdaptiveRun(config, SIGMAS)
    x = torch.ones(SHAPE, dtype=torch.float64)
    for sigma, next_sigma in zip(SIGMAS, SIGMAS[1:]):
        s = torch.full((SHAPE[0],), sigma, dtype=torch.float64)
        denoised = run(x, s, lambda: x - sigma * derivative_at(sigma))
        x = x + (next_sigma - sigma) * (x - denoised) / sigma
    report = run.finish()
    if record is not None:
        record.append(report)
    return x


@pytest.mark.parametrize("strategy, degree", [("linear", 1), ("lagrange", 1), ("lagrange", 2)])
def test_extrapolation_reproduces_the_full_run_where_it_is_exact(strategy, degree):
    derivative_at = polynomial_derivative(degree)
    full = euler(derivative_at, SkipConfig(threshold=0.0))
    reports = []
    skipped = euler(derivative_at, SkipConfig(threshold=0.5, max_skip_steps=4, reuse=strategy), reports)
    held = euler(derivative_at, SkipConfig(threshold=0.5, max_skip_steps=4, reuse="hold"))
    assert reports[0].calls_skipped >= 20  # most steps reused, so the equality below means something
    assert reports[0].reuse_fallbacks == 0
    torch.testing.assert_close(skipped, full, rtol=1e-12, atol=1e-12)
    assert (held - full).abs().max() > 1e-3


def test_linear_is_not_exact_for_a_quadratic_trajectory():
    derivative_at = polynomial_derivative(2)
    full = euler(derivative_at, SkipConfig(threshold=0.0))
    linear = euler(derivative_at, SkipConfig(threshold=0.5, max_skip_steps=4, reuse="linear"))
    assert (linear - full).abs().max() > 1e-6


def test_schedule_position_is_fractional_between_schedule_sigmas():
    tracker = StepTracker([1.0, 0.5, 0.1, 0.0], lookahead=False)
    assert [tracker.position(s) for s in (1.0, 0.75, 0.5, 0.3, 0.1, 0.0)] == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def test_reference_quirks_always_hold():
    """A skipped step returns x - σ·ε of the last real call, whatever reuse says."""
    derivative_at = polynomial_derivative(1)
    run = AdaptiveRun(SkipConfig(threshold=0.5, max_skip_steps=4, reuse="lagrange", reference_quirks=True), SIGMAS)
    x, last_eps, reused = torch.ones(SHAPE, dtype=torch.float64), None, 0
    for sigma, next_sigma in zip(SIGMAS, SIGMAS[1:]):
        called = []
        s = torch.full((SHAPE[0],), sigma, dtype=torch.float64)
        denoised = run(x, s, lambda: called.append(1) or x - sigma * derivative_at(sigma))
        if called:
            last_eps = derivative_at(sigma)
        else:
            reused += 1
            torch.testing.assert_close(denoised, x - sigma * last_eps, rtol=0, atol=1e-12)
        x = x + (next_sigma - sigma) * (x - denoised) / sigma
    assert reused >= 10 and run.finish().as_dict()["reuse"] == "hold"


def test_unknown_strategy_is_rejected_naming_the_widget():
    with pytest.raises(ValueError, match="^reuse must be one of hold, linear, lagrange, auto"):
        SkipConfig(reuse="cubic")


def test_auto_switches_only_to_a_predictor_measured_clearly_closer():
    cache = CalibratedReuse(REUSE_STRATEGIES["auto"], calibrate=True)
    inf = float("inf")

    def choose(*errors):
        choice, error = cache._choose(torch.tensor(errors))
        return int(choice), round(float(error), 6)
    # the first predictor serves unless another's error is below 0.8 of its own
    assert choose(1.0, 0.85, 0.9) == (0, 1.0)
    assert choose(1.0, 0.79, 0.9) == (1, 0.79)
    assert choose(1.0, 0.7, 0.6) == (2, 0.6)
    assert choose(inf, 0.3, 0.5) == (0, 0.3)  # the first is unmeasured: it serves, judged by the best measured
    assert choose(0.2, inf, inf) == (0, 0.2)


def test_the_predictors_are_the_documented_ones():
    expected = {"hold": ("eps", (0,)), "linear": ("eps", (1, 0)), "lagrange": ("eps", (2, 1, 0)),
                "wide linear": ("eps", (2, 0)), "hold x0": ("x0", (0,)), "linear x0": ("x0", (1, 0)),
                "wide linear x0": ("x0", (2, 0))}
    assert {name: (p.space, p.points) for name, p in PREDICTORS.items()} == expected
    assert REUSE_STRATEGIES["auto"] == ("linear", "hold", "wide linear", "hold x0", "linear x0", "wide linear x0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        PREDICTORS["hold"].points = (1,)
