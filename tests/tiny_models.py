"""Real ComfyUI model architectures at tiny sizes, with seeded random weights.

Wan 2.1 and SD3/MMDiT go through ComfyUI's own loader (their sizes are read from the weights);
SD1.x (EPS and V-prediction) and SDXL UNets cannot be made tiny through the loader, so they are
built in-process from a small unet_config and wrapped in a ModelPatcher. The other transformer
families early exit supports are in tiny_dits.
"""
import dataclasses
import pathlib
from typing import Callable

import torch


@dataclasses.dataclass
class TinyModel:
    name: str
    patcher: object
    latent_shape: tuple
    make_cond: Callable[[int], list]  # seed -> ComfyUI conditioning list


def init_weights(module, seed):
    # ComfyUI builds models with weight init disabled: the parameters hold uninitialised memory.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.numel() == 0:
                continue
            if p.ndim > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        # MMDiT keeps its position table in a buffer that ComfyUI leaves uninitialised too.
        for name, b in sorted(module.named_buffers()):
            if name.endswith("pos_embed"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.02)


def random_cond(shape, seed, extra=None):
    g = torch.Generator().manual_seed(seed)
    extras = {k: torch.randn(v, generator=g) for k, v in (extra or {}).items()}
    return [[torch.randn(shape, generator=g), extras]]


def save_wan(path: pathlib.Path, seed=0):
    import comfy.ldm.wan.model
    import comfy.ops
    import safetensors.torch
    model = comfy.ldm.wan.model.WanModel(dim=128, ffn_dim=256, num_heads=1, num_layers=2, device="cpu",
                                       operations=comfy.ops.disable_weight_init)
    init_weights(model, seed)
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def save_sd3(path: pathlib.Path, seed=0):
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    import comfy.ops
    import safetensors.torch
    model = mmdit.MMDiT(
        patch_size=2, in_channels=16, out_channels=16, depth=2, adm_in_channels=64,
        context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 64, "out_features": 128}},
        pos_embed_max_size=16, num_patches=256, pos_embed_scaling_factor=None, device="cpu",
        operations=comfy.ops.disable_weight_init)
    init_weights(model, seed)
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def load_file_model(path):
    import comfy.sd
    return comfy.sd.load_diffusion_model(str(path))


def _unet_patcher(config_cls, unet_config, model_type, seed):
    import comfy.model_base
    import comfy.model_management
    import comfy.model_patcher
    config = config_cls(unet_config)
    model = config.get_model({}) if model_type is None else \
        comfy.model_base.BaseModel(config, model_type=model_type)
    init_weights(model.diffusion_model, seed)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


_UNET_BASE = {
    "use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4,
    "use_spatial_transformer": True, "legacy": False, "model_channels": 32,
    "num_res_blocks": [1, 1], "channel_mult": [1, 2], "transformer_depth": [1, 1, 1, 1],
    "transformer_depth_middle": 1, "transformer_depth_output": [1, 1, 1, 1, 1, 1],
    "use_temporal_attention": False, "use_temporal_resblock": False, "use_linear_in_transformer": False,
}


def sd15(v_prediction=False, seed=0):
    import comfy.model_base
    import comfy.supported_models
    config = dict(_UNET_BASE, context_dim=32, adm_in_channels=None)
    model_type = comfy.model_base.ModelType.V_PREDICTION if v_prediction else comfy.model_base.ModelType.EPS
    patcher = _unet_patcher(comfy.supported_models.SD15, config, model_type, seed)
    name = "sd15_v" if v_prediction else "sd15"
    return TinyModel(name, patcher, (1, 4, 16, 16), lambda s: random_cond((1, 8, 32), s))


def sdxl(seed=0):
    import comfy.supported_models
    # SDXL's adm vector: pooled text embedding + six 256-wide size/crop embeddings.
    # SDXL fixes 64 channels per attention head.
    config = dict(_UNET_BASE, model_channels=64, context_dim=32, adm_in_channels=32 + 6 * 256, num_classes="sequential",
                  use_linear_in_transformer=True)
    patcher = _unet_patcher(comfy.supported_models.SDXL, config, None, seed)
    return TinyModel("sdxl", patcher, (1, 4, 16, 16),
                     lambda s: random_cond((1, 8, 32), s, {"pooled_output": (1, 32)}))


def wan(directory: pathlib.Path, seed=0):
    path = directory / "tiny_wan21.safetensors"
    if not path.exists():
        save_wan(path, seed)
    return TinyModel("wan21", load_file_model(path), (1, 16, 1, 16, 16), lambda s: random_cond((1, 8, 4096), s))


def sd3(directory: pathlib.Path, seed=0):
    path = directory / "tiny_sd3.safetensors"
    if not path.exists():
        save_sd3(path, seed)
    return TinyModel("sd3", load_file_model(path), (1, 16, 16, 16),
                     lambda s: random_cond((1, 8, 64), s, {"pooled_output": (1, 64)}))


def demo(name="demo_wan21"):
    """A bundled trained demo model; make_cond(1) is "a circle", make_cond(2) the empty prompt,
    as the sampling helpers use them for positive and negative."""
    from adaptive_diffusion.nodes.demo import AdaptiveDiffusionDemoPrompt
    from adaptive_diffusion.nodes.demo_models import DEMO_MODELS, NULL_PROMPT, load
    prompts = {1: "a circle", 2: NULL_PROMPT}
    demo_model = DEMO_MODELS[name]
    return TinyModel(name, load(demo_model), demo_model.empty_latent,
                     lambda which: AdaptiveDiffusionDemoPrompt.execute(prompts[which], name).result[0])
