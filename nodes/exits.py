"""Where a ComfyUI diffusion model keeps its transformer blocks, and how its block-replacement
patches (``transformer_options["patches_replace"]["dit"][(kind, i)]``) pass their state: what early
exit, its trainers and its tests need to know of each family, and nothing of its forward pass.

A model's exits are numbered across its stages in the order they run (Flux: double blocks, then
single blocks). The output of an exit after block i is the model's own forward pass with every
later block returning its input: the model's own head serves every exit.
"""
import dataclasses

import comfy.ldm.chroma.model
import comfy.ldm.flux.model
import comfy.ldm.hunyuan_video.model
import comfy.ldm.lightricks.model
import comfy.ldm.modules.diffusionmodules.mmdit
import comfy.ldm.qwen_image.model
import comfy.ldm.wan.model
import torch


@dataclasses.dataclass(frozen=True)
class Stage:
    kind: str  # the patch key's first part
    attribute: str  # the diffusion model's list of these blocks
    state: tuple  # what a block of this stage takes and returns (its patch's "img", "txt")


WAN = [Stage("double_block", "blocks", ("img",))]
JOINT = [Stage("double_block", "joint_blocks", ("img", "txt"))]
DOUBLE_SINGLE = [Stage("double_block", "double_blocks", ("img", "txt")), Stage("single_block", "single_blocks", ("img",))]
# diffusion model class (subclasses included: Wan 2.1/2.2, VACE, Flux 2, LTX-AV...) -> its stages
FAMILIES = [
    (comfy.ldm.wan.model.WanModel, "Wan", WAN),
    (comfy.ldm.modules.diffusionmodules.mmdit.MMDiT, "SD3 (MMDiT)", JOINT),
    (comfy.ldm.flux.model.Flux, "Flux", DOUBLE_SINGLE),
    (comfy.ldm.chroma.model.Chroma, "Chroma", DOUBLE_SINGLE),
    (comfy.ldm.hunyuan_video.model.HunyuanVideo, "HunyuanVideo", DOUBLE_SINGLE),
    (comfy.ldm.qwen_image.model.QwenImageTransformer2DModel, "Qwen-Image",
     [Stage("double_block", "transformer_blocks", ("img", "txt"))]),
    (comfy.ldm.lightricks.model.LTXVModel, "LTX-Video", [Stage("double_block", "transformer_blocks", ("img",))]),
]
SUPPORTED = ", ".join(name for _, name, _ in FAMILIES)


@dataclasses.dataclass(frozen=True)
class Layout:
    family: str
    stages: tuple  # (Stage, number of blocks)

    @property
    def blocks(self):
        return sum(count for _, count in self.stages)

    def keys(self):
        """(exit index, stage, patch key) of every block, in the order they run."""
        index = 0
        for stage, count in self.stages:
            for i in range(count):
                yield index, stage, (stage.kind, i)
                index += 1


def layout_of(diffusion_model) -> Layout:
    if hasattr(diffusion_model, "init_kv_caches"):
        # CausalWanModel passes isinstance(WanModel), but its autoregressive mode (the ar_video
        # sampler) runs its blocks directly, so the exit patches would silently never fire.
        raise ValueError(f"early exit does not support the causal/autoregressive Wan model "
                         f"({type(diffusion_model).__name__}): its AR mode ignores block patches")
    for family, name, stages in FAMILIES:
        if isinstance(diffusion_model, family):
            return Layout(name, tuple((s, len(getattr(diffusion_model, s.attribute))) for s in stages))
    raise ValueError(f"early exit supports {SUPPORTED} diffusion models, not {type(diffusion_model).__name__} "
                     "(Lumina 2/Z-Image and HiDream have no block-replacement patches to exit through)")


def passthrough(stage, args):
    """What a skipped block of this stage returns: its input state, unchanged."""
    return {k: args[k] for k in stage.state}


def hidden_of(out):
    """The hidden state the uncertainty heads read after a block: its image (or joint) tokens."""
    return out["img"]


def exit_outputs(diffusion_model, forward, batched=True):
    """g_i(h_i) for every exit i (the last one is the full output), and each block's hidden state.

    ``forward(transformer_options, repeat)`` runs the model on its inputs repeated ``repeat`` times
    along the batch. One full pass records every block's state; then each exit's state is started
    at the first block of its stage while every other block passes its input through, so the
    model's own head turns the state into that exit's output: per stage in one pass on the batch
    repeated once per exit, or (``batched=False``, for models whose inputs are not easily repeated)
    in one pass per exit. Gradients flow through the recorded states.
    """
    layout = layout_of(diffusion_model)
    states, hidden = {}, []

    def capture(index, stage):
        def patch(args, extra):
            out = extra["original_block"](args)
            states[index] = passthrough(stage, out)
            hidden.append(hidden_of(out))
            return out
        return patch

    patches = {key: capture(index, stage) for index, stage, key in layout.keys()}
    outputs = {layout.blocks - 1: forward({"patches_replace": {"dit": patches}}, 1)}
    for stage, _ in layout.stages:
        exits = [i for i, s, _ in layout.keys() if s == stage and i < layout.blocks - 1]
        for group in ([exits] if batched else [[i] for i in exits]):
            if not group:
                continue
            injected = {k: torch.cat([states[i][k] for i in group]) for k in stage.state}
            patches = {key: (lambda args, extra, s=s: passthrough(s, args)) for _, s, key in layout.keys()}
            patches[(stage.kind, 0)] = lambda args, extra, injected=injected: injected
            out = forward({"patches_replace": {"dit": patches}}, len(group))
            outputs.update(zip(group, out.chunk(len(group))))
    return [outputs[i] for i in range(layout.blocks)], hidden
