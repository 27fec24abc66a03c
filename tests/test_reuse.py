"""The reuse strategies on analytic trajectories (adaptive_core alone, no ComfyUI)."""
import dataclasses

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import (AdaptiveRun, CalibratedReuse, REUSE_STRATEGIES, SkipConfig,  # noqa: E402
                                              StepTracker)
from adaptive_diffusion.adaptive_core.reuse import PREDICTORS  # noqa: E402

# latent-sized tensors each strategy may keep between calls (the README's memory table)
KEPT = {"hold": 1, "linear": 2, "lagrange": 3}

# exact in float32: AdaptiveRun reads σ back from the device as float32, as ComfyUI's sigmas are
SIGMAS = [i / 32 for i in range(32, -1, -1)]
SHAPE = (2, 4, 6, 6)


def polynomial_derivative(degree, seed=0):
    """d(σ) = a + b σ + c σ² (up to ``degree``): a network whose noise prediction is exactly polynomial in σ,
    and so in the schedule position, which is affine in σ on the uniform schedule below."""
    g = torch.Generator().manual_seed(seed)
    coefficients = [torch.randn(SHAPE, generator=g, dtype=torch.float64) * scale
                    for scale in (1.0, 0.3, 0.1)[:degree + 1]]
    return lambda sigma: sum(c * sigma ** i for i, c in enumerate(coefficients))


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


def _stored(strategy, history):
    """A cache that saw real calls at these (schedule position, constant derivative value); σ = 1."""
    cache = CalibratedReuse(REUSE_STRATEGIES[strategy], calibrate=False)
    x, sigma = torch.zeros(SHAPE, dtype=torch.float64), torch.ones(SHAPE[0], dtype=torch.float64)
    for at, value in history:
        cache.store(x, sigma, x - torch.full(SHAPE, value, dtype=torch.float64), at)
    return cache


def _rebuilt_derivative(cache, at):
    x = torch.zeros(SHAPE, dtype=torch.float64)
    return -cache.rebuild(x, torch.ones(SHAPE[0], dtype=torch.float64), at, {})


