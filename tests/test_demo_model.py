"""The bundled demo model: loads through ComfyUI's own loader, decodes exactly, is trained."""
import json

import safetensors
import torch

import comfy_runtime
from sampling import adaptive, stock

comfy_runtime.import_comfy()
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo import (ASSETS, MODEL_FILE, AdaptiveDiffusionDemoDecode,  # noqa: E402
                                           AdaptiveDiffusionDemoPrompt)


def test_weights_are_small_and_described():
    path = ASSETS / MODEL_FILE
    assert path.stat().st_size <= 10 * 1024 * 1024
    with safetensors.safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["prompts"]) == demo_space.PROMPTS


def test_detected_as_wan21_flow(demo):
    assert type(demo.patcher.model).__name__ == "WAN21"
    assert demo.patcher.model.model_type.name == "FLOW"


def test_decode_is_the_exact_inverse(comfy):
    import comfy.latent_formats
    pictures = demo_space.draw(torch.arange(8), torch.Generator().manual_seed(3))
    latent = comfy.latent_formats.Wan21().process_out(demo_space.picture_to_latent(pictures))
    decoded = AdaptiveDiffusionDemoDecode.execute({"samples": latent}, 1).result[0]
    assert decoded.shape == (8, 32, 32, 3)
    torch.testing.assert_close(decoded[..., 0], pictures[:, 0], atol=1e-5, rtol=0)


def test_model_is_trained(demo):
    """Its velocity prediction beats the trivial one by far, and the prompt matters."""
    g = torch.Generator().manual_seed(7)
    prompts = torch.arange(8).repeat(4)
    x0 = demo_space.picture_to_latent(demo_space.draw(prompts, g))
    noise = torch.randn(x0.shape, generator=g)
    sigma = torch.full((32,), 0.7)
    x = 0.3 * x0 + 0.7 * noise
    model = demo.patcher.model
    table = {p: AdaptiveDiffusionDemoPrompt.execute(p).result[0][0][0] for p in demo_space.PROMPTS + ["(empty)"]}
    right = torch.cat([table[demo_space.PROMPTS[i]] for i in prompts])
    empty = torch.cat([table["(empty)"]] * 32)
    with torch.no_grad():
        error = lambda context: float((model.apply_model(x, sigma, c_crossattn=context) - x0).pow(2).mean())
        conditional, unconditional = error(right), error(empty)
    trivial = float((x - x0).pow(2).mean())  # denoised = x itself
    assert conditional < 0.25 * trivial
    assert conditional < unconditional


def test_adaptive_sampling_stays_close_on_the_demo_model(demo):
    full = stock(demo, "euler", steps=50, cfg=3.0, seed=5)
    fast, _, report = adaptive(demo, "euler", steps=50, cfg=3.0, seed=5, threshold=0.01)
    assert report["totals"]["network_calls"] < 50
    relative = float((fast - full).norm() / full.norm())
    assert relative < 0.1
