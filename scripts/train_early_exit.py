"""Trains AdaDiff's uncertainty heads (and optionally fine-tunes the backbone) for a ComfyUI model.

    .runtime/0.33.0/venv/bin/python scripts/train_early_exit.py --mode heads   # backbone frozen: cheap
    .runtime/0.33.0/venv/bin/python scripts/train_early_exit.py --mode full    # the paper: L_simple + L_u + L_UAL

The model is loaded with ComfyUI's own loader (comfy.sd.load_diffusion_model) and run through its
public block-replacement patches: the output of an exit after block i is the model's forward pass
with every later block replaced by the identity, so the model's own head serves every exit.
Training data: the demo model's procedural data set (adaptive_core/demo_space.py) with its prompt
embeddings; the loop itself only needs (latent, noise, σ, conditioning) batches.

Writes a sidecar safetensors (heads, the tuned backbone for --mode full, metadata naming the model)
to assets/early_exit/ by default. Deterministic for a seed and thread count; a checkpoint next to
the output every --checkpoint-every steps lets an interrupted run go on with --resume.
"""
import argparse
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
import comfy.model_management  # noqa: E402
import comfy.model_sampling  # noqa: E402
import comfy.sd  # noqa: E402

from adaptive_diffusion.adaptive_core import UncertaintyHeads  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.adaptive_core.uncertainty import adadiff_loss  # noqa: E402
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.early_exit import transformer_blocks  # noqa: E402
from adaptive_diffusion.nodes.sidecar import fingerprint, save_sidecar  # noqa: E402

SHIFT = 8.0  # the demo model's (Wan's) flow shift: train on the sigmas ComfyUI will sample
NULL_PROMPT = "(empty)"


def demo_batches(batch, generator):
    """Endless (x0, context) batches of the demo data set, 10 % on the empty prompt (for CFG)."""
    table = safetensors.torch.load_file(str(WAN_DEMO.prompts_file))
    contexts = torch.cat([table[name] for name in demo_space.PROMPTS + [NULL_PROMPT]])
    while True:
        prompts = torch.randint(len(demo_space.PROMPTS), (batch,), generator=generator)
        x0 = demo_space.picture_to_latent(demo_space.draw(prompts, generator), WAN_DEMO.latent_channels, WAN_DEMO.video)
        null = torch.rand(batch, generator=generator) < 0.1
        yield x0, contexts[torch.where(null, len(demo_space.PROMPTS), prompts)]


def noised(model_sampling, x0, generator):
    """(x_t, σ, what the network should output) for Wan-style flow or EPS models."""
    noise = torch.randn(x0.shape, generator=generator)
    u = torch.rand(x0.shape[0], generator=generator)
    if isinstance(model_sampling, comfy.model_sampling.CONST):
        sigma = SHIFT * u / (1 + (SHIFT - 1) * u)
        target = noise - x0
    else:
        sigma = model_sampling.sigma(model_sampling.timestep(model_sampling.sigma_max) * u)
        target = noise
    return model_sampling.noise_scaling(sigma, noise, x0), sigma, target


def exit_outputs(diffusion_model, blocks, x, timestep, context, sigma):
    """g_i(h_i) for every block i (the last is the full output) and the hidden state after each block."""
    hidden = [None] * blocks

    def capture(i):
        def patch(args, extra):
            out = extra["original_block"](args)
            hidden[i] = out["img"]
            return out
        return patch

    def identity(args, extra):
        return {k: args[k] for k in ("img", "txt") if k in args}

    outputs = []
    for exit_block in range(blocks):
        full = exit_block == blocks - 1
        replace = {("double_block", j): capture(j) if full else identity
                   for j in range(blocks) if full or j > exit_block}
        options = {"patches_replace": {"dit": replace}, "sigmas": sigma}
        outputs.append(diffusion_model(x, timestep, context, transformer_options=options))
    return outputs, hidden


