"""Trains a bundled demo model (nodes/demo_models.py) on the procedural pictures of demo/space.py.

    .runtime/0.33.0/venv/bin/python scripts/train_demo_model.py --model demo_wan21 --batch 48   # 44 min on 2 cores
    .runtime/0.33.0/venv/bin/python scripts/train_demo_model.py --model demo_sd15_eps --steps 5000 --batch 32

- demo_wan21: ComfyUI's Wan 2.1 architecture at a tiny size with Wan's flow-matching objective
  (velocity = noise - x0, shift 8); fp16 weights that UNETLoader detects as Wan 2.1.
- demo_sd15_eps: ComfyUI's SD1.x UNet (SD15_UNET) with the EPS objective on ComfyUI's discrete SD
  schedule (timesteps drawn uniformly, the network called through ComfyUI's own apply_model).

Writes the weights and the prompt table (one fixed context embedding per prompt, plus the empty
prompt) into assets/, and the loss curve (CSV and PNG) into docs/demo_model/<model>/.
Deterministic for a given seed and thread count.
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
from adaptive_diffusion.adaptive_core import UncertaintyHeads  # noqa: E402
from adaptive_diffusion.adaptive_core.uncertainty import adadiff_loss  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS, NULL_PROMPT, SD15_UNET, build_sd15  # noqa: E402
from adaptive_diffusion.nodes.exits import exit_outputs  # noqa: E402
from adaptive_diffusion.nodes.sidecar import fingerprint, save_sidecar  # noqa: E402

WAN_ARCHITECTURE = dict(dim=128, ffn_dim=256, num_heads=1, num_layers=12)  # num_heads = dim / 128, as detected
SHIFT = 8.0  # Wan's flow shift: ComfyUI samples these sigmas, so train on the same distribution


def initialise(module, seed, zero=(), modulation_scale=None):
    """Scaled normal weights, zero biases, unit norms; ``zero`` names the layers that start at 0."""
    norms = {f"{name}.weight" for name, m in module.named_modules()
             if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm))}
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith(zero):
                p.zero_()
            elif p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)
            elif name in norms or (name.endswith("weight") and "norm" in name):
                p.fill_(1.0)
            else:
                p.zero_()
            if modulation_scale and name.endswith("modulation"):  # Wan's own init of its modulation tables
                p.copy_(torch.randn(p.shape, generator=g) * modulation_scale)


class WanDemo:
    """Wan 2.1 trained with AdaDiff's full objective (L_simple + L_u + L_UAL, adaptive_core/uncertainty.py)
    over every exit, so that early blocks learn to give usable outputs, with its uncertainty heads."""

    def __init__(self, seed):
        self.network = comfy.ldm.wan.model.WanModel(**WAN_ARCHITECTURE, operations=comfy.ops.disable_weight_init,
                                                    device="cpu")
        initialise(self.network, seed, zero=("head.head",), modulation_scale=WAN_ARCHITECTURE["dim"] ** -0.5)
        self.heads = UncertaintyHeads(WAN_ARCHITECTURE["num_layers"], WAN_ARCHITECTURE["dim"])
        self.parameters = list(self.network.parameters()) + list(self.heads.parameters())
        self.architecture = WAN_ARCHITECTURE

    def loss(self, x0, context, noise, data):
        u = torch.rand(x0.shape[0], generator=data)
        sigma = SHIFT * u / (1 + (SHIFT - 1) * u)
        s = sigma.view(-1, 1, 1, 1, 1)
        x = (1 - s) * x0 + s * noise

        def forward(options, repeat):
            # the exit passes skip every block, so the text they cross-attend to is never read: one token
            # of it keeps the shapes and saves embedding the whole prompt once per exit
            text = context if repeat == 1 else context[:, :1].repeat(repeat, 1, 1)
            return self.network(x.repeat(repeat, 1, 1, 1, 1), (sigma * 1000).repeat(repeat), text,
                                transformer_options=options)
        outputs, hidden = exit_outputs(self.network, forward)
        certainties = [self.heads(i, h.detach(), sigma).mean(1) for i, h in enumerate(hidden)]
        return adadiff_loss(outputs, certainties, noise - x0, train_backbone=True)[0]

    objective = "AdaDiff (L_simple + L_u + L_UAL over every exit), flow matching (velocity = noise - x0), Wan shift 8"

    def save_sidecar(self, model_file, seed, steps):
        """The heads trained with the model, uncalibrated: scripts/train_early_exit.py --demo --calibrate
        calibrates them on the model's own sampling trajectories, as for every other sidecar."""
        info = {"model": model_file.name, "mode": "joint", "steps": steps, "seed": seed,
                "objective": self.objective, "certainty_labels": "closeness to the data (the paper's)"}
        path = REPO / "assets" / "early_exit" / f"{model_file.stem}_uem.safetensors"
        save_sidecar(path, self.heads, fingerprint(self.network), info)
        print(f"wrote {path}")


