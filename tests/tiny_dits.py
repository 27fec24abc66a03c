"""The transformer families early exit supports, at tiny sizes with seeded random weights. Besides
Wan 2.1 and SD3 (saved and loaded, tiny_models), each is built in-process from a small unet_config
through ComfyUI's own model config for it (supported_models), as its loader would build it."""
import pathlib

import torch

from tiny_models import TinyModel, init_weights, random_cond, sd3, wan


def _dit_patcher(config_cls, unet_config, params_cls=None, seed=0):
    """A DiT family built in-process from a small unet_config; where its sizes go through a params
    dataclass, the keys this ComfyUI version does not have are left out (they changed across versions)."""
    import dataclasses
    import comfy.model_management
    import comfy.model_patcher
    if params_cls is not None:
        fields = {f.name for f in dataclasses.fields(params_cls)}
        unet_config = {k: v for k, v in unet_config.items() if k in fields or k == "image_model"}
    model = config_cls(unet_config).get_model({})
    init_weights(model.diffusion_model, seed)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


_DOUBLE_SINGLE = dict(in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=64, hidden_size=64, mlp_ratio=2.0,
                      num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 12, 12], theta=10000, patch_size=2,
                      qkv_bias=True, guidance_embed=True, txt_ids_dims=[])


def flux():
    import comfy.ldm.flux.model
    import comfy.supported_models
    patcher = _dit_patcher(comfy.supported_models.Flux, dict(_DOUBLE_SINGLE, image_model="flux"),
                           comfy.ldm.flux.model.FluxParams)
    return TinyModel("flux", patcher, (1, 16, 16, 16),
                     lambda s: [[c[0], dict(c[1], guidance=3.5)] for c in random_cond((1, 8, 64), s, {"pooled_output": (1, 32)})])


def flux2():
    import comfy.ldm.flux.model
    import comfy.supported_models
    # Flux 2: the same Flux class with one modulation shared by all blocks, 128 latent channels unpatched,
    # no pooled vector (the keys ComfyUI's detection sets for it); 0.3.75 still reads a pooled output
    config = dict(_DOUBLE_SINGLE, image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, patch_size=1,
                  axes_dim=[8, 8, 8, 8], theta=2000, mlp_ratio=3.0, qkv_bias=False, global_modulation=True,
                  mlp_silu_act=True, ops_bias=False, default_ref_method="index", ref_index_scale=10.0, txt_ids_dims=[3])
    patcher = _dit_patcher(comfy.supported_models.Flux2, config, comfy.ldm.flux.model.FluxParams)
    return TinyModel("flux2", patcher, (1, 128, 8, 8),
                     lambda s: [[c[0], dict(c[1], guidance=3.5)] for c in random_cond((1, 8, 64), s, {"pooled_output": (1, 32)})])


def chroma():
    import comfy.ldm.chroma.model
    import comfy.supported_models
    # Chroma's sizes count the 2x2 patch's channels already
    config = dict(_DOUBLE_SINGLE, image_model="chroma", in_channels=64, out_channels=64, in_dim=64, out_dim=64,
                  hidden_dim=64, n_layers=1)
    patcher = _dit_patcher(comfy.supported_models.Chroma, config, comfy.ldm.chroma.model.ChromaParams)
    return TinyModel("chroma", patcher, (1, 16, 16, 16), lambda s: random_cond((1, 8, 64), s, {"pooled_output": (1, 32)}))


def hunyuan_video():
    import comfy.ldm.hunyuan_video.model
    import comfy.supported_models
    config = dict(_DOUBLE_SINGLE, image_model="hunyuan_video", patch_size=[1, 2, 2], byt5=False, meanflow=False,
                  use_cond_type_embedding=False, vision_in_dim=None, meanflow_sum=False)
    patcher = _dit_patcher(comfy.supported_models.HunyuanVideo, config, comfy.ldm.hunyuan_video.model.HunyuanVideoParams)
    return TinyModel("hunyuan_video", patcher, (1, 16, 2, 16, 16),
                     lambda s: [[c[0], dict(c[1], guidance=3.5)] for c in random_cond((1, 8, 64), s, {"pooled_output": (1, 32)})])


def qwen_image():
    import comfy.supported_models
    config = dict(image_model="qwen_image", patch_size=2, in_channels=64, out_channels=16, num_layers=2,
                  attention_head_dim=32, num_attention_heads=2, joint_attention_dim=64, axes_dims_rope=(8, 12, 12))
    patcher = _dit_patcher(comfy.supported_models.QwenImage, config)
    return TinyModel("qwen_image", patcher, (1, 16, 1, 16, 16), lambda s: random_cond((1, 8, 64), s))


def ltxv():
    import comfy.supported_models
    config = dict(image_model="ltxv", in_channels=128, cross_attention_dim=64, attention_head_dim=32,
                  num_attention_heads=2, caption_channels=64, num_layers=2)
    patcher = _dit_patcher(comfy.supported_models.LTXV, config)
    return TinyModel("ltxv", patcher, (1, 128, 2, 4, 4),
                     lambda s: [[c[0], dict(c[1], attention_mask=torch.ones(1, 8, dtype=torch.long))] for c in random_cond((1, 8, 64), s)])


def wan21_vace():
    import comfy.supported_models
    # VACE: Wan's blocks plus one VACE block (its own, unpatchable) whose hint is added after block 0;
    # without vace_frames ComfyUI feeds it zero frames and a full mask
    config = dict(image_model="wan2.1", model_type="vace", dim=128, ffn_dim=256, num_heads=1, num_layers=2, in_dim=16,
                  out_dim=16, vace_layers=1, vace_in_dim=96)
    patcher = _dit_patcher(comfy.supported_models.WAN21_Vace, config)
    return TinyModel("wan21_vace", patcher, (1, 16, 1, 16, 16), lambda s: random_cond((1, 8, 4096), s))


def exit_families(directory: pathlib.Path):
    """A tiny model of every family early exit supports, by name."""
    return {"wan21": wan(directory), "wan21_vace": wan21_vace(), "sd3": sd3(directory), "flux": flux(),
            "flux2": flux2(), "chroma": chroma(), "hunyuan_video": hunyuan_video(), "qwen_image": qwen_image(),
            "ltxv": ltxv()}
