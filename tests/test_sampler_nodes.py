"""The AdaptiveDiffusion nodes inside the real ComfyUI runtime, on tiny real architectures."""
import json

import pytest
import torch

from sampling import (CRITERIA, AdaptiveDiffusionSkipReport, advanced, adaptive, empty_latent, patched, runs_of_reuse,
                      stock, with_patcher)


def forward_passes(model, run):
    """Forward passes of the model's diffusion network while ``run()`` runs, and its result."""
    passes = []
    hook = model.patcher.model.diffusion_model.register_forward_pre_hook(lambda *args: passes.append(1))
    try:
        result = run()
    finally:
        hook.remove()
    return len(passes), result


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "dpm_2", "uni_pc"])
def test_skipped_steps_really_skip_the_network(families, sampler):
    for model in families[:3]:
        full, _ = forward_passes(model, lambda: stock(model, sampler, steps=30))
        made, (_, _, report) = forward_passes(
            model, lambda: adaptive(model, sampler, steps=30, threshold=0.1, max_skip_steps=3))
        totals = report["totals"]
        # cond and uncond go through one batched forward pass: one pass per CFG'd call
        assert totals["full_run_network_calls"] == full and totals["network_calls"] == made, model.name
        assert made < full, (model.name, sampler)
        assert max(runs_of_reuse(report)) <= 3
        assert sum(s["calls"] for s in report["steps"]) == full


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


@pytest.mark.parametrize("criterion", CRITERIA)
def test_denoise_half_counts_warmup_from_first_sampled_step(wan, criterion):
    latent = {"samples": stock(wan, steps=10)}
    samples, _, report = adaptive(wan, steps=20, denoise=0.5, latent=latent, threshold=0.5, warmup_steps=4,
                                  criterion=criterion)
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
    samples, report = advanced(wan, steps=30, start=10, end=25, threshold=0.1, warmup_steps=5)
    assert [s["step"] for s in report["steps"]] == list(range(15))
    assert [s["reason"] for s in report["steps"][:6]] == ["warmup"] * 5 + ["estimator"]
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


def test_warmup_at_least_steps_computes_every_step(wan):
    _, _, report = adaptive(wan, steps=6, warmup_steps=6, threshold=0.5)
    assert report["totals"]["reused_steps"] == 0
    assert "warm-up" in report["notes"][0]


def test_reuse_widget_reaches_the_run(demo):
    """On the trained demo model the predictions are smooth enough that no order falls back, so each
    strategy gives its own output on the same skipped steps."""
    outputs, skipped = {}, {}
    for reuse in ("hold", "linear", "lagrange"):
        samples, _, report = adaptive(demo, steps=30, cfg=3.0, threshold=0.05, max_skip_steps=3, reuse=reuse)
        assert report["reuse"] == reuse and report["totals"]["reused_steps"] > 0
        assert torch.isfinite(samples).all()
        outputs[reuse], skipped[reuse] = samples, [s["step"] for s in report["steps"] if not s["computed"]]
    assert not torch.equal(outputs["hold"], outputs["linear"])
    assert not torch.equal(outputs["linear"], outputs["lagrange"])


def test_skip_map_output_shows_this_run(wan):
    from PIL import Image
    from test_maps import CELLS, strip_cells
    _, image, report = adaptive(wan, steps=25, threshold=0.1)
    assert image.ndim == 4 and image.shape[0] == 1 and image.shape[-1] == 3
    picture = Image.fromarray((image[0] * 255).round().to(torch.uint8).numpy())
    expected = ["reused" if not s["computed"] else "warmup" if s["reason"] == "warmup" else "computed"
                for s in report["steps"]]
    assert "reused" in expected and [CELLS[c] for c in strip_cells(picture)] == expected


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
    import comfy_runtime
    from adaptive_diffusion.nodes.sampler_policy import POLICIES
    table = (comfy_runtime.REPO / "README.md").read_text().split("### Sampler policy")[1]
    for sampler in comfy.samplers.KSampler.SAMPLERS:
        row = next(line for line in table.splitlines() if f" {sampler}," in line or f" {sampler} |" in line)
        assert ("| never |" in row) == bool(POLICIES[sampler].never_skip), sampler
