"""Trains AdaDiff uncertainty heads for a ComfyUI model without a data set (nodes/exit_training.py):
the model samples its own trajectories for your prompts, and its own full-depth outputs are the
labels. The node Train AdaDiff Heads does the same inside a workflow.

    # any supported model (Wan, SD3, Flux, Chroma, HunyuanVideo, Qwen-Image, LTX-Video), prompts
    # encoded by its own text encoder through ComfyUI:
    .runtime/0.33.0/venv/bin/python scripts/train_early_exit.py --model wan2.1_t2v_1.3B_fp16.safetensors \\
        --text-encoder umt5_xxl_fp8_e4m3fn_scaled.safetensors --clip-type wan --latent 16,9,60,104 \\
        --prompts "a lighthouse at dusk" "a fox in the snow" --seeds 0 1 --sampler euler --steps 30 --cfg 5
    # the bundled demo model with its own prompt embeddings:
    .runtime/0.33.0/venv/bin/python scripts/train_early_exit.py --demo

Writes the sidecar (the heads, calibrated on every fourth run, held out, and the model's fingerprint) to --out
(default models/adaptive_diffusion/<model>_uem_heads.safetensors of the ComfyUI runtime). Every
--checkpoint-every steps a checkpoint lands next to it: --resume goes on from it (bit-identically),
--stop-after N ends a sitting early. Deterministic for a seed on one device.
"""
import argparse
import pathlib
import sys
import time

import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402

comfy_runtime.import_comfy()
comfy_runtime.load_extension()
import comfy.sd  # noqa: E402
import folder_paths  # noqa: E402

from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes import demo_models  # noqa: E402
from adaptive_diffusion.nodes.exit_training import HEADS_ONLY, HeadsTrainer, record_calls, record_training  # noqa: E402
from adaptive_diffusion.nodes.sidecar import FOLDER, load_sidecar  # noqa: E402

KEPT_METADATA = ("model", "mode", "steps", "seed", "objective", "certainty_labels", "recommended_threshold")


def conditionings(args):
    """(model patcher, [(name, positive)], negative, empty latent)."""
    if args.demo:
        demo = demo_models.WAN_DEMO
        table = demo_models.prompt_table(demo.name)
        prompts = [(p, [[table[p], {}]]) for p in demo_space.PROMPTS]
        return (demo_models.load(demo), prompts, [[table[demo_models.NULL_PROMPT], {}]],
                torch.zeros(demo.empty_latent))
    clip = comfy.sd.load_clip(ckpt_paths=[str(args.text_encoder)], clip_type=comfy.sd.CLIPType[args.clip_type.upper()])
    encode = lambda text: clip.encode_from_tokens_scheduled(clip.tokenize(text))
    latent = torch.zeros((1,) + tuple(int(n) for n in args.latent.split(",")))
    return comfy.sd.load_diffusion_model(str(args.model)), [(p, encode(p)) for p in args.prompts], encode(""), latent


def save_checkpoint(trainer, checkpoint):
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    partial = checkpoint.with_suffix(".partial")  # a kill while writing leaves the last good one
    torch.save(trainer.state(), partial)
    partial.replace(checkpoint)

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="the bundled Wan demo model and its eight prompts")
    parser.add_argument("--model", type=pathlib.Path, help="a diffusion model file ComfyUI's UNETLoader reads")
    parser.add_argument("--text-encoder", type=pathlib.Path)
    parser.add_argument("--clip-type", default="wan", help="ComfyUI's CLIPType, as CLIPLoader names it")
    parser.add_argument("--prompts", nargs="+", default=[])
    parser.add_argument("--latent", default="16,1,8,8", help="the empty latent's shape without the batch: C,H,W or C,T,H,W")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--scheduler", default="simple")
    parser.add_argument("--steps", type=int, default=30, help="sampling steps of each recorded run")
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--every", type=int, default=1, help="keep every N-th network call of a run (memory)")
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--stop-after", type=int, help="steps in this sitting (checkpointed)")
    parser.add_argument("--calibrate", type=pathlib.Path,
                        help="only calibrate this sidecar on the recorded calls (written to --out, default: in place)")
    args = parser.parse_args(argv)
    if not args.demo and not (args.model and args.text_encoder and args.prompts):
        parser.error("give --demo, or --model, --text-encoder and --prompts")
    torch.manual_seed(args.seed)
    patcher, prompts, negative, latent = conditionings(args)
    name = demo_models.WAN_DEMO.file.stem if args.demo else args.model.stem
    out = args.out or pathlib.Path(folder_paths.models_dir) / FOLDER / f"{name}_uem_heads.safetensors"
    runs = [dict(seed=seed, steps=args.steps, cfg=args.cfg, sampler_name=args.sampler, scheduler=args.scheduler,
                 positive=positive, negative=negative, latent={"samples": latent}) for _, positive in prompts
            for seed in args.seeds]
    started = time.time()
    if args.calibrate:
        calls = record_calls(patcher, runs, args.every)
        heads, backbone, metadata = load_sidecar(args.calibrate)
        HeadsTrainer(patcher, [], calls, heads=heads).save(
            args.out or args.calibrate, {k: metadata[k] for k in KEPT_METADATA if k in metadata}, backbone)
        print(f"calibrated {args.calibrate.name} on {len(calls)} network calls: {args.out or args.calibrate}")
        return None
    if len(runs) < 2:
        parser.error("give at least two runs (prompts x seeds): one is held out to calibrate the threshold")
    calls, held_out = record_training(patcher, runs, args.every)
    trainer = HeadsTrainer(patcher, calls, held_out, args.seed, args.lr)
    print(f"recorded {len(calls)} network calls and {len(held_out)} of held-out runs ({len(runs)} runs) in "
          f"{time.time() - started:.0f}s ({trainer.layout.family}, {trainer.layout.blocks} blocks)")
    checkpoint = out.with_suffix(".checkpoint.pt")
    if args.resume and checkpoint.exists():
        trainer.load(torch.load(checkpoint, weights_only=False))
        print(f"resumed from {checkpoint} at step {trainer.step}")
    end = args.train_steps if args.stop_after is None else min(args.train_steps, trainer.step + args.stop_after)
    held = trainer.history[-1]["held_out"] if trainer.history and "held_out" in trainer.history[-1] else None
    while trainer.step < end:
        if trainer.step % args.checkpoint_every == 0:
            held = trainer.held_out_loss()
            trainer.history.append({"step": trainer.step, "held_out": held})
        loss = trainer.train_step()
        done = int(30 * trainer.step / args.train_steps)
        print(f"\r[{'#' * done}{'.' * (30 - done)}] step {trainer.step}/{args.train_steps} loss {loss:.4f} "
              f"held-out {held:.4f} {time.time() - started:.0f}s", end="", flush=True)
        if trainer.step % args.checkpoint_every == 0 or trainer.step == end:
            save_checkpoint(trainer, checkpoint)
    print()
    if trainer.step < args.train_steps:
        print(f"stopped at step {trainer.step}/{args.train_steps}; go on with --resume")
        return trainer
    trainer.history.append({"step": trainer.step, "held_out": trainer.held_out_loss()})
    save_checkpoint(trainer, checkpoint)
    trainer.save(out, {**HEADS_ONLY, "model": f"{name}.safetensors", "seed": args.seed, "runs": len(runs),
                       "calls": len(calls) + len(held_out), "steps": trainer.step})
    print(f"wrote {out}; held-out loss {trainer.history[0]['held_out']:.4f} -> {trainer.history[-1]['held_out']:.4f} "
          f"({time.time() - started:.0f}s)")
    return trainer


if __name__ == "__main__":
    main()
