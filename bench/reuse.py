"""What a skipped step reuses: hold vs linear vs lagrange, against the SADA and ZEUS baselines.

    .runtime/0.33.0/venv/bin/python bench/reuse.py            # about 25 minutes on one core
    .runtime/0.33.0/venv/bin/python bench/reuse.py --quick    # 4 pairs, euler 50 only
    .runtime/0.33.0/venv/bin/python bench/reuse.py --plan euler:50 dpmpp_2m:50 --thresholds 0.001 0.002 0.003 0.005 \
        --out docs/bench/reuse/low_thresholds              # the low-skip end, where SADA sits

Same harness as bench/quality.py (real ComfyUI samplers on the trained demo model, forward passes
counted, quality against the full run of the same prompt and seed). Writes docs/bench/reuse/:
runs.csv, summary.json, tables.md (PSNR at equal network calls, interpolated along each method's
curve) and pareto_<sampler>_<steps>.png.
"""
import argparse
import math
import pathlib
import sys
import time
from collections import defaultdict

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import methods  # noqa: E402  (imports ComfyUI)
import plot  # noqa: E402
import quality  # noqa: E402

from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.adaptive_core import REUSE_STRATEGIES  # noqa: E402

THRESHOLDS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
SPEEDUPS = [1.5, 2.0, 2.5, 3.0]


def configurations(model, thresholds):
    out = [(f"ours {reuse}", f"δ={t}", methods.ours(model, t, 4, reuse))
           for reuse in REUSE_STRATEGIES for t in thresholds]
    out += [("SADA (step-level)", f"τ={t} skips={k}", methods.sada(model, t, k))
            for t, k in ((0.5, 1), (1.0, 1), (1.5, 1), (3.0, 1), (1.0, 2), (3.0, 2))]
    out += [("ZEUS", f"interval={k}", methods.zeus(model, k)) for k in (2, 3, 4)]
    return out


def at_equal_calls(points, speedup):
    """PSNR of a method at this call ratio, linearly interpolated between its two nearest settings."""
    points = sorted(points)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= speedup <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (speedup - x0) / (x1 - x0)
    return math.nan


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=pathlib.Path, default=methods.REPO / "docs" / "bench" / "reuse")
    parser.add_argument("--plan", nargs="+", help="sampler:steps pairs (default: 4 samplers x 50/25/15 steps)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=THRESHOLDS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    bench = quality.Bench()
    prompts = demo_space.PROMPTS[:2] if args.quick else demo_space.PROMPTS
    pairs = [(p, s) for p in prompts for s in ((0, 1) if args.quick else (0, 1, 2, 3))]
    plan = [("euler", 50)] if args.quick else [
        (s, n) for n in (50, 25, 15) for s in ("euler", "ddim", "dpmpp_2m", "uni_pc")]
    if args.plan:
        plan = [(item.split(":")[0], int(item.split(":")[1])) for item in args.plan]

    rows, started = [], time.time()
    for i, (sampler, steps) in enumerate(plan):
        for method, params, patcher in configurations(bench.model, args.thresholds):
            for prompt, seed in pairs:
                rows.append(bench.measure(method, params, patcher, prompt, seed, sampler, steps))
        print(f"[{i + 1}/{len(plan)}] {sampler} {steps} steps, {len(rows)} runs, {time.time() - started:.0f}s",
              flush=True)

    summary = quality.save_runs(rows, args.out, "runs.csv")

    lines = [f"# Reuse strategies vs SADA / ZEUS on the demo model ({len(pairs)} prompt x seed pairs)", "",
             "PSNR (dB) vs the full run at equal network calls (fewer calls x), interpolated along each "
             "method's sweep; '-' where the method's sweep does not reach that ratio.", ""]
    for sampler, steps in plan:
        curves = defaultdict(list)
        for s in summary:
            if (s["sampler"], s["steps"]) == (sampler, steps):
                curves[s["method"]].append((s["full_calls"] / s["calls"], s["psnr"]))
        lines += [f"## {sampler}, {steps} steps", "",
                  "| method | " + " | ".join(f"{x}x" for x in SPEEDUPS) + " | fastest setting |",
                  "|---|" + "---|" * (len(SPEEDUPS) + 1)]
        for method, points in sorted(curves.items()):
            cells = [at_equal_calls(points, x) for x in SPEEDUPS]
            fastest = max(points)
            lines.append(f"| {method} | " + " | ".join("-" if math.isnan(c) else f"{c:.2f}" for c in cells)
                         + f" | {fastest[0]:.2f}x @ {fastest[1]:.2f} dB |")
        lines.append("")
        plot.chart(sorted(curves.items()), f"{sampler}, {steps} steps, demo model: reuse strategies",
                   "fewer network calls (x)", "PSNR vs full run (dB)", args.out / f"pareto_{sampler}_{steps}.png")
    lines.append(f"{len(rows)} runs in {time.time() - started:.0f} s; "
                 f"reproduce: .runtime/0.33.0/venv/bin/python bench/reuse.py {' '.join(sys.argv[1:])}")
    (args.out / "tables.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
