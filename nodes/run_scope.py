"""The one way both patches (step skipping, early exit) live on a ComfyUI model: a holder in
transformer_options, keyed wrappers, and an OUTER_SAMPLE wrapper that owns each run's state."""
import contextlib
import logging

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension

from ..adaptive_core import RunStatus


class SharedHolder:
    """Per patched model: its settings, how to start a run, and the report of its last run.

    ModelPatcher.clone() deep-copies model_options; every clone made downstream (LoRA loaders,
    ModelSamplingSD3, the other patch of this pack) must report into this same holder, which the
    map nodes read."""
    last_report = None

    def __deepcopy__(self, memo):
        return self

    def start_run(self, guider, sigmas, sampler, options):
        """The state of one sampling run; its ``finish(status)`` returns the run's report."""
        raise NotImplementedError


def attach(model, key, run_key, holder: SharedHolder, wrappers):
    """A clone of ``model`` carrying ``holder`` under ``key``; ``wrappers`` ({WrappersMP type: fn})
    find the running run under ``run_key``. Replaces an earlier patch with the same key."""
    model = model.clone()
    model.model_options["transformer_options"][key] = holder
    wrappers = {comfy.patcher_extension.WrappersMP.OUTER_SAMPLE: _outer_sample(key, run_key), **wrappers}
    for wrapper_type, wrapper in wrappers.items():
        model.remove_wrappers_with_key(wrapper_type, key)
        model.add_wrapper_with_key(wrapper_type, key, wrapper)
    return model


def holder_on(model, key):
    return model.model_options.get("transformer_options", {}).get(key)


def _outer_sample(key, run_key):
    def outer_sample_wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        with _run_options(guider) as options:
            holder = options[key]
            run = options[run_key] = holder.start_run(guider, sigmas, sampler, options)
            status = RunStatus.COMPLETE
            try:
                # a copy: uni_pc writes into the sigmas it gets, which a cached scheduler node still holds
                return executor(noise, latent_image, sampler, sigmas.clone(), *args, **kwargs)
            except comfy.model_management.InterruptProcessingException:
                status = RunStatus.INTERRUPTED
                raise
            except BaseException:
                status = RunStatus.FAILED
                raise
            finally:
                holder.last_report = run.finish(status)
                logging.info(holder.last_report.summary())
    return outer_sample_wrapper


@contextlib.contextmanager
def _run_options(guider):
    """The transformer_options of one sampling run: a copy of the guider's model_options that the
    run's state goes into, restored afterwards so nothing outlives the run."""
    original = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original)
    try:
        yield guider.model_options["transformer_options"]
    finally:
        guider.model_options = original
