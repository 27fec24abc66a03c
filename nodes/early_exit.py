"""AdaDiff early exit attached to a ComfyUI model: block-replacement patches plus keyed wrappers.

After each transformer block the patch asks the run whether to exit; once it has, every later
block returns its input unchanged without running, and the model's own final head turns the
hidden state into the output. OUTER_SAMPLE (run_scope.py) owns the run's state; APPLY_MODEL
brackets each forward pass (every model family goes through it). Step skipping (patch.py) sits
above, at PREDICT_NOISE, so a skipped step never reaches these patches: the two compose without
knowing of each other.
"""
import comfy.ldm.modules.diffusionmodules.mmdit
import comfy.ldm.wan.model
import comfy.patcher_extension
import folder_paths
import numpy as np
import torch
from comfy_api.latest import io

from ..adaptive_core import ExitReport, ExitRun
from ..maps import render_layer_map
from .run_scope import SharedHolder, attach, holder_on
from .sidecar import FOLDER, check_matches, load_sidecar
from .widgets import CATEGORY, REPORT_WHEN_CACHED, check_declared

KEY = "adaptive_diffusion_early_exit"
RUN_KEY = "adaptive_diffusion_early_exit_run"
# diffusion model class (and subclasses: Wan 2.1/2.2, VACE, SD3's wrapper) -> attribute holding its
# transformer blocks; each honours transformer_options["patches_replace"]["dit"][("double_block", i)]
BLOCK_LISTS = [(comfy.ldm.wan.model.WanModel, "blocks"), (comfy.ldm.modules.diffusionmodules.mmdit.MMDiT, "joint_blocks")]


def transformer_blocks(diffusion_model):
    if hasattr(diffusion_model, "init_kv_caches"):
        # CausalWanModel passes isinstance(WanModel), but its autoregressive mode (the ar_video
        # sampler) runs its blocks directly, so the exit patches would silently never fire.
        raise ValueError(f"early exit does not support the causal/autoregressive Wan model "
                         f"({type(diffusion_model).__name__}): its AR mode ignores block patches")
    for family, attribute in BLOCK_LISTS:
        if isinstance(diffusion_model, family):
            return getattr(diffusion_model, attribute)
    raise ValueError(f"early exit supports Wan and SD3 (MMDiT) diffusion models, not {type(diffusion_model).__name__}")


class EarlyExitHolder(SharedHolder):
    def __init__(self, heads, threshold):
        self.heads, self.threshold = heads, threshold

    def start_run(self, guider, sigmas, sampler, options) -> ExitRun:
        self.heads.to(guider.model_patcher.load_device)
        return ExitRun(self.heads, self.threshold, sigmas.tolist())


class BlockExit:
    def __init__(self, block):
        self.block = block

    def __call__(self, args, extra):
        run = args["transformer_options"].get(RUN_KEY)
        if run is not None and run.exited:
            return {k: args[k] for k in ("img", "txt") if k in args}
        out = extra["original_block"](args)
        if run is not None:
            run.after_block(self.block, out["img"])
        return out


def patch_early_exit(model, heads, threshold, backbone=None):
    """A clone of ``model`` with early exit; ``backbone`` (a full fine-tune's weights) replaces its own."""
    blocks = len(transformer_blocks(model.get_model_object("diffusion_model")))
    if blocks != heads.blocks:
        raise ValueError(f"the early-exit heads are for {heads.blocks} blocks, the model has {blocks}")
    wrappers = {comfy.patcher_extension.WrappersMP.APPLY_MODEL: apply_model_wrapper}
    model = attach(model, KEY, RUN_KEY, EarlyExitHolder(heads, threshold), wrappers)
    if backbone:
        model.add_patches({f"diffusion_model.{k}": ("set", (v,)) for k, v in backbone.items()}, 1.0)
    for i in range(blocks):
        model.set_model_patch_replace(BlockExit(i), "dit", "double_block", i)
    return model


def exit_holder_of(model):
    return holder_on(model, KEY)


