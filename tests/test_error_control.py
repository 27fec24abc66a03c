"""Self-calibrating reuse and error-controlled skipping on analytic runs, against values worked out
by hand (adaptive_core alone, no ComfyUI)."""
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import (AdaptiveRun, CalibratedReuse, Decision, ErrorControlConfig,  # noqa: E402
                                              ErrorControlledPolicy, Reason, REUSE_STRATEGIES, SkipConfig)

SIGMAS = [i / 32 for i in range(32, -1, -1)]  # exact in float32, so positions are exact too
SHAPE = (2, 4, 6, 6)


def coefficients(seed, count):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(SHAPE, generator=g, dtype=torch.float64) for _ in range(count)]


def euler(network, config):
    """Euler's method through AdaptiveRun; network(x, σ) is the denoised output. (last latent, report)"""
    run = AdaptiveRun(config, SIGMAS)
    x = torch.ones(SHAPE, dtype=torch.float64)
    for sigma, next_sigma in zip(SIGMAS, SIGMAS[1:]):
        s = torch.full((SHAPE[0],), sigma, dtype=torch.float64)
        denoised = run(x, s, lambda: network(x, sigma))
        x = x + (next_sigma - sigma) * (x - denoised) / sigma
    return x, run.finish()


def eps_linear(seed=0):
    """A network whose noise prediction is exactly linear in σ (and so in the schedule position)."""
    a, b = coefficients(seed, 2)
    return lambda x, sigma: x - sigma * (a + 0.3 * b * sigma)


def x0_linear(seed=0):
    """A network whose denoised output is exactly linear in σ, whatever x is: its noise prediction
    is not linear, so only the x0 predictors are exact."""
    a, b = coefficients(seed, 2)
    return lambda x, sigma: a + 0.3 * b * sigma


@pytest.mark.parametrize("network, exact", [(eps_linear(), {"linear", "lagrange", "wide linear"}),
                                            (x0_linear(), {"linear x0", "wide linear x0"})])
def test_auto_serves_skips_with_a_predictor_that_is_exact_here(network, exact):
    _, report = euler(network, SkipConfig(threshold=0.5, max_skip_steps=4, reuse="auto"))
    # the first skips come before three calls are measured: hold and the two-point predictors serve those
    late = {r.reuse for r in report.records[12:] if r.reuse}
    assert report.calls_skipped >= 15 and late and late <= exact, report.as_dict()["totals"]["reused_by"]


def test_auto_reproduces_the_full_run_once_the_exact_predictor_is_known():
    network = x0_linear()
    full, _ = euler(network, SkipConfig(threshold=0.0))
    # warm-up long enough that every predictor is measured before the first skip
    skipped, report = euler(network, ErrorControlConfig(tolerance=0.5, max_skip_steps=3, warmup_steps=5))
    assert report.calls_skipped >= 15
    assert set(report.as_dict()["totals"]["reused_by"]) <= {"linear x0", "wide linear x0"}
    torch.testing.assert_close(skipped, full, rtol=1e-12, atol=1e-12)
    held, _ = euler(network, ErrorControlConfig(tolerance=0.5, max_skip_steps=3, warmup_steps=5, reuse="hold"))
    assert (held - full).abs().max() > 1e-3


def scalar_call(reuse, at, x, denoised, sigma=1.0):
    """A real call on constant tensors (every element the same value)."""
    full = lambda v: torch.full(SHAPE, float(v), dtype=torch.float64)
    reuse.store(full(x), torch.full((SHAPE[0],), sigma, dtype=torch.float64), full(denoised), at)


def test_running_error_by_hand():
    reuse = CalibratedReuse(("hold",), calibrate=True)
    scalar_call(reuse, 0, x=0.0, denoised=1.0)  # d = (0 - 1)/1 = -1
    assert "error" not in reuse.peek()
    # hold rebuilds x - σ·d = 0.5 + 1 = 1.5 against the real 2: |1.5 - 2| / |2| over distance 1
    scalar_call(reuse, 1, x=0.5, denoised=2.0)
    assert float(reuse.peek()["error"]) == pytest.approx(0.25)
    # d = (0.5 - 2)/1 = -1.5; at position 3: 1 + 1.5 = 2.5 vs 4, |1.5| / 4 / 2 = 0.1875, half-blended
    scalar_call(reuse, 3, x=1.0, denoised=4.0)
    assert float(reuse.peek()["error"]) == pytest.approx(0.5 * 0.1875 + 0.5 * 0.25)
    assert int(reuse.peek()["choice"]) == 0


class Stored:
    last_call = 9.0


