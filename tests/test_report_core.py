"""The run report as the nodes, the maps and the batch client read it, and the words it uses
(adaptive_core alone, no ComfyUI). Expected values are written out."""
import dataclasses
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import (AdaptiveRun, Decision, Reason, RunReport, RunStatus,  # noqa: E402
                                              SkipConfig)
from adaptive_diffusion.adaptive_core.report import StepRecord  # noqa: E402


def test_the_words_of_reports_and_the_frontend():
    assert [r.value for r in Reason] == ["warmup", "estimator", "schedule", "max_skip", "disabled", "sampler",
                                         "non_finite", "no_cache"]
    assert [s.value for s in RunStatus] == ["complete", "interrupted", "failed"]
    assert f"{Reason.MAX_SKIP}" == "max_skip" and str(RunStatus.FAILED) == "failed"
    assert [Decision(c, r).cell for c, r in ((False, Reason.ESTIMATOR), (True, Reason.WARMUP),
                                             (True, Reason.MAX_SKIP))] == ["reused", "warmup", "computed"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Decision(True, Reason.WARMUP).compute = False


def test_a_report_as_json():
    config = SkipConfig(0.05, 3, 1)
    report = RunReport(config, sampler="euler", schedule_steps=4, calls_made=3, calls_skipped=1, seconds=0.1234567,
                       reuse_fallbacks=2, notes=["n"], records=[
                           StepRecord(0, 4.0, True, Reason.WARMUP, math.nan, calls=1),
                           StepRecord(1, 3.0, True, Reason.ESTIMATOR, 0.5, calls=2),
                           StepRecord(2, 2.0, False, Reason.ESTIMATOR, 0.01, calls=1, reuse="hold")])
    assert report.summary() == ("AdaptiveDiffusion: computed 2/3 steps (1.33x fewer calls), third-order δ=0.05, "
                                "C_max=3, warmup=1, reuse=hold, sampler=euler; n")
    expected = {
        "method": "AdaptiveDiffusion", "status": "complete", "sampler": "euler", "criterion": "third_order",
        "threshold": 0.05, "max_skip_steps": 3, "warmup_steps": 1, "reference_quirks": False, "reuse": "hold",
        "steps": [
            {"step": 0, "sigma": 4.0, "computed": True, "reason": "warmup", "cell": "warmup", "estimator": None,
             "calls": 1, "reuse": None},
            {"step": 1, "sigma": 3.0, "computed": True, "reason": "estimator", "cell": "computed",
             "estimator": 0.5, "calls": 2, "reuse": None},
            {"step": 2, "sigma": 2.0, "computed": False, "reason": "estimator", "cell": "reused",
             "estimator": 0.01, "calls": 1, "reuse": "hold"}],
        "totals": {"steps": 3, "schedule_steps": 4, "computed_steps": 2, "reused_steps": 1, "network_calls": 3,
                   "full_run_network_calls": 4, "expected_speedup": 1.3333, "sampling_seconds": 0.123457,
                   "reuse_fallbacks": 2, "reused_by": {"hold": 1}},
        "notes": ["n"], "summary": report.summary()}
    assert report.as_dict() == expected
    assert report.to_json().startswith('{\n "method": "AdaptiveDiffusion",\n "status": "complete",')
    assert '"summary": "AdaptiveDiffusion: computed 2/3 steps (1.33x fewer calls), third-order δ=0.05' in report.to_json()
    report.status = RunStatus.INTERRUPTED
    assert report.summary().startswith("AdaptiveDiffusion: INTERRUPTED after 3 of 4 steps, computed 2/3 steps")


def test_an_empty_report():
    report = RunReport(SkipConfig())
    assert (report.sampler, report.schedule_steps, report.seconds, report.reuse_fallbacks) == ("unknown", 0, 0.0, 0)
    assert report.call_ratio == 1.0 and report.threshold == 0.01 and RunReport(SkipConfig(0.0)).threshold is None


def run_steps(config, steps=8, calls_per_step=1, skipping_forbidden="", nan_at=None, jumpy=False):
    """Euler on a smooth trajectory (denoised 0; ``jumpy``: a denoised image that flips sign every
    step), each step's extra calls between its sigmas."""
    sigmas = torch.linspace(8.0, 0.0, steps + 1, dtype=torch.float64)
    run = AdaptiveRun(config, sigmas.tolist(), sampler="euler", skipping_forbidden=skipping_forbidden)
    x = torch.ones(1, 2, 4, 4, dtype=torch.float64)
    for i in range(steps):
        if i == nan_at:
            x = x.clone()
            x[0, 0, 0, 0] = math.nan
        for k in range(calls_per_step):
            s = sigmas[i:i + 1] - k * (sigmas[i] - sigmas[i + 1]) / (2 * calls_per_step)
            denoised = run(x, s, lambda: torch.full_like(x, (-3.0) ** i if jumpy else 0.0))
        x = x + (x - denoised) / sigmas[i:i + 1] * (sigmas[i + 1] - sigmas[i])
    return run.finish()


def test_every_call_of_a_step_is_counted_in_its_record():
    report = run_steps(SkipConfig(0.5, 2, 0), calls_per_step=2)
    assert [r.calls for r in report.records] == [2] * 8
    assert report.calls_made + report.calls_skipped == 16 and report.calls_skipped > 0


@pytest.mark.parametrize("config,forbidden,reason,note", [
    (SkipConfig(0.0), "", "disabled", "nothing skipped: threshold is 0 (skipping disabled)"),
    (SkipConfig(0.5), "heun evaluates twice", "sampler", "nothing skipped: heun evaluates twice"),
    (SkipConfig(0.5, warmup_steps=8), "", "warmup",
     "nothing skipped: all 8 steps are warm-up steps (warmup_steps=8; the estimator needs 4 latents)"),
])
def test_a_run_that_skips_nothing_says_why(config, forbidden, reason, note):
    report = run_steps(config, skipping_forbidden=forbidden)
    assert {r.reason for r in report.records} == {reason} and report.notes == [note]


def test_a_criterion_that_never_allows_a_skip_reports_its_smallest_value():
    report = run_steps(SkipConfig(1e-9, warmup_steps=0), jumpy=True)
    assert report.computed_steps == 8 and len(report.notes) == 1
    assert report.notes[0].startswith("nothing skipped: the estimator never fell to δ=1e-09 (smallest value ")


def test_a_non_finite_latent_is_computed_and_skipping_goes_on_after_it():
    report = run_steps(SkipConfig(0.9, 100, 0), steps=16, nan_at=6)
    assert report.records[6].computed and report.records[6].reason == "non_finite"
    assert report.records[6].cell == "computed"
