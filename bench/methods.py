"""Every way of skipping network calls that the benchmark compares, each as a patched ComfyUI model.

Ours goes through the product's own patch; the stale-x0 variant, fixed-interval reuse, the greedy
oracle's forced paths and the SADA/ZEUS baselines (baselines.py) reuse the same machinery with
another cache or policy (bench only).
ComfyUI core's EasyCache and LazyCache are its own nodes, run unchanged.
"""
import sys
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import runtime  # noqa: E402

runtime.import_comfy()
runtime.load_extension()
from comfy_extras.nodes_easycache import EasyCacheNode, LazyCacheNode  # noqa: E402

from adaptive_diffusion.adaptive_core import NoisePredictionCache, SkipConfig  # noqa: E402
from adaptive_diffusion.adaptive_core.policy import Decision  # noqa: E402
from adaptive_diffusion.nodes.patch import AdaptiveDiffusionHolder, patch_model  # noqa: E402

import baselines  # noqa: E402


def ours(model, threshold, max_skip_steps=4, warmup_steps=4, reuse="hold"):
    return patch_model(model, SkipConfig(threshold, max_skip_steps, warmup_steps, reuse=reuse))[0]


def easycache(model, reuse_threshold):
    return EasyCacheNode.execute(model, reuse_threshold, 0.15, 0.95, False).result[0]


def lazycache(model, reuse_threshold):
    return LazyCacheNode.execute(model, reuse_threshold, 0.15, 0.95, False).result[0]


class StaleDenoised(NoisePredictionCache):
    """What ComfyUI-AccelDiff reuses: the last denoised image itself, not the noise prediction."""

    def store(self, x, sigma, denoised, at):
        self.derivatives = [denoised.detach()]

    def rebuild(self, x, sigma, at):
        return self.derivatives[-1]


class Forced:
    """A given set of steps reuses, every other step computes: the greedy oracle's paths."""

    def __init__(self, skipped):
        self.skipped = frozenset(skipped)

    def decide(self, step, value):
        return Decision(step not in self.skipped, "forced")

    def overrule(self, decision):
        pass


def _holder(policy=None, cache=None, parts=None):
    """parts: a factory of a (policy, cache) pair that share state, for baselines whose decision
    reads the cached history."""
    class Holder(AdaptiveDiffusionHolder):
        def new_run(self, sigmas, sampler, model_sampling):
            run = super().new_run(sigmas, sampler, model_sampling)
            run.policy = policy() if policy else run.policy
            run.cache = cache() if cache else run.cache
            if parts:
                run.policy, run.cache = parts()
            return run
    return Holder


def stale_x0(model, threshold, max_skip_steps=4):
    return patch_model(model, SkipConfig(threshold, max_skip_steps), _holder(cache=StaleDenoised))[0]


def fixed_interval(model, k):
    # threshold > 0 only keeps the run's bookkeeping on; the policy alone decides
    return patch_model(model, SkipConfig(1.0, 1000), _holder(policy=lambda: baselines.EveryKth(k)))[0]


def forced(model, skipped):
    return patch_model(model, SkipConfig(1.0, 1000, warmup_steps=0), _holder(policy=lambda: Forced(skipped)))[0]




def sada(model, tolerance, max_skips=1):
    return patch_model(model, SkipConfig(1.0, 1000), _holder(parts=baselines.sada(tolerance, max_skips)))[0]


def zeus(model, interval):
    return patch_model(model, SkipConfig(1.0, 1000), _holder(parts=baselines.zeus(interval)))[0]
