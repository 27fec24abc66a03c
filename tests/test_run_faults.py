"""Runs that go wrong (NaN, an interrupt, a stacked cache, a sampler that writes its sigmas, an
unpatched model) end cleanly, say what happened, and leave nothing behind for the next run."""
import json

import pytest
import torch

from sampling import AdaptiveDiffusionSkipReport, adaptive, empty_latent, patched, stock, with_patcher


def test_nan_latent_makes_next_step_compute(wan):
    import comfy.patcher_extension
    patcher = wan.patcher.clone()
    calls = []

    def poison(executor, *args, **kwargs):
        out = executor(*args, **kwargs)
        calls.append(1)
        if len(calls) == 4:  # the last warm-up step: the latent entering step 4 holds a NaN
            out = out.clone()
            out[0, 0, 0, 0, 0] = float("nan")
        return out
    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_poison", poison)
    _, _, report = adaptive(wan, steps=30, threshold=0.5, max_skip_steps=10, patcher=patcher)
    reasons = [s["reason"] for s in report["steps"]]
    assert "non_finite" in reasons
    first_bad = reasons.index("non_finite")
    assert all(s["computed"] for s in report["steps"][first_bad:])


def test_interrupted_run_leaves_nothing_behind(wan):
    import comfy.model_management
    import comfy.patcher_extension
    model = with_patcher(wan, patched(wan, threshold=0.1, max_skip_steps=3))
    clean = stock(model, steps=30)
    patcher = model.patcher.clone()
    calls = []

    def interrupt(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            comfy.model_management.interrupt_current_processing(True)
        return executor(*args, **kwargs)
    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_interrupt", interrupt)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        stock(with_patcher(model, patcher), steps=30)
    interrupted = json.loads(AdaptiveDiffusionSkipReport.execute(patcher, {"samples": clean}).result[1])
    assert 0 < len(interrupted["steps"]) < 30  # finished in `finally`, for the steps that ran
    # marked as such: never mistaken for a complete run
    assert interrupted["status"] == "interrupted" and interrupted["totals"]["schedule_steps"] == 30
    assert interrupted["summary"].startswith(f"AdaptiveDiffusion: INTERRUPTED after {len(interrupted['steps'])} of 30 steps")
    assert torch.equal(stock(model, steps=30), clean)


def test_stacked_with_easycache_runs_and_says_so(comfy, wan):
    from comfy_extras.nodes_easycache import EasyCacheNode
    cached = EasyCacheNode.execute(wan.patcher, 0.2, 0.15, 0.95, False).result[0]
    model = with_patcher(wan, cached)
    samples, _, report = adaptive(model, steps=20, threshold=0.05)
    assert torch.isfinite(samples).all()
    assert any("EasyCache" in note for note in report["notes"])


@pytest.mark.parametrize("sampler", ["uni_pc", "uni_pc_bh2", "euler"])
def test_the_schedule_given_to_a_patched_model_is_never_written(wan, sampler):
    """uni_pc sets the last sigma of the tensor it is given to 0.001 (ComfyUI 0.3.75 and 0.33); a
    scheduler node's cached output would then differ for the next prompt."""
    import comfy.sample
    import comfy.samplers
    model = patched(wan, threshold=0.05)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", 12)
    before = sigmas.clone()
    latent = empty_latent(wan)["samples"]
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    comfy.sample.sample_custom(model, noise, 2.0, comfy.samplers.sampler_object(sampler), sigmas,
                               wan.make_cond(1), wan.make_cond(2), latent)
    assert before[-1] == 0 and torch.equal(sigmas, before)


def test_skip_report_rejects_unpatched_model(wan):
    with pytest.raises(ValueError, match="not patched"):
        AdaptiveDiffusionSkipReport.execute(wan.patcher, {"samples": torch.zeros(1)})
