"""The AdaptiveDiffusion widgets every node shares, their validation and the node outputs."""
import math

import numpy as np
import torch
from comfy_api.latest import io

from ..adaptive_core import REUSE_STRATEGIES, ErrorControlConfig, SkipConfig
from ..maps import render_skip_map

CATEGORY = "sampling/adaptive"
DEMO_CATEGORY, TRAINING_CATEGORY = CATEGORY + "/demo", CATEGORY + "/training"
# Schema fields for the nodes that report: from ComfyUI 0.33 on, a node flagged so has its UI output
# (the report) sent again and filed in /history when ComfyUI serves it from its cache. 0.3.75 has no
# such flag; scripts/queue_batch.py then says that the result came from the cache.
REPORT_WHEN_CACHED = ({"has_intermediate_output": True}
                      if "has_intermediate_output" in io.Schema.__dataclass_fields__ else {})
DEFAULTS = ErrorControlConfig()
CRITERIA = ["error", "third_order"]


def skip_config(threshold, max_skip_steps, warmup_steps, reuse, criterion, reference_quirks=False):
    """The policy config the widgets describe: error control, or the paper's third-order rule."""
    if criterion == "third_order" or reference_quirks:
        return SkipConfig(threshold, max_skip_steps, warmup_steps, reference_quirks, reuse)
    return ErrorControlConfig(threshold, max_skip_steps, warmup_steps, reuse)


def skip_inputs():
    """The widgets every AdaptiveDiffusion node has, in this order; criterion_input() comes after
    every other widget of a node, so that workflows saved before it existed keep their values."""
    return [
        io.Float.Input("threshold", default=DEFAULTS.tolerance, min=0.0, max=1.0, step=0.001,
                       tooltip="How much error a skipped step may bring; higher skips more, 0 disables skipping "
                               "(output identical to the stock sampler). criterion error: the largest predicted "
                               "relative error of a skipped step's update against the network's own (0.1 = 10 %), "
                               "measured on the run itself. criterion third_order: the paper's δ, the relative "
                               "third-order latent difference (0.01 is its value for SD at 50 steps)."),
        io.Int.Input("max_skip_steps", default=DEFAULTS.max_skip_steps, min=0, max=100,
                     tooltip="C_max: the most consecutive steps that may reuse before the network must be called "
                             "again. 0 never skips. On flow models (Wan, Flux, SD3) at up to 2x fewer calls, 2 "
                             "keeps the picture closer, but allows little more than 2.5x."),
        io.Int.Input("warmup_steps", default=DEFAULTS.warmup_steps, min=0, max=10000,
                     tooltip="The first steps of the run always call the network (counted from the first step "
                             "actually sampled). The error criterion needs two real calls before it can judge, "
                             "the third-order one four latents, so step 2 / step 3 is the earliest skip."),
        io.Combo.Input("reuse", options=list(REUSE_STRATEGIES), default=DEFAULTS.reuse,
                       tooltip="What a skipped step uses in place of the network's output. hold: the last noise "
                               "prediction (the paper). linear / lagrange: extrapolated along the schedule from the "
                               "last 2 / 3 real calls. auto: linear, unless hold, a line through calls two apart, or "
                               "one of these in the denoised image (x0, as SADA) has been clearly closer to the "
                               "network so far in this run. No extra network calls; up to 6 latent-sized tensors "
                               "(auto), 1 (hold)."),
    ]


def criterion_input():
    return io.Combo.Input("criterion", options=CRITERIA, default=CRITERIA[0], optional=True,
                          tooltip="How a step is judged skippable. error: from the measured error of the reuse "
                                  "that would serve it, like an adaptive ODE solver's step-size control. "
                                  "third_order: the AdaptiveDiffusion paper's latent estimator.")


def report_schema(node_id, display_name, patch_node, outputs):
    """The schema of a node that reports on the last run of a model patched by ``patch_node``."""
    return io.Schema(
        **REPORT_WHEN_CACHED, node_id=node_id, display_name=display_name, category=CATEGORY,
        description=f"The map and report of the last run of a model patched by {patch_node}.",
        inputs=[io.Model.Input("model", tooltip=f"The model patched by {patch_node} (that node's output)."),
                io.Latent.Input("latent", tooltip="The sampler's output latent: makes this node run after it.")],
        outputs=outputs)


def patched(holder, display_name, patch_node):
    """A report node's holder, refused when the model input was not patched."""
    if holder is None:
        raise ValueError(f"{display_name}: the model input is not patched by {patch_node}")
    return holder


def skip_outputs():
    return [
        io.Image.Output("skip_map", display_name="skip_map",
                        tooltip="One cell per step (blue computed, hatched orange reused, grey warm-up) over "
                                "the estimator value against the threshold."),
        io.String.Output("report", display_name="report",
                         tooltip="JSON: per step sigma, computed or reused, estimator value; totals: network "
                                 "calls made vs a full run and the expected speedup."),
    ]


def check_declared(node_class, **values):
    """The node's validate_inputs: the first of ``values`` outside what its input declares, named by
    its widget, else True.

    ComfyUI lets NaN through every FLOAT range check, 0.3.75 checks no V3 combo value, and neither
    checks ranges or combos of the inputs validate_inputs takes; so a node takes exactly the inputs
    that need this (finite floats, combos) and leaves the INT ranges to ComfyUI. ComfyUI files the
    message under each input taken, so the message itself names the one widget at fault.
    """
    declared = {spec.id: spec for spec in node_class.define_schema().inputs}
    for name, value in values.items():
        if value is None:  # linked from another node, or missing (which ComfyUI reports itself)
            continue
        spec = declared[name]
        if isinstance(spec, io.Combo.Input) and value not in spec.options:
            shown = ", ".join(map(str, spec.options)) if len(spec.options) <= 12 else "see the widget's list"
            return f"{name}: {value!r} is not one of this ComfyUI's choices ({shown})"
        if isinstance(spec, io.Float.Input):
            low, high = (-math.inf if spec.min is None else spec.min), (math.inf if spec.max is None else spec.max)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not low <= value <= high:
                return f"{name} must be a finite number from {low:g} to {high:g}, got {value!r}"
    return True


def report_output(report, *leading):
    """NodeOutput of ``leading`` outputs, then skip map and report; the report also goes to the
    UI message (and so to /history) under "adaptive_diffusion"."""
    image = np.asarray(render_skip_map(report), dtype=np.float32) / 255.0
    text = report.to_json()
    return io.NodeOutput(*leading, torch.from_numpy(image)[None], text, ui={"adaptive_diffusion": [text]})
