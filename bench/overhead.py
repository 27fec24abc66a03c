"""Cost of AdaptiveDiffusion itself, through the real ComfyUI runtime on the bundled demo model.

Per sampler, interleaved runs of three arms on the same seed: core KSampler (stock), AdaptiveDiffusionKSampler
with threshold 0 (the bookkeeping alone), and with skipping on. Reports medians, the ratios to
stock, and the estimator's own per-step cost on latents of realistic sizes.

    .runtime/0.33.0/venv/bin/python bench/overhead.py [--steps 50 --repeats 21 --samplers euler dpmpp_2m ...]
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import quality  # noqa: E402  (imports ComfyUI)

from adaptive_diffusion.adaptive_core import AdaptiveRun, SkipConfig  # noqa: E402
from adaptive_diffusion.nodes.ksampler import AdaptiveDiffusionKSampler  # noqa: E402

REPO = quality.REPO
PROMPT = "a circle"

LATENT_SIZES = {"demo model 16x1x8x8": (1, 16, 1, 8, 8), "SDXL 1024px 4x128x128": (1, 4, 128, 128),
                "Wan 480p 81 frames 16x21x60x104": (1, 16, 21, 60, 104)}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def estimator_cost_us(shape, steps=50, repeats=5):
    """Per-step time AdaptiveRun adds around a network call, with the call itself removed."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1).tolist()
    x = torch.randn(shape)
    denoised = torch.randn(shape)
    costs = []
    for _ in range(repeats):
        run = AdaptiveRun(SkipConfig(threshold=1e-9, max_skip_steps=4), sigmas)  # estimator on, never skips
        start = time.perf_counter()
        for i in range(steps):
            run(x + i, torch.tensor([sigmas[i]]), lambda: denoised)
        costs.append((time.perf_counter() - start) / steps * 1e6)
    return statistics.median(costs)


def node_run(bench, sampler, steps, threshold, reuse):
    """The AdaptiveDiffusion KSampler node as a workflow runs it; its report."""
    latent = {"samples": torch.zeros(1, 16, 1, 8, 8)}
    result = AdaptiveDiffusionKSampler.execute(bench.model, 1, steps, quality.CFG, sampler, quality.SCHEDULER,
                                               bench.positive[PROMPT], bench.negative, latent, 1.0,
                                               threshold, 4, 4, reuse).result
    return json.loads(result[2])


def interleaved(bench, sampler, args):
    """Stock, threshold 0 and skipping on (the default reuse and the paper's hold), run in turn
    `repeats` times; medians and ratios."""
    default = SkipConfig().reuse
    arms = {
        "stock": lambda: bench.sample(bench.model, PROMPT, 1, sampler, args.steps)[3],  # no report: None
        "adaptive_threshold_0": lambda: node_run(bench, sampler, args.steps, 0.0, default),
        "adaptive": lambda: node_run(bench, sampler, args.steps, args.threshold, default),
        "adaptive_hold": lambda: node_run(bench, sampler, args.steps, args.threshold, "hold"),
    }
    for arm in arms.values():  # warm-up
        arm()
    times = {name: [] for name in arms}
    reports = {}
    for _ in range(args.repeats):
        for name, arm in arms.items():
            seconds, report = timed(arm)
            times[name].append(seconds)
            reports[name] = report
    medians = {name: statistics.median(t) for name, t in times.items()}
    out = {"median_seconds": medians,
           "threshold_0_overhead": medians["adaptive_threshold_0"] / medians["stock"] - 1}
    for name, suffix in (("adaptive", ""), ("adaptive_hold", "_hold")):
        totals = reports[name]["totals"]
        out.update({f"network_calls{suffix}": f"{totals['network_calls']}/{totals['full_run_network_calls']}",
                    f"call_ratio{suffix}": totals["expected_speedup"],
                    f"wall_speedup{suffix}": medians["stock"] / medians[name],
                    f"wall_speedup_over_call_ratio{suffix}": medians["stock"] / medians[name] / totals["expected_speedup"]})
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threshold", type=float, default=0.01)
    parser.add_argument("--samplers", nargs="+", default=["euler", "dpmpp_2m", "heun", "uni_pc"])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "bench")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core each run: less scheduler noise on a shared 2-core machine
    bench = quality.Bench()
    result = {
        "machine": "2-core CPU (the project's development machine), torch threads = 1",
        "model": "demo model (Wan 2.1 architecture, dim 128, 6 layers), 16x1x8x8 latent, cfg 3",
        "steps": args.steps, "repeats": args.repeats, "threshold": args.threshold,
        "samplers": {sampler: interleaved(bench, sampler, args) for sampler in args.samplers},
        "estimator_us_per_step": {name: estimator_cost_us(shape) for name, shape in LATENT_SIZES.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
