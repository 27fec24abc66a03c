"""Quality vs network calls for every method side by side, on each family of demo model.

    .runtime/0.33.0/venv/bin/python bench/quality.py --family demo_wan21 --acceldiff /path/to/ComfyUI-AccelDiff
    .runtime/0.33.0/venv/bin/python bench/quality.py --family demo_sd15_eps --acceldiff /path/to/ComfyUI-AccelDiff
    .runtime/0.33.0/venv/bin/python bench/tables.py      # the tables and plots of every family run

One family per process (one torch thread each), so that two run side by side on two cores.
32 prompt x seed pairs by default; the plan is the issue's grid: euler, dpmpp_2m and uni_pc at
50 steps and euler at 25. Writes docs/bench/<family>/runs.csv (one row per run) and summary.json.
Without --acceldiff the peers' own code is left out (the step-level baselines still run). With
--merge and --plan, only the planned cells are run again and replaced in the family's runs.csv.
"""
import argparse
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI)
import methods  # noqa: E402
import peers  # noqa: E402

from adaptive_diffusion.nodes.demo_models import DEMO_MODELS  # noqa: E402

PLAN = [("euler", 50), ("dpmpp_2m", 50), ("uni_pc", 50), ("euler", 25)]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", choices=list(DEMO_MODELS), required=True)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--plan", nargs="+", help="sampler:steps pairs (default: the issue's grid)")
    parser.add_argument("--acceldiff", type=pathlib.Path, help="a checkout of ComfyUI-AccelDiff (peers.py)")
    parser.add_argument("--quick", action="store_true", help="only ours, the paper's rule and the peers' own code")
    parser.add_argument("--full-plan", nargs="+", default=["euler:50"],
                        help="sampler:steps cells that also run every other baseline (the rest run --quick)")
    parser.add_argument("--scheduler", default=harness.SCHEDULER,
                        help="ComfyUI's scheduler for every run (write another one's results to its own --out)")
    parser.add_argument("--out", type=pathlib.Path, default=harness.REPO / "docs" / "bench")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the planned cells' rows in the family's runs.csv, keep the others")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.acceldiff:
        peers.load(args.acceldiff)
    bench = harness.Bench(DEMO_MODELS[args.family], args.scheduler)
    plan = [(p.split(":")[0], int(p.split(":")[1])) for p in args.plan] if args.plan else PLAN
    rows, started = [], time.time()
    for i, (sampler, steps) in enumerate(plan):
        for method, params, runner, sample_steps in methods.configurations(bench.model, sampler, steps,
                                                                           sweep=not args.quick and f"{sampler}:{steps}" in args.full_plan):
            for prompt, seed in harness.pairs(args.pairs):
                rows.append(bench.measure(method, params, runner, prompt, seed, sampler, steps, sample_steps))
        print(f"[{i + 1}/{len(plan)}] {args.family} {sampler} {steps} steps, {len(rows)} runs, "
              f"{time.time() - started:.0f}s", flush=True)
    if args.merge:
        cells = {(sampler, steps) for sampler, steps in plan}
        rows = [r for r in harness.load_runs(args.out / args.family / "runs.csv")
                if (r["sampler"], r["steps"]) not in cells] + rows
    harness.save_runs(rows, args.out / args.family)
    print(f"{len(rows)} runs in {time.time() - started:.0f}s; results in {args.out / args.family}")


if __name__ == "__main__":
    main()
