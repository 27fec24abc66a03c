"""The bundled demo models, which the pack trains itself (scripts/train_demo_model.py) on the
procedural pictures of demo/space.py, one per model family the benchmark needs:

- ``demo_wan21``: ComfyUI's Wan 2.1 architecture (flow matching, shift 8), a file UNETLoader reads;
- ``demo_sd15_eps``: ComfyUI's SD1.x UNet (EPS prediction, the discrete SD schedule), too small for
  ComfyUI's loaders to detect (they match SD1.x by its 320 model channels), so built in-process
  from its unet_config and loaded by the demo loader node.

Each has its own table of prompt embeddings (none has a text encoder).
"""
import dataclasses
import functools
import json
import pathlib

import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import safetensors
import safetensors.torch

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
NULL_PROMPT = "(empty)"
# A small SD1.x UNet: three levels (16, 8, 4 latent pixels) of one res block each, with attention
# on the two coarser ones and in the middle (attention at full resolution would triple its cost).
SD15_UNET = {
    "use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 32,
    "num_res_blocks": [1, 1, 1], "channel_mult": [1, 2, 2], "transformer_depth": [0, 1, 1],
    "transformer_depth_middle": 1, "transformer_depth_output": [1, 1, 1, 1, 0, 0], "context_dim": 64,
    "use_spatial_transformer": True, "legacy": False, "use_linear_in_transformer": False,
    "adm_in_channels": None, "use_temporal_attention": False, "use_temporal_resblock": False,
}
MODEL_TYPES = {"eps": comfy.model_base.ModelType.EPS, "v": comfy.model_base.ModelType.V_PREDICTION}


@dataclasses.dataclass(frozen=True)
class DemoModel:
    name: str
    family: str  # "wan21" or "sd15"
    prediction: str  # "flow", "eps" or "v"
    prompt_tokens: int
    prompt_width: int

    @property
    def file(self):
        # the Wan model where UNETLoader lists it (register_demo_model); the UNets no loader can read
        return ASSETS / ("diffusion_models" if self.family == "wan21" else "demo") / f"{self.name}.safetensors"

    @property
    def prompts_file(self):
        return ASSETS / "demo" / f"{self.name}_prompts.safetensors"

    @property
    def video(self):
        return self.family == "wan21"

    @property
    def latent_channels(self):
        return 16 if self.video else 4

    @property
    def empty_latent(self):
        """The latent ComfyUI's empty-latent nodes would give for a 32x32 picture (before process_in)."""
        return (1, 16, 1, 8, 8) if self.video else (1, 4, 16, 16)

    @property
    def latent_format(self):
        return comfy.latent_formats.Wan21() if self.video else comfy.latent_formats.SD15()


DEMO_MODELS = {m.name: m for m in (DemoModel("demo_wan21", "wan21", "flow", 4, 4096),
                                   DemoModel("demo_sd15_eps", "sd15", "eps", 4, 64))}
WAN_DEMO = DEMO_MODELS["demo_wan21"]


class DemoSD15(comfy.supported_models.SD15):
    """SD1.x with 32-channel attention heads instead of 8 heads: 8 heads of 4 channels each would
    make the tiny UNet three times slower to train on a CPU."""
    unet_extra_config = {"num_heads": -1, "num_head_channels": 32}


def build_sd15(prediction):
    """A demo UNet with ComfyUI's weight init left out (the trainer initialises it)."""
    return comfy.model_base.BaseModel(DemoSD15(dict(SD15_UNET)), model_type=MODEL_TYPES[prediction])


def load(demo: DemoModel):
    """The demo model as a ModelPatcher, as ComfyUI's loaders return it."""
    if demo.family == "wan21":
        return comfy.sd.load_diffusion_model(str(demo.file))
    model = build_sd15(demo.prediction)
    weights = safetensors.torch.load_file(str(demo.file))
    model.diffusion_model.load_state_dict({k: v.float() for k, v in weights.items()})
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def metadata(demo: DemoModel):
    with safetensors.safe_open(str(demo.file), "pt") as f:
        return f.metadata()


@functools.cache
def prompt_table(name):
    return safetensors.torch.load_file(str(DEMO_MODELS[name].prompts_file))


def trained_prompts(demo: DemoModel):
    return json.loads(metadata(demo)["prompts"])
