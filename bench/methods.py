"""Every way of skipping network calls that the benchmark compares, with the settings swept.

Ours and the step-level baselines (baselines.py: fixed interval, the greedy oracle's
forced paths, SADA and ZEUS from their papers) are policy configs that go through the product's
own patch_model, the one door the nodes use. ComfyUI core's EasyCache and LazyCache are its own
nodes, run unchanged; SADA and ZEUS from ComfyUI-AccelDiff's published code are its own samplers
(peers.py).
"""
from comfy_extras.nodes_easycache import EasyCacheNode, LazyCacheNode

from adaptive_diffusion.adaptive_core import ErrorControlConfig, SkipConfig
from adaptive_diffusion.nodes.patch import patch_model
from adaptive_diffusion.nodes.widgets import DEFAULTS

import baselines
import peers

# the node's defaults: error control with auto reuse; the sweep of its one widget, the tolerance
DEFAULT = "ours (default: error, auto)"
TOLERANCES = [0.0001, 0.0003, 0.0007, 0.0015, 0.003, 0.005, 0.008, 0.015]
# coarser, for the fixed-reuse variants that show what auto adds
VARIANT_TOLERANCES = [0.0003, 0.001, 0.003, 0.008, 0.015]
# At fewer steps each step moves the latent further, so one tolerance allows fewer skips: below 50
# steps the sweep goes on until it reaches 3x fewer calls.
WIDE_TOLERANCES = [0.025, 0.04, 0.06, 0.1]
DELTAS = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
PAPER = "paper (third_order, hold)"


def patched(model, config):
    return patch_model(model, config)[0]


def ours(model, tolerance, reuse=DEFAULTS.reuse, max_skip_steps=DEFAULTS.max_skip_steps,
         warmup_steps=DEFAULTS.warmup_steps):
    return patched(model, ErrorControlConfig(tolerance, max_skip_steps, warmup_steps, reuse))


def third_order(model, threshold, reuse, max_skip_steps=4, warmup_steps=4):
    return patched(model, SkipConfig(threshold, max_skip_steps, warmup_steps, reuse=reuse))


def easycache(model, reuse_threshold):
    return EasyCacheNode.execute(model, reuse_threshold, 0.15, 0.95, False).result[0]


def lazycache(model, reuse_threshold):
    return LazyCacheNode.execute(model, reuse_threshold, 0.15, 0.95, False).result[0]


def configurations(model, sampler, steps, sweep=True):
    """(method, params, runner, steps to sample) for one sampler and step count: the runner is a
    patched MODEL or a peer's SAMPLER (harness.Bench.sample). Without ``sweep``: our default, the
    paper's rule, hold and the peers' own code only."""
    wide = WIDE_TOLERANCES if steps < 50 else []
    out = [(DEFAULT, f"tol={t}", ours(model, t), steps) for t in TOLERANCES + wide]
    out += [(PAPER, f"δ={d}", third_order(model, d, "hold"), steps) for d in DELTAS]
    out += [("ours (error, hold)", f"tol={t}", ours(model, t, "hold"), steps) for t in VARIANT_TOLERANCES + wide]
    if peers.supports(sampler):
        out += [(method, params, ks, steps) for method, params, ks in peers.sweep(sampler, steps)]
    if not sweep:
        # where the peers' own code has no such sampler, their papers' step-level rules stand in
        return out if peers.supports(sampler) else out + step_level_peers(model, steps)
    out += [("ours (error, linear)", f"tol={t}", ours(model, t, "linear"), steps) for t in VARIANT_TOLERANCES]
    out += step_level_peers(model, steps)
    out += [("fixed interval", f"k={k}", patched(model, baselines.FixedInterval(k)), steps) for k in (2, 3)]
    out += [("EasyCache", f"thr={t}", easycache(model, t), steps) for t in (0.05, 0.1, 0.2)]
    out += [("LazyCache", f"thr={t}", lazycache(model, t), steps) for t in (0.05, 0.1, 0.2, 0.4)]
    fewer = sorted({max(2, round(steps * f)) for f in (0.66, 0.5, 0.4, 0.33)})
    out += [("fewer steps", f"steps={n}", model, n) for n in fewer if n < steps]
    return out


def step_level_peers(model, steps):
    """SADA's and ZEUS's skipping rules as transcribed from their papers (baselines.py)."""
    out = [("SADA (step-level, from the paper)", f"τ={t} skips={k}", patched(model, baselines.Sada(t, k)), steps)
           for t, k in ((0.5, 1), (1.0, 1), (3.0, 1), (1.0, 2), (3.0, 2))]
    return out + [("ZEUS (step-level, from the paper)", f"interval={k}", patched(model, baselines.Zeus(k)), steps)
                  for k in (2, 3, 4)]


def forced(model, skipped, reuse="hold"):
    return patched(model, baselines.Forced(frozenset(skipped), reuse))
