"""adaptive_core on its own: no ComfyUI imported."""
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import (  # noqa: E402
    AdaptiveRun, AdaptiveSkipPolicy, CalibratedReuse, SkipConfig, StepTracker, ThirdOrderEstimator)
from adaptive_diffusion.adaptive_core.config import validate  # noqa: E402


@pytest.mark.parametrize("package,forbidden", [("adaptive_core", ("comfy", "nodes", "folder_paths", "comfy_api", "PIL")),
                                               ("maps", ("comfy", "nodes", "folder_paths", "comfy_api"))])
def test_core_and_maps_do_not_import_comfy(package, forbidden):
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, %r); import comfy_runtime; comfy_runtime.import_extension();"
            "import adaptive_diffusion.%s; bad = [m for m in sys.modules if m.split('.')[0] in %r]; assert not bad, bad"
            % (str(comfy_runtime.REPO / "scripts"), package, forbidden))
    subprocess.run([sys.executable, "-c", code], check=True)


def test_estimator_value_is_relative_third_order_difference():
    est = ThirdOrderEstimator()
    xs = [torch.full((2, 3), v) for v in (0.0, 1.0, 3.0, 6.0)]  # d = 1, 2, 3: second difference 0
    values = []
    for x in xs:
        value, diff = est.peek(x)
        est.commit(x, diff)
        values.append(float(value))
    assert all(math.isnan(v) for v in values[:3])
    assert values[3] == 0.0
    x = torch.full((2, 3), 11.0)  # d = 2, 3, 5: |5 - 6 + 2| / (2*3) = 1/6
    value, _ = est.peek(x)
    assert float(value) == pytest.approx(1 / 6)


def test_peek_does_not_change_state():
    est = ThirdOrderEstimator()
    for v in (0.0, 1.0, 3.0):
        est.commit(torch.full((4,), v), est.peek(torch.full((4,), v))[1])
    first, _ = est.peek(torch.full((4,), 9.0))
    second, _ = est.peek(torch.full((4,), 9.0))
    assert float(first) == float(second)


def judge(policy, step, value):
    """The policy's decision for ``step`` when its estimator read ``value``."""
    policy.peek(torch.zeros(1), torch.ones(1))
    return policy.decide(step, {"estimator": value})


def test_policy_never_exceeds_max_skip_steps():
    for c_max in range(0, 7):
        policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=c_max, warmup_steps=0))
        run = longest = 0
        for step in range(60):
            compute = judge(policy, step, 0.0).compute
            run = 0 if compute else run + 1
            longest = max(longest, run)
        assert longest == c_max


def test_policy_warmup_and_nan():
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=4, warmup_steps=6))
    assert [judge(policy, s, 0.0).reason for s in range(6)] == ["warmup"] * 6
    assert not judge(policy, 6, 0.0).compute
    nan = judge(policy, 7, math.nan)
    assert nan.compute and nan.reason == "non_finite"


def test_warmup_below_three_still_needs_four_latents():
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=4, warmup_steps=0))
    assert [judge(policy, s, 0.0).compute for s in range(4)] == [True, True, True, False]


@pytest.mark.parametrize("threshold,c_max,warmup", [(-0.1, 4, 4), (math.nan, 4, 4), (1.5, 4, 4), (math.inf, 4, 4),
                                                    (0.01, -1, 4), (0.01, 4, -2), (0.01, 2.5, 4)])
def test_invalid_config_names_the_widget(threshold, c_max, warmup):
    problems = validate(threshold, c_max, warmup, "linear")
    assert len(problems) == 1
    name = "threshold" if threshold != 0.01 else "max_skip_steps" if c_max != 4 else "warmup_steps"
    assert problems[0].startswith(name)
    with pytest.raises(ValueError, match=name):
        SkipConfig(threshold, c_max, warmup)


def test_reuse_rebuilds_denoised_from_noise_prediction():
    cache = CalibratedReuse(("hold",), calibrate=False)
    x, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    sigma = torch.tensor([3.0, 3.0])
    cache.store(x, sigma, x - 3.0 * eps, 0.0)
    x_next = torch.randn(2, 4, 8, 8)
    rebuilt = cache.rebuild(x_next, torch.tensor([2.0, 2.0]), 1.0, {})
    torch.testing.assert_close(rebuilt, x_next - 2.0 * eps)


def _calls(tracker, sigmas):
    return [tracker.locate(s) for s in sigmas]


def test_step_tracker_single_call_and_repeated_sigmas():
    t = StepTracker([5.0, 4.0, 4.0, 2.0, 0.0], lookahead=False)
    assert _calls(t, [5.0, 4.0, 4.0, 2.0]) == [(0, True), (1, True), (2, True), (3, True)]


def test_step_tracker_off_schedule_substeps():
    t = StepTracker([5.0, 4.0, 2.0, 0.0], lookahead=True)
    assert _calls(t, [5.0, 4.5, 4.0, 3.0, 2.0]) == [(0, True), (0, False), (1, True), (1, False), (2, True)]


def test_step_tracker_heun_and_heunpp2_lookahead():
    heun = StepTracker([5.0, 4.0, 2.0, 1.0, 0.0], lookahead=True)
    assert _calls(heun, [5.0, 4.0, 4.0, 2.0, 2.0, 1.0, 1.0]) == [
        (0, True), (0, False), (1, True), (1, False), (2, True), (2, False), (3, True)]
    pp2 = StepTracker([5.0, 4.0, 2.0, 1.0, 0.0], lookahead=True)
    assert _calls(pp2, [5.0, 4.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0, 1.0]) == [
        (0, True), (0, False), (0, False), (1, True), (1, False), (1, False), (2, True), (2, False), (3, True)]


def _smooth_run(config, steps=30, nan_at=None, lookahead=False):
    """Euler on x' = -x with the model returning denoised = 0 (ε = x/σ): a smooth trajectory."""
    sigmas = torch.linspace(10.0, 0.0, steps + 1, dtype=torch.float64)
    run = AdaptiveRun(config, sigmas.tolist(), sampler="euler")
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 10
    calls = 0
    for i in range(steps):
        s = sigmas[i:i + 1]
        if i == nan_at:
            x = x.clone()
            x[0, 0, 0, 0] = math.nan

        def predict():
            nonlocal calls
            calls += 1
            return torch.zeros_like(x)
        denoised = run(x, s, predict)
        x = x + (x - denoised) / s * (sigmas[i + 1] - s)
    return run.finish(), calls, x


def test_smooth_trajectory_skips_and_counts_calls():
    report, calls, _ = _smooth_run(SkipConfig(threshold=0.05, max_skip_steps=4))
    assert report.calls_made == calls < 30
    assert report.full_calls == 30
    assert report.computed_steps == calls


def test_threshold_zero_computes_everything_and_says_why():
    report, calls, _ = _smooth_run(SkipConfig(threshold=0.0))
    assert calls == 30 and report.notes == ["nothing skipped: threshold is 0 (skipping disabled)"]


def test_warmup_longer_than_run_computes_everything_and_says_why():
    report, calls, _ = _smooth_run(SkipConfig(threshold=0.5, warmup_steps=50), steps=10)
    assert calls == 10 and "warm-up" in report.notes[0]


def test_nan_latent_makes_next_step_compute():
    report, _, _ = _smooth_run(SkipConfig(threshold=0.9, max_skip_steps=100), nan_at=12)
    step = report.records[12]
    assert step.computed and step.reason == "non_finite"
