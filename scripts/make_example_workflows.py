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
import example_graphs as real  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402
from workflow_graph import Graph  # noqa: E402

OUT = REPO / "example_workflows"


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


WORKFLOWS = {"sd15_txt2img": (real.sd15_txt2img, False), "sdxl_txt2img": (real.sdxl_txt2img, False),
             "sd15_img2img": (real.sd15_img2img, False), "sd15_hires_fix": (real.sd15_hires_fix, False),
             "flux_patch_sampler_custom_advanced": (real.flux_patch_custom_advanced, False),
             "wan21_text_to_video": (real.wan21_t2v, False),
             "wan21_train_early_exit_heads": (real.wan21_train_heads, False),
             "demo_model_adaptive_ksampler": (demo_model, True),
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
