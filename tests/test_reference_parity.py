"""reference_quirks reproduces the published reference code's decisions exactly.

The reference (UniModal4Reasoning/AdaptiveDiffusion, sparse_pipeline.py) is transcribed here from
its published description, independently of the product code.
"""
import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import AdaptiveRun, SkipConfig  # noqa: E402


def reference_computed_steps(latents, threshold, max_skip_steps):
    """latents[i] is the latent after step i; returns, per step, whether the network was called."""
    prev_latents, mask, diff_list, computed = [], [], [], []

    def estimate_skipping(latent):
        prev_diff, prev_prev_diff = diff_list[-1], diff_list[-2]
        cur_diff = (latent - prev_latents[-1]).abs().mean()
        diff_list.append(cur_diff)
        if len(mask) > 4 and not any(mask[-max_skip_steps:]):
            return True
        if abs((cur_diff + prev_prev_diff) / 2 - prev_diff) <= prev_diff * threshold:
            return False
        return True

    for latent in latents:
        if len(prev_latents) <= 3:
            computed.append(True)
            if len(prev_latents) > 1:
                diff_list.append((prev_latents[-1] - prev_latents[-2]).abs().mean())
        else:
            computed.append(bool(mask[-1]))
        if len(prev_latents) >= 3:
            mask.append(estimate_skipping(latent))
        prev_latents.append(latent)
    return computed


def product_computed_steps(noise, latents, sigmas, config):
    # what each step's network call sees: the initial noise, then the latent after each step
    return product_computed_steps_scaled([noise] + latents[:-1], sigmas, lambda sigma, x: x, config)


def synthetic_trajectory(seed, steps=50, wobble=0.05):
    """A smooth decay with seeded wobbles: estimator values straddle the thresholds tested.
    Without wobble every step is skippable, which drives the C_max guard."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    latents, x = [], noise
    for i in range(steps):
        factor = 0.93 * (1 + wobble * torch.randn((), generator=g, dtype=torch.float64))
        x = x * factor + wobble / 5 * torch.randn(x.shape, generator=g, dtype=torch.float64)
        latents.append(x)
    return noise, latents


CASES = [(t, c) for t in (0.005, 0.01, 0.03, 0.1, 0.5) for c in (0, 1, 2, 4, 6)]


@pytest.mark.parametrize("threshold,max_skip_steps", CASES)
def test_parity_on_synthetic_trajectories(threshold, max_skip_steps):
    for seed, wobble in [(0, 0.0), (1, 0.01)] + [(seed, 0.05) for seed in range(2, 8)]:
        noise, latents = synthetic_trajectory(seed, wobble=wobble)
        sigmas = torch.linspace(14.6, 0.0, len(latents) + 1, dtype=torch.float64).tolist()
        expected = reference_computed_steps(latents, threshold, max_skip_steps)
        got = product_computed_steps(noise, latents, sigmas,
                                     SkipConfig(threshold, max_skip_steps, warmup_steps=4, reference_quirks=True))
        assert got == expected, (seed, threshold, max_skip_steps)


def test_reference_quirks_are_exercised():
    """The cases above reach the quirks: a 5-long first skip run with C_max 4, unlimited C_max 0."""
    noise, latents = synthetic_trajectory(0, wobble=0.0)
    computed = reference_computed_steps(latents, 0.5, 4)
    assert computed[4:9] == [False] * 5 and computed[9]
    assert sum(computed) < len(computed) - 10
    unlimited = reference_computed_steps(latents, 0.5, 0)
    longest = max(len(run) for run in "".join("C" if c else "." for c in unlimited).split("C"))
    assert longest > 6


def test_clean_semantics_differ_from_reference_where_documented():
    noise, latents = synthetic_trajectory(0, wobble=0.0)
    sigmas = torch.linspace(14.6, 0.0, len(latents) + 1, dtype=torch.float64).tolist()
    clean = product_computed_steps(noise, latents, sigmas, SkipConfig(0.5, 4, warmup_steps=4))
    assert clean[4:8] == [False] * 4 and clean[8]  # at most C_max = 4 in a row, from the first run on
    assert all(product_computed_steps(noise, latents, sigmas, SkipConfig(0.5, 0, warmup_steps=4)))


def product_computed_steps_scaled(inputs, sigmas, scale_input, config):
    run = AdaptiveRun(config, sigmas, scale_input=scale_input)
    for i, x in enumerate(inputs):
        run(x, torch.tensor([sigmas[i]], dtype=x.dtype), lambda: torch.zeros_like(x))
    return [r.computed for r in run.finish().records]
