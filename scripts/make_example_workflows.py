"""Writes example_workflows/: each workflow in the frontend's UI format (what users drag onto the
canvas) and, where scripts use it, an API-format copy. Widget values are placed from a real
server's /object_info, so they match what this ComfyUI and this extension declare; the
AdaptiveDiffusion widgets keep their defaults.

    .runtime/0.33.0/venv/bin/python scripts/make_example_workflows.py
"""
import json
import pathlib
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402
from workflow_graph import Graph  # noqa: E402

OUT = REPO / "example_workflows"
# Model file names as the usual downloads name them; the tests map them to tiny models.
SD15, SDXL = "v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors"
FLUX, CLIP_L, T5, FLUX_VAE = "flux1-dev.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors", "ae.safetensors"
WAN, UMT5, WAN_VAE = "wan2.1_t2v_1.3B_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan_2.1_vae.safetensors"
MODEL_FILES = {"checkpoints": [SD15, SDXL], "diffusion_models": [FLUX, WAN], "text_encoders": [CLIP_L, T5, UMT5],
               "vae": [FLUX_VAE, WAN_VAE]}
PROMPT = "a lighthouse on a cliff at sunset, oil painting"
NEGATIVE = "blurry, low quality"


def checkpoint_txt2img(g, ckpt, size, steps, cfg, sampler, scheduler):
    loader = g.add("CheckpointLoaderSimple", (0, 0), ckpt_name=ckpt)
    positive = g.add("CLIPTextEncode", (360, 0), text=PROMPT)
    negative = g.add("CLIPTextEncode", (360, 260), text=NEGATIVE)
    latent = g.add("EmptyLatentImage", (360, 520), width=size, height=size, batch_size=1)
    for node in (positive, negative):
        g.connect(loader, "CLIP", node, "clip")
    sampler_node = g.add("AdaptiveDiffusionKSampler", (720, 0), seed=42, steps=steps, cfg=cfg, sampler_name=sampler,
                         scheduler=scheduler, denoise=1.0)
    for source, output, name in ((loader, "MODEL", "model"), (positive, 0, "positive"), (negative, 0, "negative"),
                                 (latent, 0, "latent_image")):
        g.connect(source, output, sampler_node, name)
    return loader, positive, negative, sampler_node


def decode_and_save(g, vae_source, vae_output, samples_source, pos, prefix):
    decode = g.add("VAEDecode", pos)
    g.connect(samples_source, 0, decode, "samples")
    g.connect(vae_source, vae_output, decode, "vae")
    save = g.add("SaveImage", (pos[0] + 360, pos[1]), filename_prefix=prefix)
    g.connect(decode, 0, save, "images")
    return decode


def preview(g, source, output, pos):
    node = g.add("PreviewImage", pos)
    g.connect(source, output, node, "images")


def sd15_txt2img(g):
    loader, _, _, sampler = checkpoint_txt2img(g, SD15, 512, 50, 7.0, "euler", "normal")
    decode_and_save(g, loader, "VAE", sampler, (1080, 0), "adaptive_sd15")
    preview(g, sampler, "skip_map", (1080, 320))


def sdxl_txt2img(g):
    loader, _, _, sampler = checkpoint_txt2img(g, SDXL, 1024, 50, 6.0, "dpmpp_2m", "karras")
    decode_and_save(g, loader, "VAE", sampler, (1080, 0), "adaptive_sdxl")
    preview(g, sampler, "skip_map", (1080, 320))


def sd15_img2img(g):
    loader = g.add("CheckpointLoaderSimple", (0, 0), ckpt_name=SD15)
    image = g.add("LoadImage", (0, 260), image="example.png")
    encode = g.add("VAEEncode", (360, 520))
    g.connect(image, "IMAGE", encode, "pixels")
    g.connect(loader, "VAE", encode, "vae")
    positive = g.add("CLIPTextEncode", (360, 0), text=PROMPT)
    negative = g.add("CLIPTextEncode", (360, 260), text=NEGATIVE)
    sampler = g.add("AdaptiveDiffusionKSampler", (720, 0), seed=42, steps=40, cfg=7.0, sampler_name="dpmpp_2m",
                    scheduler="karras", denoise=0.6)
    for node in (positive, negative):
        g.connect(loader, "CLIP", node, "clip")
    for source, output, name in ((loader, "MODEL", "model"), (positive, 0, "positive"), (negative, 0, "negative"),
                                 (encode, 0, "latent_image")):
        g.connect(source, output, sampler, name)
    decode_and_save(g, loader, "VAE", sampler, (1080, 0), "adaptive_img2img")
    preview(g, sampler, "skip_map", (1080, 320))


