"""Nodes for the bundled demo models (demo_models.py): the loader of the SD1.x demo UNets, the
prompts as conditioning, and the exact decoding of their latents into pictures."""
import folder_paths
import torch
from comfy_api.latest import io

from ..demo import space as demo_space
from .demo_models import ASSETS, DEMO_MODELS, NULL_PROMPT, WAN_DEMO, load, prompt_table
from .widgets import DEMO_CATEGORY, check_declared

UNETS = [name for name, demo in DEMO_MODELS.items() if demo.family != "wan21"]


def register_demo_model():
    """Lists the Wan demo model in UNETLoader's diffusion_models."""
    folder_paths.add_model_folder_path("diffusion_models", str(ASSETS / "diffusion_models"))


class AdaptiveDiffusionDemoUNetLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionDemoUNetLoader",
            display_name="AdaptiveDiffusion Demo UNet Loader",
            category=DEMO_CATEGORY,
            description="A bundled SD1.x-architecture demo UNet (EPS prediction, the SD discrete schedule). "
                        "It is too small for ComfyUI's loaders to detect, so it is built from its config here.",
            inputs=[io.Combo.Input("unet_name", options=UNETS, tooltip="Which demo UNet.")],
            outputs=[io.Model.Output(tooltip="The demo UNet.")],
        )

    @classmethod
    def validate_inputs(cls, unet_name=None):
        return check_declared(cls, unet_name=unet_name)

    @classmethod
    def execute(cls, unet_name) -> io.NodeOutput:
        return io.NodeOutput(load(DEMO_MODELS[unet_name]))


class AdaptiveDiffusionDemoPrompt(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionDemoPrompt",
            display_name="AdaptiveDiffusion Demo Prompt",
            category=DEMO_CATEGORY,
            description="A prompt of a bundled demo model, which has no text encoder: each prompt is a fixed "
                        "context embedding it was trained on.",
            inputs=[io.Combo.Input("prompt", options=demo_space.PROMPTS + [NULL_PROMPT],
                                   tooltip="What to draw; (empty) is the unconditional prompt for the negative."),
                    io.Combo.Input("model", options=list(DEMO_MODELS), default=WAN_DEMO.name, optional=True,
                                   tooltip="The demo model the conditioning is for (each has its own embeddings).")],
            outputs=[io.Conditioning.Output(tooltip="Conditioning for that demo model.")],
        )

    @classmethod
    def validate_inputs(cls, prompt=None, model=None):
        return check_declared(cls, prompt=prompt, model=model)

    @classmethod
    def execute(cls, prompt, model=WAN_DEMO.name) -> io.NodeOutput:
        return io.NodeOutput([[prompt_table(model)[prompt].clone(), {}]])


class AdaptiveDiffusionDemoDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionDemoDecode",
            display_name="AdaptiveDiffusion Demo Decode",
            category=DEMO_CATEGORY,
            description="A demo model's latents as pictures, by the exact inverse of the mapping it was trained "
                        "on (pixel-shuffle of a grayscale picture); no VAE involved.",
            inputs=[io.Latent.Input("samples", tooltip="A latent sampled with a demo model."),
                    io.Int.Input("scale", default=4, min=1, max=16,
                                 tooltip="Nearest-neighbour enlargement of the 32x32 pictures.")],
            outputs=[io.Image.Output(tooltip="The pictures, one per batch entry and frame.")],
        )

    @classmethod
    def execute(cls, samples, scale) -> io.NodeOutput:
        latent = samples["samples"].float()
        # the latent's layout tells the family: Wan's has a frame axis
        demo = next(d for d in DEMO_MODELS.values() if d.video == (latent.ndim == 5))
        picture = demo_space.latent_to_picture(demo.latent_format.process_in(latent)).clamp(0, 1)
        picture = torch.nn.functional.interpolate(picture, scale_factor=scale, mode="nearest")
        return io.NodeOutput(picture.movedim(1, -1).expand(-1, -1, -1, 3).contiguous())
