"""The AdaptiveDiffusion nodes inside the real ComfyUI runtime, on tiny real architectures."""
import json

import pytest
import torch

from sampling import (AdaptiveDiffusionKSamplerAdvanced, AdaptiveDiffusionPatch, AdaptiveDiffusionSkipReport,
                      adaptive, empty_latent, runs_of_reuse, stock, with_patcher)

from adaptive_diffusion.adaptive_core.reuse import REUSE_STRATEGIES

MAIN_SAMPLERS = ["euler", "ddim", "dpmpp_2m", "heun", "euler_ancestral", "uni_pc", "dpmpp_sde", "lms"]


def advanced(model, patcher=None, sampler="euler", scheduler="simple", steps=8, start=0, end=10000,
             leftover="disable", add_noise="enable", threshold=0.01, max_skip_steps=4, warmup_steps=4, latent=None,
             reuse="linear"):
    out = AdaptiveDiffusionKSamplerAdvanced.execute(
        patcher or model.patcher, add_noise, 1, steps, 2.0, sampler, scheduler, model.make_cond(1),
        model.make_cond(2), latent or empty_latent(model), start, end, leftover,
        threshold, max_skip_steps, warmup_steps, reuse).result
    return out[0]["samples"], json.loads(out[2])


def stock_advanced(model, sampler="euler", scheduler="simple", steps=8, start=0, end=10000, leftover="disable",
                   add_noise="enable", latent=None, patcher=None):
    import nodes
    return nodes.KSamplerAdvanced().sample(patcher or model.patcher, add_noise, 1, steps, 2.0, sampler, scheduler,
                                           model.make_cond(1), model.make_cond(2), latent or empty_latent(model),
                                           start, end, leftover)[0]["samples"]


def patched(model, threshold=0.0, max_skip_steps=4, warmup_steps=4, reference_quirks=False, reuse="linear"):
    return AdaptiveDiffusionPatch.execute(model.patcher, threshold, max_skip_steps, warmup_steps, reuse,
                                          reference_quirks).result[0]


def assert_identical_when_disabled(model, sampler, scheduler, reuses=REUSE_STRATEGIES):
    reference = stock(model, sampler, scheduler)
    assert torch.isfinite(reference).all(), (model.name, sampler, scheduler)  # or equality proves nothing
    for reuse in reuses:
        samples, _, report = adaptive(model, sampler, scheduler, threshold=0.0, reuse=reuse)
        assert torch.equal(samples, reference), (model.name, sampler, scheduler, reuse)
        assert report["totals"]["network_calls"] == report["totals"]["full_run_network_calls"]
    assert torch.equal(stock(with_patcher(model, patched(model)), sampler, scheduler), reference)
    adv_reference = stock_advanced(model, sampler, scheduler, start=1, end=6, leftover="enable")
    assert torch.equal(advanced(model, sampler=sampler, scheduler=scheduler, start=1, end=6, leftover="enable",
                                threshold=0.0)[0], adv_reference)


@pytest.mark.parametrize("sampler", MAIN_SAMPLERS)
def test_disabled_is_bit_identical_on_every_family(families, sampler):
    for model in families:
        assert_identical_when_disabled(model, sampler, "simple")


@pytest.mark.slow
def test_disabled_is_bit_identical_for_every_sampler_and_scheduler(comfy, wan):
    import comfy.samplers
    for sampler in comfy.samplers.KSampler.SAMPLERS:
        for scheduler in comfy.samplers.KSampler.SCHEDULERS:
            # every reuse strategy is checked on every family above; here the default one
            assert_identical_when_disabled(wan, sampler, scheduler, reuses=["linear"])


class ForwardCounter:
    """Counts real forward passes of the diffusion model through a DIFFUSION_MODEL wrapper."""

    def __init__(self, model):
        import comfy.patcher_extension
        self.count = 0
        patcher = model.patcher.clone()
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_counter", self)
        self.model = with_patcher(model, patcher)

    def __call__(self, executor, *args, **kwargs):
        self.count += 1
        return executor(*args, **kwargs)


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "dpm_2", "uni_pc"])
def test_skipped_steps_really_skip_the_network(families, sampler):
    for model in families[:3]:
        full, skipping = ForwardCounter(model), ForwardCounter(model)
        stock(full.model, sampler, steps=30)
        _, _, report = adaptive(skipping.model, sampler, steps=30, threshold=0.1, max_skip_steps=3)
        totals = report["totals"]
        assert totals["network_calls"] < totals["full_run_network_calls"], (model.name, sampler)
        # one CFG'd evaluation is the same number of forward passes whether or not others were skipped
        assert skipping.count * totals["full_run_network_calls"] == full.count * totals["network_calls"]
        assert max(runs_of_reuse(report)) <= 3
        assert sum(s["calls"] for s in report["steps"]) == totals["full_run_network_calls"]


