"""The main job: the bundled demo model in a real ComfyUI server, full runs vs AdaptiveDiffusion.

Queues example_workflows/demo_model_adaptive_ksampler_api.json through the HTTP API for every
demo prompt, twice per prompt with the same seed: threshold 0 (identical to the stock KSampler)
and AdaptiveDiffusion. Writes to out/demo/: full_vs_adaptive.png (one row per prompt: full run,
AdaptiveDiffusion, skip map), the skip maps and reports, summary.json; prints calls, speedup and
PSNR. Wall times are each sampling run's own, from the reports.
"""
import argparse
import json
import pathlib
import statistics
import sys

import numpy as np
from PIL import Image, ImageDraw

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402

WORKFLOW = REPO / "example_workflows" / "demo_model_adaptive_ksampler_api.json"
comfy_runtime.import_extension()
from adaptive_diffusion.demo.space import PROMPTS  # noqa: E402


def prompt_for(template, prompt, seed, threshold, steps, sampler, prefix):
    workflow = json.loads(json.dumps(template))
    workflow["2"]["inputs"]["prompt"] = prompt
    workflow["5"]["inputs"].update(seed=seed, steps=steps, sampler_name=sampler)
    if threshold is not None:  # otherwise the node's default, as the example workflow holds it
        workflow["5"]["inputs"]["threshold"] = threshold
    workflow["6"]["inputs"]["filename_prefix"] = f"{prefix}_skip_map"
    workflow["8"]["inputs"]["filename_prefix"] = f"{prefix}_picture"
    return workflow


def psnr(a: Image.Image, b: Image.Image):
    x, y = (np.asarray(image.convert("L"), dtype=np.float64) for image in (a, b))
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def progress(done, total, label):
    filled = int(30 * done / total)
    print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {label:<32}", end="", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "out" / "demo")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--threshold", type=float, help="default: the node's default")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    template = json.loads(WORKFLOW.read_text())

    results = {}
    with ComfyServer(comfy_runtime.COMFYUI, REPO / ".runtime" / "demo_server") as server:
        print(f"ComfyUI {server.get('/system_stats')['system']['comfyui_version']} at {server.url}")
        # the first job loads the model; its seed is its own so that no later job is served from cache
        jobs = [("warmup", PROMPTS[0], args.seed + 1, 0.0)]
        for prompt in PROMPTS:  # interleaved, so machine noise hits both alike
            jobs += [("full", prompt, args.seed, 0.0), ("adaptive", prompt, args.seed, args.threshold)]
        for i, (kind, prompt, seed, threshold) in enumerate(jobs):
            prefix = f"{kind}_{prompt.replace(' ', '_')}"
            status, body = server.post_prompt(prompt_for(template, prompt, seed, threshold, args.steps,
                                                         args.sampler, prefix))
            if status != 200:
                raise SystemExit(f"ComfyUI rejected the prompt: {json.dumps(body, indent=1)}")
            outputs = server.wait_for(body["prompt_id"])["outputs"]
            progress(i + 1, len(jobs), f"{kind}: {prompt}")
            results[(kind, prompt)] = {
                "report": json.loads(outputs["5"]["adaptive_diffusion"][0]),
                "picture": Image.open(server.output_file(outputs["8"]["images"][0])).copy(),
                "skip_map": Image.open(server.output_file(outputs["6"]["images"][0])).copy(),
            }
        print()

    rows = []
    for prompt in PROMPTS:
        full, fast = results[("full", prompt)], results[("adaptive", prompt)]
        totals, full_totals = fast["report"]["totals"], full["report"]["totals"]
        rows.append({"prompt": prompt, "calls": totals["network_calls"], "full_calls": totals["full_run_network_calls"],
                     "call_ratio": totals["expected_speedup"],
                     "wall_speedup": full_totals["sampling_seconds"] / totals["sampling_seconds"],
                     "psnr_db": psnr(full["picture"], fast["picture"])})
        fast["skip_map"].save(args.out / f"skip_map_{prompt.replace(' ', '_')}.png")
        (args.out / f"report_{prompt.replace(' ', '_')}.json").write_text(json.dumps(fast["report"], indent=1))

    side = results[("full", PROMPTS[0])]["picture"].width
    map_w = max(results[("adaptive", p)]["skip_map"].width for p in PROMPTS)
    map_h = max(results[("adaptive", p)]["skip_map"].height for p in PROMPTS)
    row_h = max(side, map_h // 2) + 24
    sheet = Image.new("RGB", (2 * side + map_w // 2 + 40, len(PROMPTS) * row_h + 20), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), "full run | AdaptiveDiffusion | skip map", fill="black")
    for i, (prompt, row) in enumerate(zip(PROMPTS, rows)):
        y = 20 + i * row_h
        sheet.paste(results[("full", prompt)]["picture"], (0, y))
        sheet.paste(results[("adaptive", prompt)]["picture"], (side + 8, y))
        skip_map = results[("adaptive", prompt)]["skip_map"]
        sheet.paste(skip_map.resize((skip_map.width // 2, skip_map.height // 2)), (2 * side + 24, y))
        draw.text((2 * side + 24, y + map_h // 2 + 2),
                  f"{prompt}: {row['calls']}/{row['full_calls']} calls, {row['psnr_db']:.1f} dB", fill="black")
    sheet.save(args.out / "full_vs_adaptive.png")

    used = template["5"]["inputs"] if args.threshold is None else dict(template["5"]["inputs"], threshold=args.threshold)
    summary = {"sampler": args.sampler, "steps": args.steps, "seed": args.seed,
               **{k: used[k] for k in ("threshold", "max_skip_steps", "warmup_steps", "reuse", "criterion")},
               "per_prompt": rows,
               "median_call_ratio": statistics.median(r["call_ratio"] for r in rows),
               "median_wall_speedup": statistics.median(r["wall_speedup"] for r in rows),
               "median_psnr_db": statistics.median(r["psnr_db"] for r in rows)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    for r in rows:
        print(f"{r['prompt']:<20} {r['calls']:>3}/{r['full_calls']} network calls ({r['call_ratio']:.2f}x fewer), "
              f"wall {r['wall_speedup']:.2f}x, PSNR {r['psnr_db']:.1f} dB vs the full run")
    print(f"median: {summary['median_call_ratio']:.2f}x fewer calls, {summary['median_wall_speedup']:.2f}x wall "
          f"speedup, {summary['median_psnr_db']:.1f} dB. Pictures, skip maps, reports: {args.out}")


if __name__ == "__main__":
    main()
