"""The example workflows for real models (SD1.5, SDXL, Flux, Wan 2.1), as graphs built on a
server's /object_info; scripts/make_example_workflows.py writes them beside the demo model's."""
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


def wan21_loaders(g):
    """Wan 2.1 1.3B as ComfyUI's own Wan template loads it: shift 8, UMT5 prompts, 480p × 33 frames."""
    unet = g.add("UNETLoader", (0, 0), unet_name=WAN, weight_dtype="default")
    shift = g.add("ModelSamplingSD3", (360, 0), shift=8.0)
    g.connect(unet, 0, shift, "model")
    clip = g.add("CLIPLoader", (0, 260), clip_name=UMT5, type="wan")
    positive = g.add("CLIPTextEncode", (360, 260), text="a red fox running through snow, cinematic")
    negative = g.add("CLIPTextEncode", (360, 520), text=NEGATIVE)
    for node in (positive, negative):
        g.connect(clip, 0, node, "clip")
    latent = g.add("EmptyHunyuanLatentVideo", (720, 520), width=832, height=480, length=33, batch_size=1)
    return shift, positive, negative, latent


def wan21_t2v(g):
    shift, positive, negative, latent = wan21_loaders(g)
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


def wan21_train_heads(g):
    """Early-exit heads for Wan 2.1 1.3B from its own runs of one prompt (the CLI takes several)."""
    shift, positive, negative, latent = wan21_loaders(g)
    train = g.add("AdaptiveDiffusionTrainHeads", (1080, 0), cfg=6.0, sampler_name="uni_pc", scheduler="simple",
                  filename="wan21_t2v_1.3B_uem_heads")
    for source, name in ((shift, "model"), (positive, "positive"), (negative, "negative"), (latent, "latent_image")):
        g.connect(source, 0, train, name)