@pytest.mark.slow
def test_every_sampler_and_scheduler_runs_with_skipping(comfy, wan):
    import comfy.samplers
    from adaptive_diffusion.nodes.sampler_policy import POLICIES
    # the table also holds samplers of newer ComfyUI versions than the one running
    assert set(comfy.samplers.KSampler.SAMPLERS) <= set(POLICIES)
    for sampler in comfy.samplers.KSampler.SAMPLERS:
        for scheduler in comfy.samplers.KSampler.SCHEDULERS:
            samples, skip_map, report = adaptive(wan, sampler, scheduler, steps=12, threshold=0.1, max_skip_steps=2)
            assert torch.isfinite(samples).all(), (sampler, scheduler)
            assert max(runs_of_reuse(report), default=0) <= 2
            if POLICIES[sampler].never_skip:
                assert report["totals"]["reused_steps"] == 0


@pytest.mark.parametrize("cfg", [1.0, 4.0])
def test_cfg_one_and_above(families, cfg):
    for model in families:
        samples, _, report = adaptive(model, steps=20, cfg=cfg, threshold=0.1)
        assert torch.isfinite(samples).all()
        assert report["totals"]["reused_steps"] > 0, model.name


def test_batch_of_two_gets_one_decision(wan):
    latent = empty_latent(wan, batch=2)
    samples, _, report = adaptive(wan, steps=20, latent=latent, threshold=0.1)
    assert samples.shape[0] == 2 and torch.isfinite(samples).all()
    assert len(report["steps"]) == 20


def test_denoise_half_counts_warmup_from_first_sampled_step(wan):
    latent = {"samples": stock(wan, steps=10)}
    samples, _, report = adaptive(wan, steps=20, denoise=0.5, latent=latent, threshold=0.5)
    assert len(report["steps"]) == 20
    assert [s["reason"] for s in report["steps"][:4]] == ["warmup"] * 4
    assert not report["steps"][4]["computed"]
    assert torch.isfinite(samples).all()


def test_inpainting_noise_mask_keeps_unmasked_area(wan):
    base = stock(wan, steps=10)
    mask = torch.zeros((1, 16, 16))
    mask[:, :8] = 1.0
    samples, _, report = adaptive(wan, steps=20, latent={"samples": base, "noise_mask": mask}, threshold=0.1)
    assert report["totals"]["reused_steps"] > 0
    torch.testing.assert_close(samples[..., 8:, :], base[..., 8:, :])


def test_start_and_end_steps(wan):
    samples, report = advanced(wan, steps=30, start=10, end=25, threshold=0.1)
    assert [s["step"] for s in report["steps"]] == list(range(15))
    assert [s["reason"] for s in report["steps"][:4]] == ["warmup"] * 4
    assert torch.isfinite(samples).all()
    _, nothing = advanced(wan, steps=30, start=30, end=40, threshold=0.1)
    assert nothing["steps"] == [] and "nothing was sampled" in nothing["notes"][0]


def test_patched_model_reused_gives_identical_runs_and_separate_reports(wan):
    model = with_patcher(wan, patched(wan, threshold=0.1, max_skip_steps=3))
    holder_model = model.patcher
    first = stock(model, steps=30)
    first_report = AdaptiveDiffusionSkipReport.execute(holder_model, {"samples": first}).result
    # a second sampler node on the same patched model, with another sampler and length, in between
    stock(model, "dpmpp_2m", steps=12)
    between = json.loads(AdaptiveDiffusionSkipReport.execute(holder_model, {"samples": first}).result[1])
    assert len(between["steps"]) == 12 and between["sampler"] == "dpmpp_2m"
    second = stock(model, steps=30)
    second_report = AdaptiveDiffusionSkipReport.execute(holder_model, {"samples": second}).result
    assert torch.equal(first, second)
    timeless = lambda text: {**json.loads(text), "totals": {**json.loads(text)["totals"], "sampling_seconds": 0}}
    assert timeless(first_report[1]) == timeless(second_report[1])
    assert torch.equal(first_report[0], second_report[0])
    assert json.loads(first_report[1])["totals"]["reused_steps"] > 0