def sd15_hires_fix(g):
    loader, positive, negative, first = checkpoint_txt2img(g, SD15, 512, 30, 7.0, "euler", "normal")
    upscale = g.add("LatentUpscaleBy", (1080, 0), upscale_method="nearest-exact", scale_by=1.5)
    g.connect(first, 0, upscale, "samples")
    second = g.add("AdaptiveDiffusionKSampler", (1440, 0), seed=42, steps=20, cfg=7.0, sampler_name="euler",
                   scheduler="normal", denoise=0.5)
    for source, output, name in ((loader, "MODEL", "model"), (positive, 0, "positive"), (negative, 0, "negative"),
                                 (upscale, 0, "latent_image")):
        g.connect(source, output, second, name)
    decode_and_save(g, loader, "VAE", second, (1800, 0), "adaptive_hires")
    preview(g, first, "skip_map", (1080, 320))
    preview(g, second, "skip_map", (1440, 520))


def flux_patch_custom_advanced(g):
    unet = g.add("UNETLoader", (0, 0), unet_name=FLUX, weight_dtype="default")
    clip = g.add("DualCLIPLoader", (0, 260), clip_name1=CLIP_L, clip_name2=T5, type="flux")
    vae = g.add("VAELoader", (0, 520), vae_name=FLUX_VAE)
    patch = g.add("AdaptiveDiffusionPatch", (360, 0),
                  reference_quirks=False)
    g.connect(unet, 0, patch, "model")
    text = g.add("CLIPTextEncode", (360, 260), text=PROMPT)
    g.connect(clip, 0, text, "clip")
    guidance = g.add("FluxGuidance", (720, 260), guidance=3.5)
    g.connect(text, 0, guidance, "conditioning")
    guider = g.add("BasicGuider", (1080, 260))
    g.connect(patch, 0, guider, "model")
    g.connect(guidance, 0, guider, "conditioning")
    noise = g.add("RandomNoise", (720, 0), noise_seed=42)
    sampler = g.add("KSamplerSelect", (720, 520), sampler_name="euler")
    scheduler = g.add("BasicScheduler", (720, 700), scheduler="simple", steps=28, denoise=1.0)
    g.connect(patch, 0, scheduler, "model")
    latent = g.add("EmptySD3LatentImage", (1080, 520), width=1024, height=1024, batch_size=1)
    custom = g.add("SamplerCustomAdvanced", (1440, 0))
    for source, name in ((noise, "noise"), (guider, "guider"), (sampler, "sampler"), (scheduler, "sigmas"),
                         (latent, "latent_image")):
        g.connect(source, 0, custom, name)
    decode_and_save(g, vae, 0, custom, (1800, 0), "adaptive_flux")
    report = g.add("AdaptiveDiffusionSkipReport", (1800, 320))
    g.connect(patch, 0, report, "model")
    g.connect(custom, 0, report, "latent")
    preview(g, report, "skip_map", (2160, 320))


def wan21_t2v(g):
    unet = g.add("UNETLoader", (0, 0), unet_name=WAN, weight_dtype="default")
    shift = g.add("ModelSamplingSD3", (360, 0), shift=8.0)
    g.connect(unet, 0, shift, "model")
    clip = g.add("CLIPLoader", (0, 260), clip_name=UMT5, type="wan")
    positive = g.add("CLIPTextEncode", (360, 260), text="a red fox running through snow, cinematic")
    negative = g.add("CLIPTextEncode", (360, 520), text=NEGATIVE)
    for node in (positive, negative):
        g.connect(clip, 0, node, "clip")
    latent = g.add("EmptyHunyuanLatentVideo", (720, 520), width=832, height=480, length=33, batch_size=1)
    sampler = g.add("AdaptiveDiffusionKSampler", (720, 0), seed=42, steps=30, cfg=6.0, sampler_name="uni_pc",
                    scheduler="simple", denoise=1.0)
    for source, name in ((shift, "model"), (positive, "positive"), (negative, "negative"), (latent, "latent_image")):
        g.connect(source, 0, sampler, name)
    vae = g.add("VAELoader", (720, 800), vae_name=WAN_VAE)
    decode = g.add("VAEDecode", (1080, 0))
    g.connect(sampler, 0, decode, "samples")
    g.connect(vae, 0, decode, "vae")
    save = g.add("SaveAnimatedWEBP", (1440, 0), filename_prefix="adaptive_wan", fps=16.0, lossless=False,
                 quality=90, method="default")
    g.connect(decode, 0, save, "images")
    preview(g, sampler, "skip_map", (1080, 320))


