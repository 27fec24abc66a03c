"""Cost of AdaptiveDiffusion itself, through the real ComfyUI runtime on the bundled Wan demo model.

Per sampler, four arms on the same seed, run in a rotated order per repeat: core KSampler
(stock), the AdaptiveDiffusion KSampler with threshold 0 (the bookkeeping alone), with its
defaults (error control, auto reuse) and with the paper's rule (third_order, hold, δ 0.01).
Reports each arm's wall time over stock's in the same repeat (the median and its 95 % interval,
bench/timing.py), and each policy's own per-step cost on latents of realistic sizes.

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
import harness  # noqa: E402  (imports ComfyUI)
from timing import median_interval, paired_ratios  # noqa: E402

from adaptive_diffusion.adaptive_core import AdaptiveRun, ErrorControlConfig, SkipConfig  # noqa: E402
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.ksampler import AdaptiveDiffusionKSampler  # noqa: E402
from adaptive_diffusion.nodes.widgets import CRITERIA, DEFAULTS  # noqa: E402

REPO = harness.REPO
PROMPT = "a circle"

LATENT_SIZES = {"demo model 16x1x8x8": (1, 16, 1, 8, 8), "SDXL 1024px 4x128x128": (1, 4, 128, 128),
                "Wan 480p 81 frames 16x21x60x104": (1, 16, 21, 60, 104)}


def policy_cost_us(config, shape, steps=50, repeats=5):
    """Per-step time AdaptiveRun adds around a network call (the call itself removed), with a
    config that measures and judges every step but never skips."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1).tolist()
    x = torch.randn(shape)
    denoised = torch.randn(shape)
    costs = []
    for _ in range(repeats):
        run = AdaptiveRun(config, sigmas)
        start = time.perf_counter()
        for i in range(steps):
            run(x + i, torch.tensor([sigmas[i]]), lambda: denoised)
        costs.append((time.perf_counter() - start) / steps * 1e6)
    return statistics.median(costs)


COSTED = {"error control, auto": ErrorControlConfig(tolerance=1e-12),
          "third_order, hold": SkipConfig(threshold=1e-9, reuse="hold")}


def node_run(bench, sampler, steps, config):
    """The AdaptiveDiffusion KSampler node as a workflow runs it; its report."""
    latent = {"samples": torch.zeros(WAN_DEMO.empty_latent)}
    result = AdaptiveDiffusionKSampler.execute(bench.model, 1, steps, harness.CFG, sampler, harness.SCHEDULER,
                                               bench.positive[PROMPT], bench.negative, latent, 1.0, *config).result
    return json.loads(result[2])


def interleaved(bench, sampler, args):
    """Threshold 0, the defaults and the paper's rule, each timed against stock in the same repeat
    (timing.paired_ratios): per arm the median ratio with its 95 % interval, the calls, and the
    wall speedup over the call ratio."""
    d = DEFAULTS
    settings = {"adaptive_threshold_0": (0.0, d.max_skip_steps, d.warmup_steps, d.reuse, CRITERIA[0]),
                "adaptive": (d.tolerance, d.max_skip_steps, d.warmup_steps, d.reuse, CRITERIA[0]),
                "paper": (0.01, 4, 4, "hold", "third_order")}
    reports = {name: node_run(bench, sampler, args.steps, config) for name, config in settings.items()}
    seconds, ratios = paired_ratios(lambda: bench.sample(bench.model, PROMPT, 1, sampler, args.steps),
                                    {name: (lambda c=c: node_run(bench, sampler, args.steps, c))
                                     for name, c in settings.items()}, args.repeats)
    out = {"stock_median_seconds": statistics.median(seconds)}
    for name, values in ratios.items():
        median, low, high = median_interval(values)
        totals = reports[name]["totals"]
        out[name] = {"wall_over_stock": median, "interval_95": [low, high],
                     "network_calls": f"{totals['network_calls']}/{totals['full_run_network_calls']}",
                     "call_ratio": totals["expected_speedup"], "wall_speedup": 1 / median,
                     "wall_speedup_over_call_ratio": 1 / median / totals["expected_speedup"]}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--samplers", nargs="+", default=["euler", "dpmpp_2m", "heun", "uni_pc"])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "bench")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core each run: less scheduler noise on a shared 2-core machine
    bench = harness.Bench(WAN_DEMO)
    result = {
        "machine": "2-core CPU (the project's development machine), torch threads = 1",
        "model": "demo_wan21 (Wan 2.1 architecture, dim 128, 12 blocks), 16x1x8x8 latent, cfg 3",
        "steps": args.steps, "repeats": args.repeats,
        "samplers": {sampler: interleaved(bench, sampler, args) for sampler in args.samplers},
        "policy_us_per_step": {policy: {name: policy_cost_us(config, shape) for name, shape in LATENT_SIZES.items()}
                               for policy, config in COSTED.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
