"""The paper's rule, the step tracker and the run mechanism at their edges (adaptive_core alone, no
ComfyUI). Every expected sequence is worked out by hand in the comment beside it."""
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import (AdaptiveRun, AdaptiveSkipPolicy, Decision, Reason,  # noqa: E402
                                              SkipConfig, StepTracker)


def judge(policy, step, value):
    policy.peek(torch.zeros(1), torch.ones(1))
    return policy.decide(step, {"estimator": value})


def computes(policy, steps, value=0.0):
    return [judge(policy, s, value).compute for s in steps]


def test_a_value_exactly_at_the_threshold_skips():
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=9, warmup_steps=0))
    assert computes(policy, range(3)) == [True] * 3
    assert judge(policy, 3, 0.5) == Decision(False, Reason.ESTIMATOR, 0.5)
    assert judge(policy, 4, 0.5000001) == Decision(True, Reason.ESTIMATOR, 0.5000001)


def test_warmup_ends_at_the_first_judged_step():
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=9, warmup_steps=5))
    assert [judge(policy, s, 0.0).reason for s in range(6)] == [Reason.WARMUP] * 5 + [Reason.ESTIMATOR]


def test_the_policy_keeps_its_outcomes_from_the_references_first_judged_step_on():
    # C_max 2, every value 0: steps 0-2 warm up, 3 and 4 skip, 5 is forced, 6 and 7 skip
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=2, warmup_steps=0))
    assert computes(policy, range(8)) == [True, True, True, False, False, True, False, False]
    assert policy.judged == [False, True, False, False]  # steps 4..7
    assert policy.consecutive_skips == 2


def test_an_overruled_skip_restarts_the_count_and_is_kept_as_computed():
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=2, warmup_steps=0))
    computes(policy, range(4))  # step 3 meant to skip: before the first kept outcome
    policy.overrule(Decision(True, Reason.NO_CACHE))
    assert policy.consecutive_skips == 0 and policy.judged == []
    # the count starts again, so two skips follow before one is forced
    assert computes(policy, range(4, 7)) == [False, False, True]
    assert policy.judged == [False, False, True]
    policy.overrule(Decision(True, Reason.NON_FINITE))
    assert policy.judged == [False, False, True]
    assert computes(policy, [7]) == [False]
    policy.overrule(Decision(True, Reason.NON_FINITE))
    assert policy.judged == [False, False, True, True] and policy.consecutive_skips == 0


def test_why_the_rule_skipped_nothing():
    policy = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=4, warmup_steps=6))
    assert policy.why_nothing_skipped(6) == ("all 6 steps are warm-up steps (warmup_steps=6; "
                                             "the estimator needs 4 latents)")
    assert policy.why_nothing_skipped(7) is None  # no finite value read yet
    for step, value in enumerate([math.nan] * 6 + [0.75, 0.625, math.nan, math.inf]):
        judge(policy, step, value)
    assert policy.why_nothing_skipped(10) == "the estimator never fell to δ=0.5 (smallest value 0.625)"
    early = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=4, warmup_steps=0))
    assert early.why_nothing_skipped(3).startswith("all 3 steps are warm-up steps (warmup_steps=0;")
    assert early.why_nothing_skipped(4) is None


def test_the_references_guard_counts_only_after_five_outcomes():
    # C_max 2, every value 0, judged from step 4: steps 4-8 skip (fewer than six outcomes kept),
    # step 9 sees five skips and is forced, then every third step is
    quirks = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=2, warmup_steps=0, reference_quirks=True))
    assert computes(quirks, range(4)) == [True] * 4
    assert judge(quirks, 4, 0.0).reason == Reason.ESTIMATOR
    assert computes(quirks, range(5, 13)) == [False, False, False, False, True, False, False, True]
    nan = judge(quirks, 13, math.nan)
    assert nan.compute and nan.reason == Reason.NON_FINITE
    assert judge(quirks, 14, 0.5) == Decision(False, Reason.ESTIMATOR, 0.5)  # at the threshold: skips
    assert judge(quirks, 15, 0.5000001).compute


def test_the_references_c_max_zero_looks_at_every_outcome():
    # mask[-0:] is the whole list: one forced call after five skips, then never again
    quirks = AdaptiveSkipPolicy(SkipConfig(threshold=0.5, max_skip_steps=0, warmup_steps=2, reference_quirks=True))
    assert computes(quirks, range(16)) == [True] * 4 + [False] * 5 + [True] + [False] * 6