def test_skip_report_sees_runs_of_clones_made_downstream(comfy, wan):
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3
    holder_model = patched(wan, threshold=0.1, max_skip_steps=3)
    downstream = ModelSamplingSD3().patch(holder_model, 5.0)[0]  # clones, as LoRA loaders do
    stock(with_patcher(wan, downstream), steps=20)
    report = json.loads(AdaptiveDiffusionSkipReport.execute(holder_model, {"samples": None}).result[1])
    assert len(report["steps"]) == 20 and report["totals"]["reused_steps"] > 0


def test_skip_report_rejects_unpatched_model(wan):
    with pytest.raises(ValueError, match="not patched"):
        AdaptiveDiffusionSkipReport.execute(wan.patcher, {"samples": torch.zeros(1)})


def test_warmup_at_least_steps_computes_every_step(wan):
    _, _, report = adaptive(wan, steps=6, warmup_steps=6, threshold=0.5)
    assert report["totals"]["reused_steps"] == 0
    assert "warm-up" in report["notes"][0]


def test_reuse_widget_reaches_the_run(wan):
    outputs, reports = {}, {}
    for reuse in REUSE_STRATEGIES:
        samples, _, report = adaptive(wan, steps=30, threshold=0.1, max_skip_steps=3, reuse=reuse)
        assert report["reuse"] == reuse and report["totals"]["reused_steps"] > 0
        assert torch.isfinite(samples).all()
        outputs[reuse], reports[reuse] = samples, report["totals"]
    assert not torch.equal(outputs["hold"], outputs["linear"])
    # the random tiny model's predictions are far from smooth: the parabola may always fall back to the line
    lagrange = reports["lagrange"]
    assert (not torch.equal(outputs["linear"], outputs["lagrange"])
            or lagrange["reuse_fallbacks"] == lagrange["full_run_network_calls"] - lagrange["network_calls"])


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


def test_skip_map_is_an_image_with_one_cell_per_step(wan):
    from adaptive_diffusion.adaptive_core import skip_map
    _, image, report = adaptive(wan, steps=25, threshold=0.1)
    assert image.ndim == 4 and image.shape[0] == 1 and image.shape[-1] == 3
    row = (image[0, 29] * 255).round().to(torch.uint8).tolist()
    colours = {skip_map.COMPUTED, skip_map.REUSED, skip_map.WARMUP}
    cells = sum(1 for i, p in enumerate(row) if tuple(p) in colours and (i == 0 or tuple(row[i - 1]) not in colours))
    assert cells == 25


def test_reference_parity_on_recorded_trajectory(families):
    """Decisions on latents recorded from real runs equal the transcribed reference rule."""
    import comfy.patcher_extension
    from test_reference_parity import product_computed_steps_scaled, reference_computed_steps
    from adaptive_diffusion.adaptive_core import SkipConfig
    for model in families[:3]:
        recorded = []
        patcher = model.patcher.clone()

        def record(executor, x, timestep, model_options, seed=None):
            recorded.append((x.clone(), timestep.clone()))
            return executor(x, timestep, model_options, seed)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, "test_record", record)
        stock(with_patcher(model, patcher), "euler", steps=40)
        ms = model.patcher.get_model_object("model_sampling")
        inputs = [x for x, _ in recorded]
        sigmas = [float(t[0]) for _, t in recorded] + [0.0]
        scaled = [ms.calculate_input(t, x) for x, t in recorded]
        for threshold, c_max in [(0.01, 4), (0.05, 2), (0.2, 0), (0.5, 4)]:
            expected = reference_computed_steps(scaled[1:] + scaled[-1:], threshold, c_max)
            got = product_computed_steps_scaled(inputs, sigmas, ms.calculate_input,
                                                SkipConfig(threshold, c_max, 4, reference_quirks=True))
            assert got == expected, (model.name, threshold, c_max)


def test_readme_policy_table_covers_every_sampler(comfy):
    import comfy.samplers
    import runtime
    from adaptive_diffusion.nodes.sampler_policy import POLICIES
    table = (runtime.REPO / "README.md").read_text().split("### Sampler policy")[1]
    for sampler in comfy.samplers.KSampler.SAMPLERS:
        row = next(line for line in table.splitlines() if f" {sampler}," in line or f" {sampler} |" in line)
        assert ("| never |" in row) == bool(POLICIES[sampler].never_skip), sampler


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
