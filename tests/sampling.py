"""Helpers that run ComfyUI's stock and AdaptiveDiffusion samplers on a tiny model in-process."""
import json

import torch

import comfy_runtime

comfy_runtime.import_comfy()
comfy_runtime.import_extension()
from adaptive_diffusion.nodes.ksampler import AdaptiveDiffusionKSampler, AdaptiveDiffusionKSamplerAdvanced  # noqa: E402
from adaptive_diffusion.nodes.model_patch import AdaptiveDiffusionPatch, AdaptiveDiffusionSkipReport  # noqa: E402
from adaptive_diffusion.nodes.widgets import CRITERIA, DEFAULTS  # noqa: E402

# what a new node's widgets hold
THRESHOLD, MAX_SKIP, WARMUP, REUSE, CRITERION = (DEFAULTS.tolerance, DEFAULTS.max_skip_steps, DEFAULTS.warmup_steps,
                                                 DEFAULTS.reuse, CRITERIA[0])


def empty_latent(model, batch=1):
    return {"samples": torch.zeros((batch,) + tuple(model.latent_shape[1:]))}


def with_patcher(model, patcher):
    return type(model)(model.name, patcher, model.latent_shape, model.make_cond)


def stock(model, sampler="euler", scheduler="simple", steps=8, cfg=2.0, latent=None, seed=1, **kw):
    import nodes
    latent = latent or empty_latent(model)
    return nodes.common_ksampler(model.patcher, seed, steps, cfg, sampler, scheduler,
                                 model.make_cond(1), model.make_cond(2), latent, **kw)[0]["samples"]


def adaptive(model, sampler="euler", scheduler="simple", steps=8, cfg=2.0, latent=None, seed=1,
             threshold=THRESHOLD, max_skip_steps=MAX_SKIP, warmup_steps=WARMUP, denoise=1.0, patcher=None,
             reuse=REUSE, criterion=CRITERION):
    latent = latent or empty_latent(model)
    out = AdaptiveDiffusionKSampler.execute(patcher or model.patcher, seed, steps, cfg, sampler, scheduler,
                                            model.make_cond(1), model.make_cond(2), latent, denoise,
                                            threshold, max_skip_steps, warmup_steps, reuse, criterion)
    samples, skip_map, report = out.result
    return samples["samples"], skip_map, json.loads(report)


def runs_of_reuse(report):
    """Lengths of the runs of consecutive reused steps."""
    runs, current = [], 0
    for step in report["steps"]:
        current = 0 if step["computed"] else current + 1
        if current:
            runs.append(current)
    return runs


def advanced(model, patcher=None, sampler="euler", scheduler="simple", steps=8, start=0, end=10000,
             leftover="disable", add_noise="enable", threshold=THRESHOLD, max_skip_steps=MAX_SKIP, warmup_steps=WARMUP,
             latent=None, reuse=REUSE, criterion=CRITERION):
    out = AdaptiveDiffusionKSamplerAdvanced.execute(
        patcher or model.patcher, add_noise, 1, steps, 2.0, sampler, scheduler, model.make_cond(1),
        model.make_cond(2), latent or empty_latent(model), start, end, leftover,
        threshold, max_skip_steps, warmup_steps, reuse, criterion).result
    return out[0]["samples"], json.loads(out[2])


def stock_advanced(model, sampler="euler", scheduler="simple", steps=8, start=0, end=10000, leftover="disable",
                   add_noise="enable", latent=None, patcher=None):
    import nodes
    return nodes.KSamplerAdvanced().sample(patcher or model.patcher, add_noise, 1, steps, 2.0, sampler, scheduler,
                                           model.make_cond(1), model.make_cond(2), latent or empty_latent(model),
                                           start, end, leftover)[0]["samples"]


def patched(model, threshold=0.0, max_skip_steps=MAX_SKIP, warmup_steps=WARMUP, reference_quirks=False, reuse=REUSE,
            criterion=CRITERION):
    return AdaptiveDiffusionPatch.execute(model.patcher, threshold, max_skip_steps, warmup_steps, reuse,
                                          reference_quirks, criterion).result[0]
