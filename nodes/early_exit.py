"""AdaDiff early exit attached to a ComfyUI model: block-replacement patches plus keyed wrappers.

After each transformer block the patch asks the run whether to exit; once it has, every later
block returns its input unchanged without running, and the model's own final head turns the
hidden state into the output (exits.py knows each family's blocks). OUTER_SAMPLE (run_scope.py)
owns the run's state; APPLY_MODEL brackets each forward pass (every model family goes through
it). Step skipping (patch.py) sits above, at PREDICT_NOISE, so a skipped step never reaches these
patches: the two compose without knowing of each other.
"""
import json

import comfy.patcher_extension
import folder_paths
import numpy as np
import torch
from comfy_api.latest import io

from ..adaptive_core import ExitReport, ExitRun
from ..adaptive_core.early_exit import DECIDE
from ..adaptive_core.calibration import needed_per_step
from ..maps import render_layer_map
from .exits import SUPPORTED, hidden_of, layout_of, passthrough
from .run_scope import SharedHolder, attach, holder_on
from .sidecar import FOLDER, RECOMMENDED, check_matches, load_sidecar
from .widgets import CATEGORY, check_declared, patched, report_schema

KEY = "adaptive_diffusion_early_exit"
RUN_KEY = "adaptive_diffusion_early_exit_run"
RECOMMENDED_BY_SIDECAR = -1.0


def thresholds(metadata, blocks, threshold):
    """The widget's value (-1: the sidecar's recommendation) and a function of the run's schedule
    giving, per step, the raw certainty each block needs. A calibrated sidecar maps the value q to
    a target relative error 1 - q of the exit's output against the full model's, at a step of the
    run's mean size (needed_per_step); an uncalibrated one compares q with the raw certainty."""
    if threshold == RECOMMENDED_BY_SIDECAR:
        threshold = float(metadata.get("recommended_threshold", RECOMMENDED))
    if "calibration" not in metadata:
        return threshold, same_every_step([threshold if threshold <= 1 else float("inf")] * blocks)
    calibration = json.loads(metadata["calibration"])
    if isinstance(calibration, list):  # saved before the σ bands: one table for every σ
        calibration = {"edges": [], "knots": [calibration]}
    return threshold, lambda schedule: needed_per_step(calibration, 1 - threshold, schedule)


def same_every_step(needed):
    """``needed`` (per block) at every step of the run, as patch_early_exit takes it."""
    return lambda schedule: [list(needed)] * (len(schedule) - 1)


class EarlyExitHolder(SharedHolder):
    def __init__(self, heads, needed, threshold, decide):
        self.heads, self.needed, self.threshold, self.decide = heads, needed, threshold, decide

    def start_run(self, guider, sigmas, sampler, options) -> ExitRun:
        schedule = sigmas.tolist()
        return ExitRun(self.heads, self.needed(schedule), schedule, self.threshold, self.decide,
                       guider.model_patcher.load_device)


class BlockExit:
    def __init__(self, index, stage):
        self.index, self.stage = index, stage

    def __call__(self, args, extra):
        run = args.get("transformer_options", {}).get(RUN_KEY)
        if run is not None and run.exited:
            return passthrough(self.stage, args)
        out = extra["original_block"](args)
        if run is not None:
            run.after_block(self.index, hidden_of(out))
        return out


def patch_early_exit(model, heads, needed, threshold, decide="per_block", backbone=None):
    """A clone of ``model`` with early exit; ``needed``: the run's schedule -> per step, each block's
    raw certainty threshold (thresholds, same_every_step);
    ``backbone`` (a full fine-tune's weights) replaces the model's own."""
    layout = layout_of(model.get_model_object("diffusion_model"))
    if layout.blocks != heads.blocks:
        raise ValueError(f"the early-exit heads are for {heads.blocks} blocks, the model has {layout.blocks}")
    wrappers = {comfy.patcher_extension.WrappersMP.APPLY_MODEL: apply_model_wrapper}
    model = attach(model, KEY, RUN_KEY, EarlyExitHolder(heads, needed, threshold, decide), wrappers)
    if backbone:
        model.add_patches({f"diffusion_model.{k}": ("set", (v,)) for k, v in backbone.items()}, 1.0)
    for index, stage, (kind, i) in layout.keys():
        model.set_model_patch_replace(BlockExit(index, stage), "dit", kind, i)
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
                        "close an exit would be to the full model; once that is within the threshold the "
                        "remaining blocks are skipped and the model's own output head is applied. Combines with "
                        "AdaptiveDiffusion step skipping on the same model.",
            inputs=[
                io.Model.Input("model", tooltip=f"A model the sidecar was trained for ({SUPPORTED}).",),
                io.Combo.Input("sidecar", options=folder_paths.get_filename_list(FOLDER),
                               tooltip="Heads trained for this model (Train AdaDiff Heads, or the trainers in "
                                       "scripts/), from models/adaptive_diffusion. A full fine-tune's sidecar "
                                       "also carries the tuned backbone weights, which replace the model's."),
                io.Float.Input("threshold", default=RECOMMENDED_BY_SIDECAR, min=-1.0, max=2.0, step=0.005,
                               tooltip="How close to the full model an exit must be expected to stay: 0.99 exits "
                                       "once the heads predict the output within 1 % (relative error) of the full "
                                       "model's at a step of the run's mean size, as calibrated for this sidecar; "
                                       "a step half that size may be off twice as much (it moves the picture half "
                                       "as far), a step twice that size half as much. Lower exits earlier (faster, "
                                       "less exact); above 1 never exits. -1: the value the sidecar recommends."),
                io.Combo.Input("decide", options=list(DECIDE), default="per_block", optional=True,
                               tooltip="per_block: judge after every block, reading its certainty back (the paper; "
                                       "one device sync per block). per_call: choose each forward pass's exit block "
                                       "from the previous pass's certainties, with one read per pass."),
            ],
            outputs=[io.Model.Output(tooltip="The model with early exit.")],
        )

    @classmethod
    def validate_inputs(cls, sidecar=None, threshold=None, decide=None):
        if sidecar is not None and sidecar not in folder_paths.get_filename_list(FOLDER):
            return f"sidecar {sidecar!r} is not in models/{FOLDER} (train one with Train AdaDiff Heads)"
        return check_declared(cls, threshold=threshold, decide=decide)

    @classmethod
    def execute(cls, model, sidecar, threshold, decide="per_block") -> io.NodeOutput:
        heads, backbone, metadata = load_sidecar(folder_paths.get_full_path_or_raise(FOLDER, sidecar))
        check_matches(metadata, model.get_model_object("diffusion_model"), sidecar)
        threshold, needed = thresholds(metadata, heads.blocks, threshold)
        return io.NodeOutput(patch_early_exit(model, heads, needed, threshold, decide, backbone))


class AdaptiveDiffusionLayerMap(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return report_schema(
            "AdaptiveDiffusionLayerMap", "AdaDiff Layer Map", "Apply AdaDiff Early Exit",
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
        holder = patched(exit_holder_of(model), "AdaDiff Layer Map", "Apply AdaDiff Early Exit")
        report = holder.last_report or ExitReport(holder.threshold, holder.heads.blocks,
                                                  notes=["nothing was sampled yet"])
        image = np.asarray(render_layer_map(report), dtype=np.float32) / 255.0
        text = report.to_json()
        return io.NodeOutput(torch.from_numpy(image)[None], text, ui={"adaptive_diffusion_early_exit": [text]})
