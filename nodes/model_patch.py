"""AdaptiveDiffusion as a MODEL patch for any sampler node, and the node that reads its last run."""
from comfy_api.latest import io

from .patch import holder_of, patch_model, report_or_empty
from .widgets import (CATEGORY, CRITERIA, REPORT_WHEN_CACHED, check_declared, criterion_input, report_output,
                      skip_config, skip_inputs, skip_outputs)


class AdaptiveDiffusionPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionPatch",
            display_name="Apply AdaptiveDiffusion",
            category=CATEGORY,
            description="Patches a MODEL so that every sampler node using it (KSampler, SamplerCustom, "
                        "SamplerCustomAdvanced, other packs' samplers) skips redundant network calls.",
            inputs=[io.Model.Input("model", tooltip="The model to patch.")] + skip_inputs() + [
                io.Boolean.Input("reference_quirks", default=False, optional=True,
                                 tooltip="Reproduce the reference code's decisions exactly: its C_max guard "
                                         "starts after five decisions and C_max=0 means unlimited; reuse is "
                                         "then always hold, as in the reference, and the criterion third_order."),
                criterion_input(),
            ],
            outputs=[io.Model.Output(tooltip="The patched model.")],
        )

    @classmethod
    def validate_inputs(cls, threshold=None, reuse=None, criterion=None):
        return check_declared(cls, threshold=threshold, reuse=reuse, criterion=criterion)

    @classmethod
    def execute(cls, model, threshold, max_skip_steps, warmup_steps, reuse, reference_quirks=False,
                criterion=CRITERIA[0]) -> io.NodeOutput:
        config = skip_config(threshold, max_skip_steps, warmup_steps, reuse, criterion, reference_quirks)
        patched, _ = patch_model(model, config)
        return io.NodeOutput(patched)


class AdaptiveDiffusionSkipReport(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            **REPORT_WHEN_CACHED,
            node_id="AdaptiveDiffusionSkipReport",
            display_name="AdaptiveDiffusion Skip Map",
            category=CATEGORY,
            description="The skip map and report of the last run of a model patched by Apply AdaptiveDiffusion.",
            inputs=[
                io.Model.Input("model", tooltip="The patched model (the output of Apply AdaptiveDiffusion)."),
                io.Latent.Input("latent", tooltip="The sampler's output latent: makes this node run after it."),
            ],
            outputs=skip_outputs(),
        )

    @classmethod
    def execute(cls, model, latent) -> io.NodeOutput:
        holder = holder_of(model)
        if holder is None:
            raise ValueError("AdaptiveDiffusion Skip Map: the model input is not patched by Apply AdaptiveDiffusion")
        return report_output(report_or_empty(holder))