def test_the_tracker_says_where_each_step_ends_and_where_a_call_lies():
    t = StepTracker([5.0, 4.0, 2.0, 0.0], lookahead=False)
    assert [StepTracker([5.0, 4.0, 2.0, 1.0], False).next_sigma(s) for s in range(4)] == [4.0, 2.0, 1.0, 0.0]
    assert [t.position(s) for s in (5.0, 4.5, 4.0, 3.0, 0.5, 0.0, -1.0, 6.0)] == [
        0.0, 0.5, 1.0, 1.5, 2.75, 3.0, 3.0, 0.0]
    repeated = StepTracker([5.0, 5.0, 4.0, 4.0, 2.0], lookahead=False)
    # zero-length segments never match: 5 lies at index 1, 4 at index 2 (the first match), 3 halfway to 2
    assert [repeated.position(s) for s in (5.0, 4.0, 3.0)] == [1.0, 2.0, 3.5]


def test_heun_on_a_schedule_with_a_repeated_sigma_advances_one_step_at_a_time():
    # the corrector of step 0 lands on σ_1 = 4, step 1 starts there and its corrector lands on σ_2 = 4
    heun = StepTracker([5.0, 4.0, 4.0, 2.0, 0.0], lookahead=True)
    assert [heun.locate(s) for s in (5.0, 4.0, 4.0, 4.0, 4.0, 2.0, 2.0)] == [
        (0, True), (0, False), (1, True), (1, False), (2, True), (2, False), (3, True)]


@pytest.mark.parametrize("lookahead", [False, True])
def test_the_first_call_always_starts_a_step(lookahead):
    assert StepTracker([5.0, 4.0, 2.0, 0.0], lookahead).locate(4.7) == (0, True)
    assert StepTracker([5.0, 4.0, 2.0, 0.0], lookahead).locate(4.0) == (1, True)


def test_sigmas_match_the_schedule_within_float32_rounding_only():
    t = StepTracker([5.0, 4.0, 2.0, 0.0], lookahead=False)
    assert t.locate(5.0) == (0, True)
    assert t.locate(4.0 * (1 + 2e-6)) == (1, True)  # float32 rounding of σ
    assert t.locate(2.0 * (1 + 1.5e-5)) == (1, False)  # beyond the relative tolerance: between steps
    near_zero = StepTracker([1.0, 0.0], lookahead=False)
    near_zero.locate(1.0)
    assert near_zero.locate(1.5e-9) == (0, False)  # beyond the absolute tolerance
    assert near_zero.locate(5e-10) == (1, True)


def run_calls(config, sigmas, starts=None, scale_input=None):
    """One call per listed σ of Euler on x' = -x with denoised = 0; returns the run, its report and
    the σ each network call was made at."""
    tell = None if starts is None else lambda r: starts.append((r.step, r.computed, str(r.reason)))
    run = AdaptiveRun(config, sigmas, sampler="euler", scale_input=scale_input, on_step=tell)
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 10
    called = []
    for i, s in enumerate(sigmas[:-1]):
        sigma = torch.tensor([s], dtype=torch.float64)
        denoised = run(x, sigma, lambda: called.append(s) or torch.zeros_like(x))
        x = x + (x - denoised) / s * (sigmas[i + 1] - s)
    return run, called


def test_a_run_tells_each_step_once_with_its_final_decision():
    told = []
    run, called = run_calls(SkipConfig(0.5, 2, 0), [float(s) for s in range(10, 0, -1)] + [0.0], starts=told)
    # denoised = 0 on an even schedule: d_k is constant, the estimator reads 0 from step 3 on
    assert told == [(0, True, "warmup"), (1, True, "warmup"), (2, True, "warmup"), (3, False, "estimator"),
                    (4, False, "estimator"), (5, True, "max_skip"), (6, False, "estimator"),
                    (7, False, "estimator"), (8, True, "max_skip"), (9, False, "estimator")]
    assert called == [10.0, 9.0, 8.0, 5.0, 2.0]
    report = run.finish()
    assert report.notes == [] and report.calls_made == 5 and report.calls_skipped == 5


