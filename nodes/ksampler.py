"""AdaptiveDiffusion drop-in replacements for KSampler and KSamplerAdvanced."""
import comfy.samplers
import nodes
from comfy_api.latest import io

from .patch import patch_model, report_or_empty
from .widgets import (CATEGORY, CRITERIA, REPORT_WHEN_CACHED, check_declared, criterion_input, report_output, skip_config,
                      skip_inputs, skip_outputs)

SEED_MAX = 0xffffffffffffffff


def _sampling_inputs(seed_name):
    # Names, order and defaults of core KSampler: saved workflows store widget values by position.
    return [
        io.Model.Input("model", tooltip="The model used for denoising the input latent."),
        io.Int.Input(seed_name, default=0, min=0, max=SEED_MAX, control_after_generate=True,
                     tooltip="The random seed used for creating the noise."),
        io.Int.Input("steps", default=20, min=1, max=10000, tooltip="The number of steps used in the denoising process."),
        io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                       tooltip="The Classifier-Free Guidance scale."),
        io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS,
                       tooltip="The sampling algorithm. See the README for which samplers skip and why."),
        io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS,
                       tooltip="The scheduler controls how noise is gradually removed."),
        io.Conditioning.Input("positive", tooltip="The conditioning describing what to include."),
        io.Conditioning.Input("negative", tooltip="The conditioning describing what to exclude."),
        io.Latent.Input("latent_image", tooltip="The latent image to denoise."),
    ]


def _sample(model, config, **sampler_args):
    patched, holder = patch_model(model, config)
    (latent,) = nodes.common_ksampler(patched, **sampler_args)
    return report_output(report_or_empty(holder), latent)


class AdaptiveDiffusionKSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            **REPORT_WHEN_CACHED,
            node_id="AdaptiveDiffusionKSampler",
            display_name="KSampler (AdaptiveDiffusion)",
            category=CATEGORY,
            description="KSampler that skips network calls the third-order latent estimator finds redundant, "
                        "reusing the last noise prediction (AdaptiveDiffusion, NeurIPS 2024).",
            inputs=_sampling_inputs("seed") + [
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="The amount of denoising applied; lower keeps more of the input latent."),
            ] + skip_inputs() + [criterion_input()],
            outputs=[io.Latent.Output(tooltip="The denoised latent.")] + skip_outputs(),
        )

    @classmethod
    def validate_inputs(cls, cfg=None, sampler_name=None, scheduler=None, denoise=None, threshold=None, reuse=None,
                        criterion=None):
        return check_declared(cls, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler, denoise=denoise,
                              threshold=threshold, reuse=reuse, criterion=criterion)

    @classmethod
    def execute(cls, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                denoise, threshold, max_skip_steps, warmup_steps, reuse, criterion=CRITERIA[0]) -> io.NodeOutput:
        return _sample(model, skip_config(threshold, max_skip_steps, warmup_steps, reuse, criterion),
                       seed=seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                       positive=positive, negative=negative, latent=latent_image, denoise=denoise)


class AdaptiveDiffusionKSamplerAdvanced(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        inputs = _sampling_inputs("noise_seed")
        inputs.insert(1, io.Combo.Input("add_noise", options=["enable", "disable"],
                                        tooltip="Add noise to the latent before sampling."))
        return io.Schema(
            **REPORT_WHEN_CACHED,
            node_id="AdaptiveDiffusionKSamplerAdvanced",
            display_name="KSampler Advanced (AdaptiveDiffusion)",
            category=CATEGORY,
            description="KSamplerAdvanced with AdaptiveDiffusion step skipping; warm-up counts from start_at_step.",
            inputs=inputs + [
                io.Int.Input("start_at_step", default=0, min=0, max=10000, tooltip="The step to start sampling at."),
                io.Int.Input("end_at_step", default=10000, min=0, max=10000, tooltip="The step to stop sampling at."),
                io.Combo.Input("return_with_leftover_noise", options=["disable", "enable"],
                               tooltip="Return the latent with the noise left at end_at_step."),
            ] + skip_inputs() + [criterion_input()],
            outputs=[io.Latent.Output(tooltip="The denoised latent.")] + skip_outputs(),
        )

    @classmethod
    def validate_inputs(cls, add_noise=None, cfg=None, sampler_name=None, scheduler=None,
                        return_with_leftover_noise=None, threshold=None, reuse=None, criterion=None):
        return check_declared(cls, add_noise=add_noise, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                              return_with_leftover_noise=return_with_leftover_noise, threshold=threshold,
                              reuse=reuse, criterion=criterion)

    @classmethod
    def execute(cls, model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
                latent_image, start_at_step, end_at_step, return_with_leftover_noise,
                threshold, max_skip_steps, warmup_steps, reuse, criterion=CRITERIA[0]) -> io.NodeOutput:
        return _sample(model, skip_config(threshold, max_skip_steps, warmup_steps, reuse, criterion),
                       seed=noise_seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                       positive=positive, negative=negative, latent=latent_image,
                       disable_noise=add_noise == "disable", start_step=start_at_step, last_step=end_at_step,
                       force_full_denoise=return_with_leftover_noise != "enable")
