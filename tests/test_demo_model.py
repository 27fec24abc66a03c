"""The bundled demo models: they load as ComfyUI models of their family, decode exactly, are trained."""
import pytest
import torch

import comfy_runtime
from sampling import adaptive, stock

comfy_runtime.import_comfy()
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo import (AdaptiveDiffusionDemoDecode, AdaptiveDiffusionDemoPrompt,  # noqa: E402
                                           AdaptiveDiffusionDemoUNetLoader)
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS, NULL_PROMPT, trained_prompts  # noqa: E402


@pytest.mark.parametrize("name", list(DEMO_MODELS))
def test_weights_are_small_and_described(name):
    demo = DEMO_MODELS[name]
    assert demo.file.stat().st_size <= 10 * 1024 * 1024
    assert trained_prompts(demo) == demo_space.PROMPTS


def test_wan_demo_is_detected_as_wan21_flow(demo):
    assert type(demo.patcher.model).__name__ == "WAN21"
    assert demo.patcher.model.model_type.name == "FLOW"


def test_unet_demo_is_an_sd15_eps_unet_on_the_discrete_schedule(comfy):
    import comfy.model_sampling
    patcher = AdaptiveDiffusionDemoUNetLoader.execute("demo_sd15_eps").result[0]
    model = patcher.model
    assert type(model.diffusion_model).__name__ == "UNetModel" and model.model_type.name == "EPS"
    assert isinstance(model.model_sampling, comfy.model_sampling.ModelSamplingDiscrete)
    assert float(model.model_sampling.sigma_max) == pytest.approx(14.6146, abs=1e-3)  # SD's scaled-linear betas


@pytest.mark.parametrize("name", list(DEMO_MODELS))
def test_decode_is_the_exact_inverse(comfy, name):
    demo = DEMO_MODELS[name]
    pictures = demo_space.draw(torch.arange(8), torch.Generator().manual_seed(3))
    model_space = demo_space.picture_to_latent(pictures, demo.latent_channels, demo.video)
    latent = demo.latent_format.process_out(model_space)
    decoded = AdaptiveDiffusionDemoDecode.execute({"samples": latent}, 1).result[0]
    assert decoded.shape == (8, 32, 32, 3)
    torch.testing.assert_close(decoded[..., 0], pictures[:, 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("fixture, sigma", [("demo", 0.7), ("demo_unet", 1.0)])
def test_model_is_trained(request, fixture, sigma):
    """Its denoised prediction beats the trivial one by far, and the prompt matters."""
    model = request.getfixturevalue(fixture)
    demo = DEMO_MODELS[model.name]
    g = torch.Generator().manual_seed(7)
    prompts = torch.arange(8).repeat(4)
    x0 = demo_space.picture_to_latent(demo_space.draw(prompts, g), demo.latent_channels, demo.video)
    noise = torch.randn(x0.shape, generator=g)
    sigmas = torch.full((32,), sigma)
    x = model.patcher.model.model_sampling.noise_scaling(sigmas, noise, x0)
    table = {p: AdaptiveDiffusionDemoPrompt.execute(p, model.name).result[0][0][0]
             for p in demo_space.PROMPTS + [NULL_PROMPT]}
    right = torch.cat([table[demo_space.PROMPTS[i]] for i in prompts])
    empty = torch.cat([table[NULL_PROMPT]] * 32)
    with torch.no_grad():
        error = lambda context: float((model.patcher.model.apply_model(x, sigmas, c_crossattn=context) - x0)
                                      .pow(2).mean())
        conditional, unconditional = error(right), error(empty)
    trivial = float((x0 - x0.mean()).pow(2).mean())  # the data's mean as the guess
    assert conditional < 0.25 * trivial
    assert conditional < unconditional


@pytest.mark.parametrize("fixture", ["demo", "demo_unet"])
def test_default_skipping_stays_close_on_the_demo_models(request, fixture):
    model = request.getfixturevalue(fixture)
    full = stock(model, "euler", steps=50, cfg=3.0, seed=5)
    fast, _, report = adaptive(model, "euler", steps=50, cfg=3.0, seed=5)
    calls = report["totals"]["network_calls"]
    assert calls <= 30
    # the alternative at the same cost: the stock sampler with as many steps as we made calls
    fewer = stock(model, "euler", steps=calls, cfg=3.0, seed=5)
    relative = lambda latent: float((latent - full).norm() / full.norm())
    assert relative(fast) < 0.1 and relative(fast) < 0.7 * relative(fewer)  # 3 dB better
