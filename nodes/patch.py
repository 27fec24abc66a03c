"""Attaches AdaptiveDiffusion to a ComfyUI model through keyed wrappers only.

OUTER_SAMPLE (run_scope.py) brackets one sampling run: it creates the run's state and drops it in
``finally``, so a patched model reused across queued prompts and several sampler nodes never
shares state. PREDICT_NOISE sees one whole CFG'd evaluation (cond, uncond, ControlNet, CFG):
returning early there saves every forward pass of that step.
"""
import comfy.patcher_extension

from ..adaptive_core import AdaptiveRun, PolicyConfig, RunReport
from .events import step_sender
from .run_scope import SharedHolder, attach, holder_on
from .sampler_policy import policy_for

KEY = "adaptive_diffusion"
RUN_KEY = "adaptive_diffusion_run"
# transformer_options keys other caching nodes leave; stacking two caches compounds their errors.
OTHER_CACHES = {"easycache": "EasyCache/LazyCache"}


class AdaptiveDiffusionHolder(SharedHolder):
    def __init__(self, config: PolicyConfig):
        self.config = config

    def start_run(self, guider, sigmas, sampler, options) -> AdaptiveRun:
        policy = policy_for(sampler)
        schedule = sigmas.tolist()
        model_sampling = guider.model_patcher.get_model_object("model_sampling")
        run = AdaptiveRun(self.config, schedule, sampler=policy.name, lookahead=policy.lookahead,
                          skipping_forbidden=policy.never_skip and f"{policy.name} {policy.never_skip}",
                          scale_input=model_sampling.calculate_input,
                          on_step=step_sender(len(schedule) - 1, self.config.settings().get("threshold")))
        if policy.note:
            run.report.notes.append(policy.note)
        for key, name in OTHER_CACHES.items():
            if key in options:
                run.report.notes.append(f"stacked with {name}: both skip work, their errors add up")
        return run


def patch_model(model, config: PolicyConfig):
    """A clone of ``model`` that skips steps with this policy config (SkipConfig, or a benchmark
    baseline's); replaces an earlier patch. Returns the clone and its holder."""
    holder = AdaptiveDiffusionHolder(config)
    wrappers = {comfy.patcher_extension.WrappersMP.PREDICT_NOISE: predict_noise_wrapper}
    return attach(model, KEY, RUN_KEY, holder, wrappers), holder


def holder_of(model):
    return holder_on(model, KEY)


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
