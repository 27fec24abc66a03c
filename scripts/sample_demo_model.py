"""Draws a grid of a demo model's samples: one row per prompt, one column per seed.

    .runtime/0.33.0/venv/bin/python scripts/sample_demo_model.py --model demo_sd15_eps

Real ComfyUI sampling (euler, 30 steps, cfg 3, the stock KSampler path), decoded exactly by the
demo decode node; writes docs/demo_model/<model>/samples.png unless --out says otherwise.
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
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo import AdaptiveDiffusionDemoDecode, AdaptiveDiffusionDemoPrompt  # noqa: E402
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS, NULL_PROMPT, load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=list(DEMO_MODELS), default="demo_wan21")
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    demo = DEMO_MODELS[args.model]
    out = args.out or REPO / "docs" / "demo_model" / demo.name / "samples.png"
    model = load(demo)
    negative = AdaptiveDiffusionDemoPrompt.execute(NULL_PROMPT, demo.name).result[0]
    rows = []
    for prompt in demo_space.PROMPTS:
        positive = AdaptiveDiffusionDemoPrompt.execute(prompt, demo.name).result[0]
        row = []
        for seed in range(args.seeds):
            latent = nodes.common_ksampler(model, seed, 30, 3.0, "euler", "simple", positive, negative,
                                           {"samples": torch.zeros(demo.empty_latent)})[0]
            row.append(AdaptiveDiffusionDemoDecode.execute(latent, 2).result[0][0])
        rows.append(torch.cat(row, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((torch.cat(rows, 0).numpy() * 255).round().astype("uint8")).save(out)
    print(f"wrote {out}: rows {', '.join(demo_space.PROMPTS)}")


if __name__ == "__main__":
    main()
