"""Every way of skipping network calls that the benchmark compares, each as a patched ComfyUI model.

Ours and the baselines (baselines.py: stale x0, fixed interval, the greedy oracle's forced paths,
SADA, ZEUS) are policy configs that go through the product's own patch_model, the one door the
nodes use. ComfyUI core's EasyCache and LazyCache are its own nodes, run unchanged.
"""
import sys
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402

comfy_runtime.import_comfy()
comfy_runtime.load_extension()
from comfy_extras.nodes_easycache import EasyCacheNode, LazyCacheNode  # noqa: E402

from adaptive_diffusion.adaptive_core import SkipConfig  # noqa: E402
from adaptive_diffusion.nodes.patch import patch_model  # noqa: E402

import baselines  # noqa: E402


def patched(model, config):
    return patch_model(model, config)[0]


def ours(model, threshold, max_skip_steps, reuse, warmup_steps=4):
    return patched(model, SkipConfig(threshold, max_skip_steps, warmup_steps, reuse=reuse))


def easycache(model, reuse_threshold):
    return EasyCacheNode.execute(model, reuse_threshold, 0.15, 0.95, False).result[0]


def lazycache(model, reuse_threshold):
    return LazyCacheNode.execute(model, reuse_threshold, 0.15, 0.95, False).result[0]


def stale_x0(model, threshold, max_skip_steps=4):
    return patched(model, baselines.StaleX0(threshold, max_skip_steps))


def fixed_interval(model, k):
    return patched(model, baselines.FixedInterval(k))


def forced(model, skipped):
    return patched(model, baselines.Forced(frozenset(skipped)))


def sada(model, tolerance, max_skips=1):
    return patched(model, baselines.Sada(tolerance, max_skips))


def zeus(model, interval):
    return patched(model, baselines.Zeus(interval))
