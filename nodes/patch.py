"""Attaches AdaptiveDiffusion to a ComfyUI model through keyed wrappers only.

OUTER_SAMPLE brackets one sampling run: it creates the run's state and drops it in ``finally``,
so a patched model reused across queued prompts and several sampler nodes never shares state.
PREDICT_NOISE sees one whole CFG'd evaluation (cond, uncond, ControlNet, CFG): returning early
there saves every forward pass of that step.
"""
import logging
import time

import comfy.model_management
import comfy.patcher_extension

from ..adaptive_core import AdaptiveRun, RunReport, SkipConfig
from .events import step_sender
from .run_scope import SharedHolder, run_options
from .sampler_policy import policy_for

KEY = "adaptive_diffusion"
RUN_KEY = "adaptive_diffusion_run"
# transformer_options keys other caching nodes leave; stacking two caches compounds their errors.
OTHER_CACHES = {"easycache": "EasyCache/LazyCache"}


class AdaptiveDiffusionHolder(SharedHolder):
    """Per patched model: the configuration, how to start a run, and the report of its last run."""

    def __init__(self, config: SkipConfig):
        self.config = config

    def new_run(self, sigmas, sampler, model_sampling) -> AdaptiveRun:
        policy = policy_for(sampler)
        schedule = sigmas.tolist()
        run = AdaptiveRun(self.config, schedule, sampler=policy.name, lookahead=policy.lookahead,
                          skipping_forbidden=policy.never_skip and f"{policy.name} {policy.never_skip}",
                          scale_input=model_sampling.calculate_input,
                          on_step=step_sender(len(schedule) - 1, self.config.threshold))
        if policy.note:
            run.report.notes.append(policy.note)
        return run


def patch_model(model, config: SkipConfig, holder_class=AdaptiveDiffusionHolder):
    """A clone of ``model`` that skips steps with this config; replaces an earlier patch."""
    model = model.clone()
    holder = holder_class(config)
    model.model_options["transformer_options"][KEY] = holder
    for wrapper_type, wrapper in ((comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, outer_sample_wrapper),
                                  (comfy.patcher_extension.WrappersMP.PREDICT_NOISE, predict_noise_wrapper)):
        model.remove_wrappers_with_key(wrapper_type, KEY)
        model.add_wrapper_with_key(wrapper_type, KEY, wrapper)
    return model, holder


def holder_of(model):
    return model.model_options.get("transformer_options", {}).get(KEY)


def outer_sample_wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
    guider = executor.class_obj
    with run_options(guider) as options:
        holder = options[KEY]
        run = holder.new_run(sigmas, sampler, guider.model_patcher.get_model_object("model_sampling"))
        for key, name in OTHER_CACHES.items():
            if key in options:
                run.report.notes.append(f"stacked with {name}: both skip work, their errors add up")
        options[RUN_KEY] = run
        start, status = time.perf_counter(), "complete"
        try:
            # a copy: uni_pc writes into the sigmas it gets, which a cached scheduler node still holds
            return executor(noise, latent_image, sampler, sigmas.clone(), *args, **kwargs)
        except comfy.model_management.InterruptProcessingException:
            status = "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            holder.last_report = run.finish(status)
            holder.last_report.seconds = time.perf_counter() - start
            logging.info(holder.last_report.summary())


def predict_noise_wrapper(executor, x, timestep, model_options, seed=None):
    run = model_options.get("transformer_options", {}).get(RUN_KEY)
    if run is None:
        return executor(x, timestep, model_options, seed)
    return run(x, timestep, lambda: executor(x, timestep, model_options, seed))


def report_or_empty(holder):
    """The last run's report, or an empty one that says nothing was sampled."""
    if holder.last_report is not None:
        return holder.last_report
    return RunReport(holder.config, notes=["nothing was sampled (no steps between start and end)"])
