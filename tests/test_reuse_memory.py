"""The reuse cache alone (adaptive_core, no ComfyUI): what it remembers, when it refuses to
extrapolate and falls back, and what it counts."""
import pytest
import torch

from reuse_cases import SHAPE, SIGMAS, polynomial_derivative, rebuilt_derivative, stored
from adaptive_diffusion.adaptive_core import AdaptiveRun, CalibratedReuse, REUSE_STRATEGIES, SkipConfig  # noqa: E402

# latent-sized tensors each strategy may keep between calls (the README's memory table)
KEPT = {"hold": 1, "linear": 2, "lagrange": 3}


def test_unstable_history_falls_back_to_hold():
    # d jumps from +1 to -1 in one step: the line would predict -3 a step later, three times the held value
    cache = stored("linear", [(1, 1.0), (2, -1.0)])
    torch.testing.assert_close(rebuilt_derivative(cache, 3), torch.full(SHAPE, -1.0, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_diverging_second_order_falls_back_to_the_line():
    # the parabola's term is larger than the line's: the line through the last two is used
    cache = stored("lagrange", [(1, 1.0), (2, 1.5), (3, 1.55)])
    torch.testing.assert_close(rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.6, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_history_out_of_sampling_order_holds():
    cache = stored("lagrange", [(3, 1.0), (1, 1.1), (2, 1.2)])
    torch.testing.assert_close(rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.2, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_repeated_position_replaces_instead_of_dividing_by_zero():
    # Heun's corrector evaluates σ_{k+1}, then the next step evaluates it again
    cache = stored("lagrange", [(1, 1.0), (2, 1.1), (2, 1.1), (3, 1.2)])
    assert cache.times == [1, 2, 3]
    torch.testing.assert_close(rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.3, dtype=torch.float64))


@pytest.mark.parametrize("strategy", list(KEPT))
def test_memory_bound_is_what_the_readme_says(strategy):
    cache = stored(strategy, [(i, float(i)) for i in range(30)])
    assert len(cache.history["eps"]) == KEPT[strategy] and not cache.history["x0"]
    run = AdaptiveRun(SkipConfig(threshold=0.5, reuse=strategy), SIGMAS)
    derivative_at = polynomial_derivative(1)
    x = torch.ones(SHAPE, dtype=torch.float64)
    for sigma, next_sigma in zip(SIGMAS, SIGMAS[1:]):
        denoised = run(x, torch.full((SHAPE[0],), sigma, dtype=torch.float64), lambda: x - sigma * derivative_at(sigma))
        assert len(run.reuse.history["eps"]) <= KEPT[strategy]
        x = x + (next_sigma - sigma) * (x - denoised) / sigma


@pytest.mark.parametrize("before,expected", [(0.6, 1.4), (0.5, 1.5), (0.4, 1.0)])
def test_a_line_may_move_the_value_by_at_most_half_its_size(before, expected):
    # held 1.0: the line through (1, before) and (2, 1.0) moves it by 1 - before at position 3
    cache = stored("linear", [(1, before), (2, 1.0)])
    torch.testing.assert_close(rebuilt_derivative(cache, 3), torch.full(SHAPE, expected, dtype=torch.float64))
    assert cache.fallbacks == (expected == 1.0)


def test_without_calibration_nothing_is_measured():
    cache = stored("linear", [(1, 1.0), (2, 1.1), (3, 1.2)])
    assert cache.errors is None and set(cache.peek()) == {"finite"} and bool(cache.peek()["finite"])


def test_a_non_finite_memory_is_reported_to_the_run():
    cache = stored("linear", [(1, 1.0), (2, float("nan"))])
    assert not bool(cache.peek()["finite"])


def test_rebuild_needs_a_remembered_call_of_the_same_shape():
    cache = CalibratedReuse(REUSE_STRATEGIES["hold"], calibrate=False)
    x = torch.zeros(SHAPE, dtype=torch.float64)
    assert not cache.can_rebuild(x)
    cache.store(x, torch.ones(SHAPE[0], dtype=torch.float64), x - 1.0, 1)
    assert cache.can_rebuild(x) and not cache.can_rebuild(torch.zeros(1, 4, 6, 6, dtype=torch.float64))


def test_every_refused_extrapolation_is_counted():
    cache = stored("linear", [(1, 1.0), (2, -1.0)])
    for at in (3, 4, 5):
        torch.testing.assert_close(rebuilt_derivative(cache, at), torch.full(SHAPE, -1.0, dtype=torch.float64))
    assert cache.fallbacks == 3


def test_lagrange_with_two_calls_uses_the_line_through_them():
    cache = stored("lagrange", [(1, 1.0), (2, 1.1)])
    torch.testing.assert_close(rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.3, dtype=torch.float64))
    assert cache.fallbacks == 1  # counted on the host: the history was too short for its order


def test_fallbacks_on_the_host_add_up_and_count_only_predictors_with_a_lower_order():
    two_calls = stored("lagrange", [(1, 1.0), (2, 1.1)])
    for at in (4, 5):
        rebuilt_derivative(two_calls, at)
    assert two_calls.fallbacks == 2
    one_call = stored("linear", [(1, 1.0)])
    torch.testing.assert_close(rebuilt_derivative(one_call, 3), torch.full(SHAPE, 1.0, dtype=torch.float64))
    assert one_call.fallbacks == 1
    behind = stored("hold", [(2, 1.0)])  # hold has no lower order to fall back on, even behind its call
    torch.testing.assert_close(rebuilt_derivative(behind, 1), torch.full(SHAPE, 1.0, dtype=torch.float64))
    assert behind.fallbacks == 0


def test_a_history_out_of_order_anywhere_holds():
    # positions 1, 3, 2: the newest pair is out of order though the oldest and newest are not
    cache = stored("lagrange", [(1, 1.0), (3, 1.1), (2, 1.2)])
    torch.testing.assert_close(rebuilt_derivative(cache, 4), torch.full(SHAPE, 1.2, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_a_skip_at_the_last_calls_own_position_holds_it():
    cache = stored("linear", [(1, 1.0), (2, 1.5)])
    torch.testing.assert_close(rebuilt_derivative(cache, 2), torch.full(SHAPE, 1.5, dtype=torch.float64))
    assert cache.fallbacks == 1


def test_a_cleared_memory_starts_again():
    cache = stored("linear", [(1, 1.0), (2, 1.1)])
    cache.clear()
    assert cache.times == [] and cache.errors is None and not cache.can_rebuild(torch.zeros(SHAPE))
    x, sigma = torch.zeros(SHAPE, dtype=torch.float64), torch.ones(SHAPE[0], dtype=torch.float64)
    for at, value in ((5, 2.0), (6, 2.5)):
        cache.store(x, sigma, x - value, at)
    torch.testing.assert_close(rebuilt_derivative(cache, 7), torch.full(SHAPE, 3.0, dtype=torch.float64))


def test_measuring_counts_no_fallback():
    # positions 3, 1, 2: the measurement at 2 extrapolates from an out-of-order history, on the host
    cache = CalibratedReuse(REUSE_STRATEGIES["linear"], calibrate=True)
    x, sigma = torch.zeros(SHAPE, dtype=torch.float64), torch.ones(SHAPE[0], dtype=torch.float64)
    for at in (3, 1, 2):
        cache.store(x, sigma, x - 1.0, at)
    assert cache.errors is not None and cache.fallbacks == 0