def demo_model(g):
    # node ids 1-8 are what scripts/demo.py and the tests address
    unet = g.add("UNETLoader", (0, 0), unet_name="demo_wan21.safetensors", weight_dtype="default")
    positive = g.add("AdaptiveDiffusionDemoPrompt", (0, 160), prompt="a circle")
    negative = g.add("AdaptiveDiffusionDemoPrompt", (0, 300), prompt="(empty)")
    latent = g.add("EmptyHunyuanLatentVideo", (0, 440), width=64, height=64, length=1, batch_size=1)
    sampler = g.add("AdaptiveDiffusionKSampler", (360, 0), seed=1, steps=50, cfg=3.0, sampler_name="euler",
                    scheduler="simple", denoise=1.0)
    for source, name in ((unet, "model"), (positive, "positive"), (negative, "negative"), (latent, "latent_image")):
        g.connect(source, 0, sampler, name)
    skip_map = g.add("SaveImage", (720, 320), filename_prefix="skip_map")
    g.connect(sampler, "skip_map", skip_map, "images")
    decode = g.add("AdaptiveDiffusionDemoDecode", (720, 0), scale=4)
    g.connect(sampler, 0, decode, "samples")
    picture = g.add("SaveImage", (1080, 0), filename_prefix="picture")
    g.connect(decode, 0, picture, "images")


def demo_model_early_exit(g):
    """AdaDiff early exit inside each network call and AdaptiveDiffusion step skipping on one model."""
    unet = g.add("UNETLoader", (0, 0), unet_name="demo_wan21.safetensors", weight_dtype="default")
    early_exit = g.add("AdaptiveDiffusionEarlyExit", (0, 160), sidecar="demo_wan21_uem_heads.safetensors")
    g.connect(unet, 0, early_exit, "model")
    positive = g.add("AdaptiveDiffusionDemoPrompt", (0, 320), prompt="a ring")
    negative = g.add("AdaptiveDiffusionDemoPrompt", (0, 460), prompt="(empty)")
    latent = g.add("EmptyHunyuanLatentVideo", (0, 600), width=64, height=64, length=1, batch_size=1)
    sampler = g.add("AdaptiveDiffusionKSampler", (360, 0), seed=1, steps=50, cfg=3.0, sampler_name="euler",
                    scheduler="simple", denoise=1.0)
    for source, name in ((early_exit, "model"), (positive, "positive"), (negative, "negative"),
                         (latent, "latent_image")):
        g.connect(source, 0, sampler, name)
    layer_map = g.add("AdaptiveDiffusionLayerMap", (720, 320))
    g.connect(early_exit, 0, layer_map, "model")
    g.connect(sampler, 0, layer_map, "latent")
    for source, output, position, prefix in ((sampler, "skip_map", (1080, 320), "skip_map"),
                                             (layer_map, "layer_map", (1080, 640), "layer_map")):
        save = g.add("SaveImage", position, filename_prefix=prefix)
        g.connect(source, output, save, "images")
    decode = g.add("AdaptiveDiffusionDemoDecode", (720, 0), scale=4)
    g.connect(sampler, 0, decode, "samples")
    picture = g.add("SaveImage", (1080, 0), filename_prefix="picture")
    g.connect(decode, 0, picture, "images")


WORKFLOWS = {"sd15_txt2img": (sd15_txt2img, False), "sdxl_txt2img": (sdxl_txt2img, False),
             "sd15_img2img": (sd15_img2img, False), "sd15_hires_fix": (sd15_hires_fix, False),
             "flux_patch_sampler_custom_advanced": (flux_patch_custom_advanced, False),
             "wan21_text_to_video": (wan21_t2v, False), "demo_model_adaptive_ksampler": (demo_model, True),
             "demo_model_early_exit_and_step_skipping": (demo_model_early_exit, False)}


def build(object_info):
    out = {}
    for name, (make, with_api) in WORKFLOWS.items():
        g = Graph(object_info)
        make(g)
        out[name] = (g.ui(), g.api() if with_api else None)
    return out


def main():
    with tempfile.TemporaryDirectory() as base, ComfyServer(comfy_runtime.COMFYUI, pathlib.Path(base)) as server:
        object_info = server.get("/object_info")
    for name, (ui, api) in build(object_info).items():
        (OUT / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
        if api:
            (OUT / f"{name}_api.json").write_text(json.dumps(api, indent=1) + "\n")
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
