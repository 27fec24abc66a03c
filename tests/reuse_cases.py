"""Analytic cases the reuse tests share: a uniform schedule, a network whose noise prediction is a
polynomial in σ, and a reuse cache that has seen given calls."""
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import CalibratedReuse, REUSE_STRATEGIES  # noqa: E402

# exact in float32: AdaptiveRun reads σ back from the device as float32, as ComfyUI's sigmas are
SIGMAS = [i / 32 for i in range(32, -1, -1)]
SHAPE = (2, 4, 6, 6)


def polynomial_derivative(degree, seed=0):
    """d(σ) = a + b σ + c σ² (up to ``degree``): a network whose noise prediction is exactly polynomial in σ,
    and so in the schedule position, which is affine in σ on SIGMAS."""
    g = torch.Generator().manual_seed(seed)
    coefficients = [torch.randn(SHAPE, generator=g, dtype=torch.float64) * scale
                    for scale in (1.0, 0.3, 0.1)[:degree + 1]]
    return lambda sigma: sum(c * sigma ** i for i, c in enumerate(coefficients))


def stored(strategy, history):
    """A cache that saw real calls at these (schedule position, constant derivative value); σ = 1."""
    cache = CalibratedReuse(REUSE_STRATEGIES[strategy], calibrate=False)
    x, sigma = torch.zeros(SHAPE, dtype=torch.float64), torch.ones(SHAPE[0], dtype=torch.float64)
    for at, value in history:
        cache.store(x, sigma, x - torch.full(SHAPE, value, dtype=torch.float64), at)
    return cache


def rebuilt_derivative(cache, at):
    """What the cache serves a skip at schedule position ``at`` (x = 0, σ = 1), as a derivative."""
    x = torch.zeros(SHAPE, dtype=torch.float64)
    return -cache.rebuild(x, torch.ones(SHAPE[0], dtype=torch.float64), at, {})