def apply_model_wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                        **kwargs):
    run = transformer_options.get(RUN_KEY)
    if run is None:
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
    run.begin(t)
    try:
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
    finally:
        run.end()
    if run.blocks == 0:
        raise RuntimeError(f"early exit: {type(executor.class_obj.diffusion_model).__name__} ran a forward pass "
                           "without going through ComfyUI's block replacement patches, so it cannot exit early; "
                           "remove Apply AdaDiff Early Exit for this model")
    return out


class AdaptiveDiffusionEarlyExit(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionEarlyExit",
            display_name="Apply AdaDiff Early Exit",
            category=CATEGORY,
            description="AdaDiff (ECCV 2024): after each transformer block small trained heads estimate how "
                        "certain an exit would be; once the mean certainty reaches the threshold the remaining "
                        "blocks are skipped and the model's own output head is applied. Combines with "
                        "AdaptiveDiffusion step skipping on the same model.",
            inputs=[
                io.Model.Input("model", tooltip="A Wan 2.1 or SD3 (MMDiT) model the sidecar was trained for."),
                io.Combo.Input("sidecar", options=folder_paths.get_filename_list(FOLDER),
                               tooltip="Heads trained by scripts/train_early_exit.py for this model, from "
                                       "models/adaptive_diffusion. A full fine-tune's sidecar also carries the "
                                       "tuned backbone weights, which replace the model's."),
                io.Float.Input("threshold", default=0.9, min=0.0, max=2.0, step=0.005,
                               tooltip="Exit after a block when the heads' mean certainty over the batch is at "
                                       "least this. Lower exits earlier (faster, less exact); above 1 never exits. "
                                       "Heads-only sidecars measure closeness to the model's own output (0.9-0.95 "
                                       "is mild); full fine-tunes, as in the paper, closeness to the data, which "
                                       "is lower everywhere (try 0.6-0.7)."),
            ],
            outputs=[io.Model.Output(tooltip="The model with early exit.")],
        )

    @classmethod
    def validate_inputs(cls, sidecar=None, threshold=None):
        if sidecar is not None and sidecar not in folder_paths.get_filename_list(FOLDER):
            return f"sidecar {sidecar!r} is not in models/{FOLDER} (train one with scripts/train_early_exit.py)"
        return check_declared(cls, threshold=threshold)

    @classmethod
    def execute(cls, model, sidecar, threshold) -> io.NodeOutput:
        heads, backbone, metadata = load_sidecar(folder_paths.get_full_path_or_raise(FOLDER, sidecar))
        check_matches(metadata, model.get_model_object("diffusion_model"), sidecar)
        return io.NodeOutput(patch_early_exit(model, heads, threshold, backbone))


class AdaptiveDiffusionLayerMap(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            **REPORT_WHEN_CACHED,
            node_id="AdaptiveDiffusionLayerMap",
            display_name="AdaDiff Layer Map",
            category=CATEGORY,
            description="The layer map and report of the last run of a model patched by Apply AdaDiff Early Exit.",
            inputs=[
                io.Model.Input("model", tooltip="The model with early exit (the output of Apply AdaDiff Early Exit)."),
                io.Latent.Input("latent", tooltip="The sampler's output latent: makes this node run after it."),
            ],
            outputs=[
                io.Image.Output("layer_map", display_name="layer_map",
                                tooltip="Per step (columns) the transformer blocks evaluated (filled) and skipped "
                                        "by the exit (hatched); grey where the step made no network call."),
                io.String.Output("report", display_name="report",
                                 tooltip="JSON: per step the mean blocks evaluated; totals: blocks evaluated vs full."),
            ],
        )

    @classmethod
    def execute(cls, model, latent) -> io.NodeOutput:
        holder = exit_holder_of(model)
        if holder is None:
            raise ValueError("AdaDiff Layer Map: the model input is not patched by Apply AdaDiff Early Exit")
        report = holder.last_report or ExitReport(holder.threshold, holder.heads.blocks,
                                                  notes=["nothing was sampled yet"])
        image = np.asarray(render_layer_map(report), dtype=np.float32) / 255.0
        text = report.to_json()
        return io.NodeOutput(torch.from_numpy(image)[None], text, ui={"adaptive_diffusion_early_exit": [text]})