@pytest.mark.parametrize("step, error, expected_compute, expected_value", [
    (10, 0.02, False, 0.02 * 1 * 0.1 / 0.5),  # 0.004 <= 0.005
    (11, 0.02, True, 0.02 * 2 * 0.1 / 0.5),  # two steps past the last real call: 0.008
    (10, 0.03, True, 0.03 * 1 * 0.1 / 0.5),
])
def test_error_policy_judges_error_times_distance_times_step_size(step, error, expected_compute, expected_value):
    policy = ErrorControlledPolicy(ErrorControlConfig(tolerance=0.005, max_skip_steps=4, warmup_steps=2), Stored())
    decision = policy.decide(step, {"error": error, "sigma": 0.5, "next_sigma": 0.4})
    assert decision.compute == expected_compute and decision.value == pytest.approx(expected_value)


def test_error_policy_warmup_unmeasured_nan_and_max_skip():
    policy = ErrorControlledPolicy(ErrorControlConfig(tolerance=0.5, max_skip_steps=2, warmup_steps=3), Stored())
    values = {"error": 0.01, "sigma": 0.5, "next_sigma": 0.4}
    assert [policy.decide(s, values).reason for s in range(3)] == ["warmup"] * 3
    assert policy.decide(3, {"sigma": 0.5, "next_sigma": 0.4}).reason == "no_cache"
    assert [policy.decide(s, values).compute for s in (4, 5, 6, 7)] == [False, False, True, False]
    nan = policy.decide(8, dict(values, error=math.nan))
    assert nan.compute and nan.reason == "non_finite"


def test_error_policy_at_its_edges():
    # the last real call was step 9; σ 1 → 0.5: the value is error × (step − 9) × 0.5
    policy = ErrorControlledPolicy(ErrorControlConfig(tolerance=0.25, max_skip_steps=2, warmup_steps=2), Stored())
    assert policy.why_nothing_skipped(2) == "all 2 steps are warm-up steps (warmup_steps=2)"
    assert policy.why_nothing_skipped(3) is None  # nothing judged yet
    values = {"sigma": 1.0, "next_sigma": 0.5}
    assert policy.decide(10, dict(values, error=0.5)) == Decision(False, Reason.ESTIMATOR, 0.25)  # at the tolerance
    policy.overrule(Decision(True, Reason.NO_CACHE))  # the run could not serve it: the count starts again
    assert [policy.decide(s, dict(values, error=0.1)).reason for s in (11, 12, 13)] == [
        Reason.ESTIMATOR, Reason.ESTIMATOR, Reason.MAX_SKIP]  # values 0.1, 0.15, 0.2
    assert policy.why_nothing_skipped(14) == "the predicted error never fell to the tolerance 0.25 (smallest 0.1)"


def test_without_warmup_the_first_skip_is_step_two():
    """Steps 0 and 1 always call: the reuse has measured nothing before; with two real calls
    behind it, a network whose noise prediction is exactly linear may skip from step 2 on."""
    _, report = euler(eps_linear(), ErrorControlConfig(tolerance=0.5, max_skip_steps=4, warmup_steps=0))
    computed = [r.computed for r in report.records]
    assert computed[:2] == [True, True] and computed[2] is False


def test_last_step_is_judged_with_its_whole_update():
    """σ' = 0: the step puts the reuse's whole error into the result, so it is the hardest to skip."""
    policy = ErrorControlledPolicy(ErrorControlConfig(tolerance=0.005, max_skip_steps=4), Stored())
    assert policy.decide(10, {"error": 0.004, "sigma": 0.5, "next_sigma": 0.45}).compute is False
    assert policy.decide(10, {"error": 0.004, "sigma": 0.05, "next_sigma": 0.0}).compute is False
    assert policy.decide(10, {"error": 0.006, "sigma": 0.05, "next_sigma": 0.0}).compute is True


def test_auto_memory_is_at_most_six_latents():
    reuse = CalibratedReuse(REUSE_STRATEGIES["auto"], calibrate=True)
    for i in range(10):
        scalar_call(reuse, i, x=i, denoised=i + 1)
        assert len(reuse.history["eps"]) <= 3 and len(reuse.history["x0"]) <= 3
    assert len(reuse.history["eps"]) + len(reuse.history["x0"]) == 6


def test_tolerance_zero_and_invalid_values():
    _, report = euler(eps_linear(), ErrorControlConfig(tolerance=0.0))
    assert report.calls_skipped == 0 and report.notes == ["nothing skipped: threshold is 0 (skipping disabled)"]
    with pytest.raises(ValueError, match=r"^threshold \(the tolerance\) must be"):
        ErrorControlConfig(tolerance=math.nan)
    with pytest.raises(ValueError, match="^reuse must be one of"):
        ErrorControlConfig(reuse="cubic")
