"""Draws a grid of the demo model's samples: one row per prompt, one column per seed.

    .runtime/0.33.0/venv/bin/python scripts/sample_demo_model.py [--out docs/demo_model/samples.png]

Real ComfyUI sampling (euler, 30 steps, cfg 3, the stock KSampler path) on
assets/demo_wan21.safetensors, decoded exactly by the demo decode node.
"""
import argparse
import pathlib
import sys

import torch
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402

nodes = comfy_runtime.import_comfy()
comfy_runtime.import_extension()
import comfy.sd  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo import (ASSETS, MODEL_FILE, AdaptiveDiffusionDemoDecode,  # noqa: E402
                                           AdaptiveDiffusionDemoPrompt)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "demo_model" / "samples.png")
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    model = comfy.sd.load_diffusion_model(str(ASSETS / MODEL_FILE))
    negative = AdaptiveDiffusionDemoPrompt.execute("(empty)").result[0]
    rows = []
    for prompt in demo_space.PROMPTS:
        positive = AdaptiveDiffusionDemoPrompt.execute(prompt).result[0]
        row = []
        for seed in range(args.seeds):
            latent = nodes.common_ksampler(model, seed, 30, 3.0, "euler", "simple", positive, negative,
                                           {"samples": torch.zeros(1, 16, 1, 8, 8)})[0]
            row.append(AdaptiveDiffusionDemoDecode.execute(latent, 2).result[0][0])
        rows.append(torch.cat(row, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((torch.cat(rows, 0).numpy() * 255).round().astype("uint8")).save(args.out)
    print(f"wrote {args.out}: rows {', '.join(demo_space.PROMPTS)}")


if __name__ == "__main__":
    main()