def test_unstable_history_falls_back_to_hold():
    # d jumps from +1 to -1 in one step: the line would predict -3 a step later, three times the held value
    cache = _stored("linear", [(1, 1.0), (2, -1.0)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 3), torch.full(SHAPE, -1.0, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_diverging_second_order_falls_back_to_the_line():
    # the parabola's term is larger than the line's: the line through the last two is used
    cache = _stored("lagrange", [(1, 1.0), (2, 1.5), (3, 1.55)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.6, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_history_out_of_sampling_order_holds():
    cache = _stored("lagrange", [(3, 1.0), (1, 1.1), (2, 1.2)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.2, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_repeated_position_replaces_instead_of_dividing_by_zero():
    # Heun's corrector evaluates σ_{k+1}, then the next step evaluates it again
    cache = _stored("lagrange", [(1, 1.0), (2, 1.1), (2, 1.1), (3, 1.2)])
    assert cache.times == [1, 2, 3]
    torch.testing.assert_close(_rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.3, dtype=torch.float64))


def test_schedule_position_is_fractional_between_schedule_sigmas():
    tracker = StepTracker([1.0, 0.5, 0.1, 0.0], lookahead=False)
    assert [tracker.position(s) for s in (1.0, 0.75, 0.5, 0.3, 0.1, 0.0)] == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


@pytest.mark.parametrize("strategy", list(KEPT))
def test_memory_bound_is_what_the_readme_says(strategy):
    cache = _stored(strategy, [(i, float(i)) for i in range(30)])
    assert len(cache.history["eps"]) == KEPT[strategy] and not cache.history["x0"]
    run = AdaptiveRun(SkipConfig(threshold=0.5, reuse=strategy), SIGMAS)
    derivative_at = polynomial_derivative(1)
    x = torch.ones(SHAPE, dtype=torch.float64)
    for sigma, next_sigma in zip(SIGMAS, SIGMAS[1:]):
        denoised = run(x, torch.full((SHAPE[0],), sigma, dtype=torch.float64), lambda: x - sigma * derivative_at(sigma))
        assert len(run.reuse.history["eps"]) <= KEPT[strategy]
        x = x + (next_sigma - sigma) * (x - denoised) / sigma


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


@pytest.mark.parametrize("before,expected", [(0.6, 1.4), (0.5, 1.5), (0.4, 1.0)])
def test_a_line_may_move_the_value_by_at_most_half_its_size(before, expected):
    # held 1.0: the line through (1, before) and (2, 1.0) moves it by 1 - before at position 3
    cache = _stored("linear", [(1, before), (2, 1.0)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 3), torch.full(SHAPE, expected, dtype=torch.float64))
    assert cache.fallbacks == (expected == 1.0)


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


def test_without_calibration_nothing_is_measured():
    cache = _stored("linear", [(1, 1.0), (2, 1.1), (3, 1.2)])
    assert cache.errors is None and set(cache.peek()) == {"finite"} and bool(cache.peek()["finite"])


def test_a_non_finite_memory_is_reported_to_the_run():
    cache = _stored("linear", [(1, 1.0), (2, float("nan"))])
    assert not bool(cache.peek()["finite"])


def test_rebuild_needs_a_remembered_call_of_the_same_shape():
    cache = CalibratedReuse(REUSE_STRATEGIES["hold"], calibrate=False)
    x = torch.zeros(SHAPE, dtype=torch.float64)
    assert not cache.can_rebuild(x)
    cache.store(x, torch.ones(SHAPE[0], dtype=torch.float64), x - 1.0, 1)
    assert cache.can_rebuild(x) and not cache.can_rebuild(torch.zeros(1, 4, 6, 6, dtype=torch.float64))


def test_every_refused_extrapolation_is_counted():
    cache = _stored("linear", [(1, 1.0), (2, -1.0)])
    for at in (3, 4, 5):
        torch.testing.assert_close(_rebuilt_derivative(cache, at), torch.full(SHAPE, -1.0, dtype=torch.float64))
    assert cache.fallbacks == 3


def test_lagrange_with_two_calls_uses_the_line_through_them():
    cache = _stored("lagrange", [(1, 1.0), (2, 1.1)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.3, dtype=torch.float64))
    assert cache.fallbacks == 1  # counted on the host: the history was too short for its order


def test_fallbacks_on_the_host_add_up_and_count_only_predictors_with_a_lower_order():
    two_calls = _stored("lagrange", [(1, 1.0), (2, 1.1)])
    for at in (4, 5):
        _rebuilt_derivative(two_calls, at)
    assert two_calls.fallbacks == 2
    one_call = _stored("linear", [(1, 1.0)])
    torch.testing.assert_close(_rebuilt_derivative(one_call, 3), torch.full(SHAPE, 1.0, dtype=torch.float64))
    assert one_call.fallbacks == 1
    behind = _stored("hold", [(2, 1.0)])  # hold has no lower order to fall back on, even behind its call
    torch.testing.assert_close(_rebuilt_derivative(behind, 1), torch.full(SHAPE, 1.0, dtype=torch.float64))
    assert behind.fallbacks == 0


def test_a_history_out_of_order_anywhere_holds():
    # positions 1, 3, 2: the newest pair is out of order though the oldest and newest are not
    cache = _stored("lagrange", [(1, 1.0), (3, 1.1), (2, 1.2)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.2, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_a_skip_at_the_last_calls_own_position_holds_it():
    cache = _stored("linear", [(1, 1.0), (2, 1.5)])
    torch.testing.assert_close(_rebuilt_derivative(cache, 2), torch.full(SHAPE, 1.5, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_a_cleared_memory_starts_again():
    cache = _stored("linear", [(1, 1.0), (2, 1.1)])
    cache.clear()
    assert cache.times == [] and cache.errors is None and not cache.can_rebuild(torch.zeros(SHAPE))
    x, sigma = torch.zeros(SHAPE, dtype=torch.float64), torch.ones(SHAPE[0], dtype=torch.float64)
    for at, value in ((5, 2.0), (6, 2.5)):
        cache.store(x, sigma, x - value, at)
    torch.testing.assert_close(_rebuilt_derivative(cache, 7), torch.full(SHAPE, 3.0, dtype=torch.float64))


def test_measuring_counts_no_fallback():
    # positions 3, 1, 2: the measurement at 2 extrapolates from an out-of-order history, on the host
    cache = CalibratedReuse(REUSE_STRATEGIES["linear"], calibrate=True)
    x, sigma = torch.zeros(SHAPE, dtype=torch.float64), torch.ones(SHAPE[0], dtype=torch.float64)
    for at in (3, 1, 2):
        cache.store(x, sigma, x - 1.0, at)
    assert cache.errors is not None and cache.fallbacks == 0