class UNetDemo:
    """Trained through BaseModel.apply_model, so the input scaling and timestep mapping are ComfyUI's."""

    def __init__(self, seed, prediction):
        self.model = build_sd15(prediction)
        self.network = self.model.diffusion_model
        self.network.requires_grad_(True)
        self.network.train()
        self.parameters = list(self.network.parameters())
        # each residual branch and the output start at zero, as in the UNet's own initialisation
        initialise(self.network, seed, zero=("out.2.",) + tuple(n + "." for n, m in self.network.named_modules()
                                                                if n.endswith(("out_layers.3", "proj_out"))))
        self.prediction, self.architecture = prediction, SD15_UNET
        self.objective = f"{prediction} prediction, SD discrete schedule, uniform timesteps, loss weighted by σ² + 1"

    def loss(self, x0, context, noise, data):
        sigmas = self.model.model_sampling.sigmas
        sigma = sigmas[torch.randint(len(sigmas), (x0.shape[0],), generator=data)]
        s = sigma.view(-1, 1, 1, 1)
        denoised = self.model.apply_model(x0 + s * noise, sigma, c_crossattn=context)
        # |D - x0|² weighted by (σ² + 1)/σ²: the V loss, and for EPS the ε loss |ε̂ - ε|² weighted by
        # σ² + 1 (EDM's weighting). The plain ε loss leaves a tiny UNet's ε̂ too coarse at high σ, where
        # D = x - σ·ε̂ multiplies its error by σ ≈ 14: every sample ends in high-frequency noise.
        return ((denoised - x0) * ((s ** 2 + 1).sqrt() / s)).pow(2).mean()


def prompt_embeddings(demo, seed):
    g = torch.Generator().manual_seed(seed + 1)
    table = {name: torch.randn(1, demo.prompt_tokens, demo.prompt_width, generator=g) for name in demo_space.PROMPTS}
    table[NULL_PROMPT] = torch.zeros(1, demo.prompt_tokens, demo.prompt_width)
    return table


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
    parser.add_argument("--model", choices=list(DEMO_MODELS), default="demo_wan21")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--null-fraction", type=float, default=0.1, help="share trained on the empty prompt (CFG)")
    parser.add_argument("--docs", type=pathlib.Path, help="default docs/demo_model/<model>")
    parser.add_argument("--out", type=pathlib.Path, help="the model file (default: where the nodes load it)")
    args = parser.parse_args()
    demo = DEMO_MODELS[args.model]
    out = args.out or demo.file
    docs = args.docs or REPO / "docs" / "demo_model" / demo.name
    # ComfyUI's own trainer sets this too: from 0.33 on its fused kernels (comfy-kitchen's rope) have
    # no backward, and this switch selects the differentiable path.
    comfy.model_management.in_training = True
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trainee = WanDemo(args.seed) if demo.family == "wan21" else UNetDemo(args.seed, demo.prediction)
    table = prompt_embeddings(demo, args.seed)
    contexts = torch.cat([table[name] for name in demo_space.PROMPTS + [NULL_PROMPT]])
    optimizer = torch.optim.AdamW(trainee.parameters, lr=args.lr, weight_decay=0.01)
    data = torch.Generator().manual_seed(args.seed + 2)
    rows, ema, start = [], None, time.time()
    step = 0
    while step < args.steps:
        progress = step / args.steps
        lr = args.lr * min(1.0, (step + 1) / 200) * (0.5 * (1 + math.cos(math.pi * progress)) * 0.95 + 0.05)
        for group in optimizer.param_groups:
            group["lr"] = lr
        prompts = torch.randint(len(demo_space.PROMPTS), (args.batch,), generator=data)
        x0 = demo_space.picture_to_latent(demo_space.draw(prompts, data), demo.latent_channels, demo.video)
        use_null = torch.rand(args.batch, generator=data) < args.null_fraction
        context = contexts[torch.where(use_null, len(demo_space.PROMPTS), prompts)]
        loss = trainee.loss(x0, context, torch.randn(x0.shape, generator=data), data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainee.parameters, 1.0)
        optimizer.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 25 == 0:
            rows.append((step, ema, time.time() - start))
            done = int(30 * step / args.steps)
            print(f"\r[{'#' * done}{'.' * (30 - done)}] step {step} loss {ema:.4f} lr {lr:.2e} "
                  f"{time.time() - start:.0f}s", end="", flush=True)
    print()

    for path in (out.parent, demo.prompts_file.parent, docs):
        path.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to(torch.float16).contiguous() for k, v in trainee.network.state_dict().items()}
    metadata = {"architecture": json.dumps(trainee.architecture), "steps": str(step), "seed": str(args.seed),
                "objective": trainee.objective, "data": "demo/space.py", "prompts": json.dumps(demo_space.PROMPTS)}
    safetensors.torch.save_file(weights, str(out), metadata=metadata)
    safetensors.torch.save_file({k: v.contiguous() for k, v in table.items()}, str(demo.prompts_file))
    if isinstance(trainee, WanDemo):
        trainee.network.load_state_dict({k: v.float() for k, v in weights.items()})  # as ComfyUI will load it
        trainee.save_sidecar(out, args.seed, step)
    with open(docs / "training_loss.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss_ema", "seconds"])
        writer.writerows(rows)
    plot_loss(rows, docs / "training_loss.png")
    print(f"{step} steps in {time.time() - start:.0f}s, final loss {ema:.4f}; wrote {out}")


if __name__ == "__main__":
    main()
