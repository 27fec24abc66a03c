"""Nodes for the bundled demo model (a tiny Wan 2.1 trained by scripts/train_demo_model.py):
its eight prompts as conditioning, and the exact decoding of its latents into pictures."""
import functools
import pathlib

import comfy.latent_formats
import folder_paths
import safetensors.torch
import torch
from comfy_api.latest import io

from ..demo import space as demo_space
from .widgets import CATEGORY, check_declared

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
MODEL_FILE = "demo_wan21.safetensors"
NULL_PROMPT = "(empty)"


def register_demo_model():
    """Lists the demo model in UNETLoader's diffusion_models."""
    folder_paths.add_model_folder_path("diffusion_models", str(ASSETS))


@functools.cache
def prompt_table():
    return safetensors.torch.load_file(str(ASSETS / "demo_prompts.safetensors"))


class AdaptiveDiffusionDemoPrompt(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionDemoPrompt",
            display_name="AdaptiveDiffusion Demo Prompt",
            category=CATEGORY + "/demo",
            description=f"A prompt of the bundled demo model ({MODEL_FILE}), which has no text encoder: "
                        "each prompt is a fixed context embedding it was trained on.",
            inputs=[io.Combo.Input("prompt", options=demo_space.PROMPTS + [NULL_PROMPT],
                                   tooltip="What to draw; (empty) is the unconditional prompt for the negative.")],
            outputs=[io.Conditioning.Output(tooltip="Conditioning for the demo model.")],
        )

    @classmethod
    def validate_inputs(cls, prompt=None):
        return check_declared(cls, prompt=prompt)

    @classmethod
    def execute(cls, prompt) -> io.NodeOutput:
        return io.NodeOutput([[prompt_table()[prompt].clone(), {}]])


class AdaptiveDiffusionDemoDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionDemoDecode",
            display_name="AdaptiveDiffusion Demo Decode",
            category=CATEGORY + "/demo",
            description="The demo model's latents as pictures, by the exact inverse of the mapping it was "
                        "trained on (4x4 pixel-shuffle of a grayscale picture); no VAE involved.",
            inputs=[io.Latent.Input("samples", tooltip="A latent sampled with the demo model."),
                    io.Int.Input("scale", default=4, min=1, max=16,
                                 tooltip="Nearest-neighbour enlargement of the 32x32 pictures.")],
            outputs=[io.Image.Output(tooltip="The pictures, one per batch entry and frame.")],
        )

    @classmethod
    def execute(cls, samples, scale) -> io.NodeOutput:
        latent = comfy.latent_formats.Wan21().process_in(samples["samples"].float())
        picture = demo_space.latent_to_picture(latent).clamp(0, 1)
        picture = torch.nn.functional.interpolate(picture, scale_factor=scale, mode="nearest")
        return io.NodeOutput(picture.movedim(1, -1).expand(-1, -1, -1, 3).contiguous())