def test_a_skip_decided_at_sigma_zero_calls_the_network_and_nothing_at_zero_is_stored():
    run = AdaptiveRun(SkipConfig(0.5, 4, 0, reuse="lagrange"), [3.0, 2.0, 1.0, 0.5, 0.0])
    x = torch.ones(1, 2)
    for s, remembered in ((3.0, [0.0]), (2.0, [0.0, 1.0]), (1.0, [0.0, 1.0, 2.0]), (0.5, [0.0, 1.0, 2.0])):
        x = x * 0.5
        run(x, torch.tensor([s]), lambda: torch.zeros_like(x))
        assert run.reuse.times == remembered  # schedule positions of the real calls
    assert run.report.records[3].computed is False  # step 3 reused (d halves: estimator 0.25 ≤ 0.5)
    x = x * 0.5
    run(x, torch.tensor([0.0]), lambda: torch.zeros_like(x))
    last = run.report.records[-1]
    assert (last.step, last.computed, last.reason) == (4, True, Reason.NO_CACHE)
    assert run.reuse.times == [0.0, 1.0, 2.0] and run.report.calls_made == 4
    assert (run.report.sampler, run.report.schedule_steps) == ("unknown", 4)


def test_a_run_that_cannot_skip_remembers_nothing():
    for config in (SkipConfig(0.0), SkipConfig(0.5, 0, 0, reuse="linear")):
        run, called = run_calls(config, [float(s) for s in range(10, 0, -1)] + [0.0])
        assert len(called) == 10 and run.reuse.times == []


def test_the_estimator_reads_the_latent_the_network_sees():
    sigmas = [float(s) for s in range(10, 0, -1)] + [0.0]
    run, _ = run_calls(SkipConfig(0.5, 2, 0), sigmas, scale_input=lambda sigma, x: torch.zeros_like(x))
    # a constant input has no differences: 0/0 is not finite, and every judged step computes
    assert [r.reason for r in run.report.records[3:]] == [Reason.NON_FINITE] * 7


def test_finishing_a_run_clears_what_it_held():
    run, _ = run_calls(SkipConfig(0.5, 2, 0, reuse="linear"), [float(s) for s in range(10, 0, -1)] + [0.0])
    assert run.reuse.times
    report = run.finish()
    assert run.reuse.times == [] and run.policy is None and report.status == "complete"
    assert 0 < report.seconds < 60  # the time since the run began



def run_with_a_nan(reuse, nan_at, steps=10):
    """A run on σ = 10, 9, ..., 1, 0 whose latent update ignores the network (x shrinks by
    σ_next/σ, so the estimator reads 0 and C_max 2 skips steps 3 and 4), the network answering 0
    except NaN at σ = nan_at; returns the run, the σ of each network call and what each call got."""
    sigmas = [float(s) for s in range(10, 0, -1)] + [0.0]
    run = AdaptiveRun(SkipConfig(0.5, 2, 0, reuse=reuse), sigmas)
    x = torch.ones(1, 4, 2, 2, dtype=torch.float64)
    called, served = [], []
    for s, s_next in zip(sigmas, sigmas[1:steps + 1]):
        answer = torch.full_like(x, math.nan if s == nan_at else 0.0)
        served.append(run(x, torch.tensor([s], dtype=torch.float64), lambda: called.append(s) or answer))
        x = x * s_next / s
    return run, called, served


@pytest.mark.parametrize("reuse", ["hold", "linear"])
def test_a_nan_network_output_is_never_served_by_a_later_skip(reuse):
    # the answer at step 2 holds a NaN, so step 3, meant to skip, must call the network
    run, called, served = run_with_a_nan(reuse, nan_at=8.0)
    step3 = run.report.records[3]
    assert (step3.computed, step3.reason) == (True, Reason.NON_FINITE)
    assert called[:4] == [10.0, 9.0, 8.0, 7.0]
    assert all(torch.isfinite(d).all() for d in served[3:])


def test_a_skip_refused_for_a_nan_is_kept_as_a_computed_outcome():
    # 3 and 4 skip, 5 is forced and answers NaN, so 6 (meant to skip) computes
    run, _, _ = run_with_a_nan("hold", nan_at=5.0, steps=7)
    assert [(r.computed, r.reason) for r in run.report.records[3:]] == [
        (False, Reason.ESTIMATOR), (False, Reason.ESTIMATOR), (True, Reason.MAX_SKIP), (True, Reason.NON_FINITE)]
    assert run.policy.judged == [False, True, True]  # steps 4, 5, 6: the reference's outcomes
    assert run.policy.consecutive_skips == 0
