"""AdaptiveDiffusion as a MODEL patch for any sampler node, and the node that reads its last run."""
from comfy_api.latest import io

from .patch import holder_of, patch_model, report_or_empty
from .widgets import (CATEGORY, CRITERIA, check_declared, criterion_input, patched, report_output, report_schema,
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
        return report_schema("AdaptiveDiffusionSkipReport", "AdaptiveDiffusion Skip Map", "Apply AdaptiveDiffusion",
                             skip_outputs())

    @classmethod
    def execute(cls, model, latent) -> io.NodeOutput:
        holder = patched(holder_of(model), "AdaptiveDiffusion Skip Map", "Apply AdaptiveDiffusion")
        return report_output(report_or_empty(holder))