def train(args):
    # ComfyUI's own trainer sets this too: from 0.33 on its fused kernels (comfy-kitchen's rope) have
    # no backward, and this switch selects the differentiable path.
    comfy.model_management.in_training = True
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    patcher = comfy.sd.load_diffusion_model(str(args.model))
    model = patcher.model
    diffusion_model, model_sampling = model.diffusion_model, model.model_sampling
    diffusion_model.float()
    blocks = len(transformer_blocks(diffusion_model))
    trained_for = fingerprint(diffusion_model)
    generator = torch.Generator().manual_seed(args.seed + 2)
    batches = demo_batches(args.batch, generator)
    with torch.no_grad():  # the hidden size, from one real forward pass
        x0, context = next(batches)
        x, sigma, _ = noised(model_sampling, x0[:1], generator)
        hidden = exit_outputs(diffusion_model, blocks, x, model_sampling.timestep(sigma), context[:1], sigma)[1]
    heads = UncertaintyHeads(blocks, hidden[0].shape[-1])
    held_out = torch.Generator().manual_seed(args.seed + 3)
    x0, context = next(demo_batches(64, held_out))
    validation = (*noised(model_sampling, x0, held_out), context)
    train_backbone = args.mode == "full"
    diffusion_model.requires_grad_(train_backbone)
    parameters = list(heads.parameters()) + (list(diffusion_model.parameters()) if train_backbone else [])
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.0)
    checkpoint = args.out.with_suffix(".checkpoint.pt")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    step, history = 0, []

    def loss_on(x, sigma, target, context):
        outputs, hidden = exit_outputs(diffusion_model, blocks, x, model_sampling.timestep(sigma), context, sigma)
        certainties = [heads(i, h.detach(), sigma).mean(1) for i, h in enumerate(hidden)]
        return adadiff_loss(outputs, certainties, target, train_backbone)

    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        heads.load_state_dict(state["heads"])
        if train_backbone:
            diffusion_model.load_state_dict(state["backbone"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, history = state["step"], state["history"]
        print(f"resumed from {checkpoint} at step {step}")
    start, session_end = time.time(), args.steps if args.stop_after is None else min(args.steps, step + args.stop_after)
    while step < session_end:
        lr = args.lr * min(1.0, (step + 1) / 50) * (0.5 * (1 + math.cos(math.pi * step / args.steps)) * 0.9 + 0.1)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if step % args.checkpoint_every == 0:
            with torch.no_grad():
                history.append({"step": step, "validation": loss_on(*validation)[0].item()})
        x0, context = next(batches)
        loss, parts = loss_on(*noised(model_sampling, x0, generator), context)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        step += 1
        history.append({"step": step, "loss": float(loss), **parts})
        if step % 10 == 0 or step == args.steps:
            recent = [h["loss"] for h in history[-10:] if "loss" in h]
            checked = [h["validation"] for h in history if "validation" in h]
            done = int(30 * step / args.steps)
            print(f"\r[{'#' * done}{'.' * (30 - done)}] step {step}/{args.steps} loss {sum(recent) / len(recent):.4f} "
                  f"held-out {checked[-1]:.4f} {time.time() - start:.0f}s", end="", flush=True)
        if step == args.steps:
            with torch.no_grad():
                history.append({"step": step, "validation": loss_on(*validation)[0].item()})
        if step % args.checkpoint_every == 0 or step == session_end:
            partial = checkpoint.with_suffix(".partial")  # a kill while writing leaves the last good one
            torch.save({"heads": heads.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "backbone": diffusion_model.state_dict() if train_backbone else None,
                        "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                        "history": history}, partial)
            partial.replace(checkpoint)
    print()
    if step < args.steps:
        print(f"stopped at step {step}/{args.steps}; go on with --resume")
        return history
    info = {"model": args.model.name, "mode": args.mode, "steps": step, "seed": args.seed, "batch": args.batch,
            "data": "adaptive_core/demo_space.py", "objective": "L_u" + (" + L_simple + L_UAL" if train_backbone else ""),
            "certainty_labels": "closeness to the data" if train_backbone else "closeness to the model's own output"}
    save_sidecar(args.out, heads, trained_for, info, diffusion_model.state_dict() if train_backbone else None)
    print(f"wrote {args.out} ({time.time() - start:.0f}s)")
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=pathlib.Path, default=WAN_DEMO.file)
    parser.add_argument("--mode", choices=["heads", "full"], default="heads")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None, help="default 1e-2 for heads, 2e-4 for full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true", help="go on from the checkpoint next to --out")
    parser.add_argument("--stop-after", type=int, help="stop after this many steps in this session (checkpointed), "
                                                        "to train in several sittings with --resume")
    args = parser.parse_args(argv)
    args.lr = args.lr or (1e-2 if args.mode == "heads" else 2e-4)
    args.out = args.out or REPO / "assets" / "early_exit" / f"{args.model.stem}_uem_{args.mode}.safetensors"
    return train(args)


if __name__ == "__main__":
    main()
