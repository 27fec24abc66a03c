"""Queues the demo workflow on a real ComfyUI server through its HTTP API and reports the result.

For each seed the same workflow runs twice: threshold 0 (the stock sampler, bit-identical) and
AdaptiveDiffusion. Wall times are the sampling runs' own, as the reports give them; calls and the
skip map come from the reports too. Until the trained demo model lands the model is a tiny
Wan 2.1 with seeded random weights, so the pictures are latent channels, not images.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

import numpy as np
import safetensors.torch
import torch
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]
import runtime  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402

HELPERS = REPO / "tests" / "helper_nodes" / "adaptive_diffusion_test_helpers"
WORKFLOW = REPO / "example_workflows" / "tiny_wan_adaptive_ksampler_api.json"


def prepare_model(directory):
    runtime.import_comfy()
    import tiny_models
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tiny_wan21.safetensors"
    if not path.exists():
        tiny_models.save_wan(path)
    return path


def prompt_for(template, seed, threshold, steps, sampler, prefix):
    prompt = json.loads(json.dumps(template))
    sampler_inputs = prompt["5"]["inputs"]
    sampler_inputs.update(seed=seed, threshold=threshold, steps=steps, sampler_name=sampler)
    prompt["6"]["inputs"]["filename_prefix"] = f"{prefix}_skip_map"
    prompt["7"]["inputs"]["filename_prefix"] = f"{prefix}_latent"
    return prompt


def latent_picture(latent):
    """The first three latent channels as RGB, each stretched to its own range."""
    channels = latent[0, :3, 0].float()
    lo = channels.amin(dim=(1, 2), keepdim=True)
    hi = channels.amax(dim=(1, 2), keepdim=True)
    rgb = ((channels - lo) / (hi - lo + 1e-8)).permute(1, 2, 0).numpy()
    return Image.fromarray((rgb * 255).astype(np.uint8)).resize((128, 128), Image.NEAREST)


def psnr(a, b):
    """PSNR of b against a, with a's value range as the peak."""
    peak = float(a.max() - a.min())
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "out" / "demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--threshold", type=float, default=0.01)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    template = json.loads(WORKFLOW.read_text())
    model = prepare_model(REPO / ".runtime" / "demo_models")

    with ComfyServer(runtime.COMFYUI, REPO / ".runtime" / "demo_server", custom_nodes=[HELPERS],
                     models=[("diffusion_models", model)]) as server:
        print(f"ComfyUI {server.get('/system_stats')['system']['comfyui_version']} at {server.url}")
        # loads the model; a seed of its own, or ComfyUI would answer the first full run from its cache
        jobs = [("warmup", max(args.seeds) + 1, 0.0)]
        for seed in args.seeds:  # interleaved, so machine noise hits both alike
            jobs += [("full", seed, 0.0), ("adaptive", seed, args.threshold)]
        results = {}
        for i, (kind, seed, threshold) in enumerate(jobs):
            prefix = f"{kind}_seed{seed}"
            status, body = server.post_prompt(prompt_for(template, seed, threshold, args.steps, args.sampler, prefix))
            if status != 200:
                raise SystemExit(f"ComfyUI rejected the prompt: {json.dumps(body, indent=1)}")
            entry = server.wait_for(body["prompt_id"])
            done = int(30 * (i + 1) / len(jobs))
            print(f"\r[{'#' * done}{'.' * (30 - done)}] {i + 1}/{len(jobs)} {prefix:<18}", end="", flush=True)
            if kind != "warmup":
                outputs = entry["outputs"]
                latent_file = server.output_file(outputs["7"]["latents"][0])
                report = json.loads(outputs["5"]["adaptive_diffusion"][0])
                results[(kind, seed)] = {
                    "wall_s": report["totals"]["sampling_seconds"],
                    "report": report,
                    "latent": safetensors.torch.load_file(str(latent_file))["latent_tensor"],
                    "skip_map": server.output_file(outputs["6"]["images"][0]),
                }
        print()

    rows, pictures = [], []
    for seed in args.seeds:
        full, fast = results[("full", seed)], results[("adaptive", seed)]
        totals = fast["report"]["totals"]
        rows.append({
            "seed": seed, "calls": totals["network_calls"], "full_calls": totals["full_run_network_calls"],
            "call_ratio": totals["expected_speedup"], "wall_speedup": full["wall_s"] / fast["wall_s"],
            "psnr_db": psnr(full["latent"], fast["latent"]),
            "latent_rel_l2": float((fast["latent"] - full["latent"]).norm() / full["latent"].norm()),
        })
        pictures.append((latent_picture(full["latent"]), latent_picture(fast["latent"])))
        Image.open(fast["skip_map"]).save(args.out / f"skip_map_seed{seed}.png")
        (args.out / f"report_seed{seed}.json").write_text(json.dumps(fast["report"], indent=1))

    sheet = Image.new("RGB", (2 * 128 + 12, len(pictures) * 140), "white")
    for i, (a, b) in enumerate(pictures):
        sheet.paste(a, (0, i * 140))
        sheet.paste(b, (140, i * 140))
    sheet.save(args.out / "full_vs_adaptive.png")
    summary = {
        "sampler": args.sampler, "steps": args.steps, "threshold": args.threshold, "per_seed": rows,
        "median_call_ratio": statistics.median(r["call_ratio"] for r in rows),
        "median_wall_speedup": statistics.median(r["wall_speedup"] for r in rows),
        "median_psnr_db": statistics.median(r["psnr_db"] for r in rows),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    for r in rows:
        print(f"seed {r['seed']}: {r['calls']}/{r['full_calls']} network calls ({r['call_ratio']:.2f}x fewer), "
              f"wall {r['wall_speedup']:.2f}x faster, latent PSNR {r['psnr_db']:.1f} dB vs the full run")
    print(f"median: {summary['median_call_ratio']:.2f}x fewer calls, {summary['median_wall_speedup']:.2f}x wall "
          f"speedup, {summary['median_psnr_db']:.1f} dB; skip maps, report and pictures in {args.out}")


if __name__ == "__main__":
    main()
