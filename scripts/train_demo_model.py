"""Trains the bundled demo model: ComfyUI's own Wan 2.1 architecture at a tiny size, with Wan's
flow-matching objective, on the procedural pictures of adaptive_core/demo_space.py.

    .runtime/0.33.0/venv/bin/python scripts/train_demo_model.py [--steps 8000 --threads 2]

Writes assets/demo_wan21.safetensors (fp16 weights that ComfyUI's UNETLoader detects as Wan 2.1),
assets/demo_prompts.safetensors (one fixed context embedding per prompt, plus the empty prompt),
and docs/demo_model/ (loss curve as CSV and PNG). Deterministic for a given seed
and thread count (the default 8000 steps take about 16 minutes on 2 cores; --minutes caps it).
"""
import argparse
import csv
import json
import math
import pathlib
import sys
import time

import safetensors.torch
import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402

comfy_runtime.import_comfy()
comfy_runtime.import_extension()
import comfy.ldm.wan.model  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.ops  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402

ARCHITECTURE = dict(dim=128, ffn_dim=512, num_heads=1, num_layers=6)  # num_heads = dim / 128, as detected
SHIFT = 8.0  # Wan's flow shift: ComfyUI samples these sigmas, so train on the same distribution
TOKENS, TEXT_DIM = 4, 4096
NULL_PROMPT = "(empty)"


def build_model(seed):
    model = comfy.ldm.wan.model.WanModel(**ARCHITECTURE, operations=comfy.ops.disable_weight_init, device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("head.head"):  # start from predicting zero velocity
                p.zero_()
            elif p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)
            elif name.endswith("weight") and "norm" in name:
                p.fill_(1.0)
            else:
                p.zero_()
            if name.endswith("modulation"):  # Wan's own initialisation of its modulation tables
                p.copy_(torch.randn(p.shape, generator=g) / ARCHITECTURE["dim"] ** 0.5)
    return model


def prompt_embeddings(seed):
    g = torch.Generator().manual_seed(seed + 1)
    table = {name: torch.randn(1, TOKENS, TEXT_DIM, generator=g) for name in demo_space.PROMPTS}
    table[NULL_PROMPT] = torch.zeros(1, TOKENS, TEXT_DIM)
    return table


def shifted_sigma(u):
    return SHIFT * u / (1 + (SHIFT - 1) * u)


def plot_loss(rows, path):
    from PIL import Image, ImageDraw
    w, h, m = 640, 320, 40
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    steps = [r[0] for r in rows]
    losses = [math.log10(r[1]) for r in rows]
    lo, hi = min(losses), max(losses)
    xy = [(m + (s / steps[-1]) * (w - 2 * m), h - m - (v - lo) / (hi - lo + 1e-9) * (h - 2 * m))
          for s, v in zip(steps, losses)]
    draw.rectangle([m, m, w - m, h - m], outline=(200, 200, 200))
    draw.line(xy, fill=(0, 114, 178), width=2)
    draw.text((m, 10), f"training loss (log10, EMA), steps 0-{steps[-1]}: {10 ** hi:.3f} -> {10 ** lo:.3f}", fill="black")
    image.save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--minutes", type=float, default=20, help="safety cap; the default steps take about 16")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--null-fraction", type=float, default=0.1, help="share trained on the empty prompt (CFG)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "assets")
    parser.add_argument("--docs", type=pathlib.Path, default=REPO / "docs" / "demo_model")
    args = parser.parse_args()
    # ComfyUI's own trainer sets this too: from 0.33 on its fused kernels (comfy-kitchen's rope) have
    # no backward, and this switch selects the differentiable path.
    comfy.model_management.in_training = True
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model(args.seed)
    table = prompt_embeddings(args.seed)
    contexts = torch.cat([table[name] for name in demo_space.PROMPTS + [NULL_PROMPT]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    data = torch.Generator().manual_seed(args.seed + 2)
    rows, ema, start = [], None, time.time()
    budget = args.minutes * 60
    step = 0
    while step < args.steps and time.time() - start < budget:
        progress = step / args.steps  # by steps only: the result must not depend on the machine's speed
        lr = args.lr * min(1.0, (step + 1) / 200) * (0.5 * (1 + math.cos(math.pi * progress)) * 0.95 + 0.05)
        for group in optimizer.param_groups:
            group["lr"] = lr
        prompts = torch.randint(len(demo_space.PROMPTS), (args.batch,), generator=data)
        x0 = demo_space.picture_to_latent(demo_space.draw(prompts, data))
        use_null = torch.rand(args.batch, generator=data) < args.null_fraction
        context = contexts[torch.where(use_null, len(demo_space.PROMPTS), prompts)]
        noise = torch.randn(x0.shape, generator=data)
        sigma = shifted_sigma(torch.rand(args.batch, generator=data))
        s = sigma.view(-1, 1, 1, 1, 1)
        x = (1 - s) * x0 + s * noise
        velocity = model(x, sigma * 1000, context)
        loss = (velocity - (noise - x0)).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 25 == 0:
            rows.append((step, ema, time.time() - start))
            done = int(30 * step / args.steps)
            print(f"\r[{'#' * done}{'.' * (30 - done)}] step {step} loss {ema:.4f} lr {lr:.2e} "
                  f"{time.time() - start:.0f}s", end="", flush=True)
    print()

    args.out.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    metadata = {"architecture": json.dumps(ARCHITECTURE), "steps": str(step), "seed": str(args.seed),
                "objective": "flow matching (velocity = noise - x0), Wan shift 8",
                "data": "adaptive_core/demo_space.py", "prompts": json.dumps(demo_space.PROMPTS)}
    safetensors.torch.save_file(weights, str(args.out / "demo_wan21.safetensors"), metadata=metadata)
    safetensors.torch.save_file({k: v.contiguous() for k, v in table.items()}, str(args.out / "demo_prompts.safetensors"))
    with open(args.docs / "training_loss.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss_ema", "seconds"])
        writer.writerows(rows)
    plot_loss(rows, args.docs / "training_loss.png")
    print(f"{step} steps in {time.time() - start:.0f}s, final loss {ema:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
