"""The greedy "optimal skipping path" of the AdaptiveDiffusion paper, run with a given reuse.

    .runtime/0.33.0/venv/bin/python bench/oracle.py --family demo_wan21
    .runtime/0.33.0/venv/bin/python bench/oracle.py --family demo_sd15_eps

For k = 1 .. max skips, add the skip that least increases the final latent's error against the
full run (euler, 50 steps), once with the paper's reuse (hold) and once with ours (auto). Knowing
the full run, it is the best a skipping rule could do step by step with that reuse. Writes
docs/bench/<family>/oracle.json: per prompt and reuse, the path (skips, skipped steps, PSNR).

    .runtime/0.33.0/venv/bin/python bench/oracle.py --family demo_sd15_eps --transfer

runs each found path (at TRANSFERRED skips) on the benchmark's 32 prompt x seed pairs with its
reuse, into oracle.json's "transfer": how much of the path's quality comes from fitting its own
pair's full run, which no rule that sees only its own run can do.
"""
import argparse
import json
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI)
import methods  # noqa: E402
import metrics  # noqa: E402

from adaptive_diffusion.nodes.demo_models import DEMO_MODELS  # noqa: E402

SAMPLER, STEPS = "euler", 50
TRANSFERRED = (17, 25)  # 33 and 25 calls: about 1.5x and 2x
TRANSFER_PAIRS = 32


def greedy_path(bench, prompt, seed, max_skips, reuse):
    reference = bench.full_run(prompt, seed, SAMPLER, STEPS)[0]
    skipped, path = [], []
    for _ in range(max_skips):
        best = None
        for candidate in range(1, STEPS):
            if candidate in skipped:
                continue
            model = methods.forced(bench.model, skipped + [candidate], reuse)
            latent = bench.sample(model, prompt, seed, SAMPLER, STEPS)[0]
            error = metrics.latent_rel_l2(reference, latent)
            if best is None or error < best[0]:
                best = (error, candidate, latent)
        skipped.append(best[1])
        path.append({"skips": len(skipped), "calls": STEPS - len(skipped), "skipped": sorted(skipped),
                     "latent_rel_l2": best[0], "psnr": metrics.psnr(bench.picture(reference), bench.picture(best[2]))})
    return path


def transfer(bench, result):
    """Per found path and skip count, its PSNR on every benchmark pair with its reuse."""
    out = []
    for prompt, paths in result["paths"].items():
        for reuse, path in paths.items():
            for point in path:
                if point["skips"] not in TRANSFERRED:
                    continue
                model = methods.forced(bench.model, point["skipped"], reuse)
                psnr = {f"{p}|{s}": bench.measure("oracle path", "", model, p, s, SAMPLER, STEPS)["psnr"]
                        for p, s in harness.pairs(TRANSFER_PAIRS)}
                out.append({"found_on": prompt, "reuse": reuse, "skips": point["skips"], "calls": point["calls"],
                            "psnr": psnr})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", choices=list(DEMO_MODELS), required=True)
    parser.add_argument("--prompts", type=int, default=2, help="N prompts, seed 0")
    parser.add_argument("--first", type=int, default=0,
                        help="skip this many prompts; their paths already in oracle.json are kept")
    parser.add_argument("--max-skips", type=int, default=34, help="34 of 50: 3x fewer calls")
    parser.add_argument("--transfer", action="store_true", help="run the paths found so far on every pair")
    parser.add_argument("--out", type=pathlib.Path, default=harness.REPO / "docs" / "bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench = harness.Bench(DEMO_MODELS[args.family])
    out = args.out / args.family / "oracle.json"
    result = {"sampler": SAMPLER, "steps": STEPS, "seed": 0, "paths": {}}
    if (args.first or args.transfer) and out.exists():
        result["paths"] = json.loads(out.read_text())["paths"]
    started = time.time()
    if args.transfer:
        out.write_text(json.dumps({**result, "transfer": transfer(bench, result)}, indent=1))
        return
    for prompt, seed in harness.pairs(args.first + args.prompts)[args.first:]:
        result["paths"][prompt] = {reuse: greedy_path(bench, prompt, seed, args.max_skips, reuse)
                                   for reuse in ("hold", "auto")}
        print(f"{args.family} {prompt} done, {time.time() - started:.0f}s", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
