"""Quality vs network calls on the trained demo model, for every method side by side.

    .runtime/0.33.0/venv/bin/python bench/quality.py            # about 30 minutes on 2 cores
    .runtime/0.33.0/venv/bin/python bench/quality.py --quick    # a smoke run: 2 pairs, euler only

Everything runs through the real ComfyUI runtime (its loader, samplers, schedulers, CFG and
EasyCache/LazyCache nodes) on assets/demo_wan21.safetensors. Quality is measured against the
full run of the same prompt and seed: PSNR and SSIM of the decoded pictures (exact decoding, see
demo/space.py) and the latent's relative L2 error. Network calls are counted as
real forward passes of the diffusion model. Writes docs/bench/: quality.csv (one row per run),
summary.md (tables), pareto_<sampler>.png, oracle.json, computed_steps_by_prompt.png.
"""
import argparse
import csv
import json
import pathlib
import statistics
import sys
import time
from collections import defaultdict

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import methods  # noqa: E402  (imports ComfyUI)
import metrics  # noqa: E402
import plot  # noqa: E402

import comfy.latent_formats  # noqa: E402
import comfy.sd  # noqa: E402
import nodes  # noqa: E402
import safetensors.torch  # noqa: E402

from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.patch import holder_of  # noqa: E402

REPO = methods.REPO
CFG = 3.0
SCHEDULER = "simple"
DEFAULT_THRESHOLD = 0.01


class Bench:
    def __init__(self):
        self.model = comfy.sd.load_diffusion_model(str(REPO / "assets" / "demo_wan21.safetensors"))
        table = safetensors.torch.load_file(str(REPO / "assets" / "demo_prompts.safetensors"))
        self.positive = {p: [[table[p], {}]] for p in demo_space.PROMPTS}
        self.negative = [[table["(empty)"], {}]]
        self.forwards = 0
        # the patch embedding runs once per real forward pass; the model's forward() itself is entered
        # even when a DIFFUSION_MODEL wrapper (EasyCache) then skips the computation
        self.model.model.diffusion_model.patch_embedding.register_forward_pre_hook(self._count)
        self.latent_format = comfy.latent_formats.Wan21()
        self.full = {}

    def _count(self, module, args):
        self.forwards += 1

    def sample(self, patcher, prompt, seed, sampler, steps):
        before, start = self.forwards, time.perf_counter()
        latent = nodes.common_ksampler(patcher, seed, steps, CFG, sampler, SCHEDULER, self.positive[prompt],
                                       self.negative, {"samples": torch.zeros(1, 16, 1, 8, 8)},
                                       disable_noise=False)[0]["samples"]
        seconds = time.perf_counter() - start
        report = holder_of(patcher).last_report if holder_of(patcher) else None
        return latent, self.forwards - before, seconds, report

    def picture(self, latent):
        return demo_space.latent_to_picture(self.latent_format.process_in(latent)).clamp(0, 1)

    def full_run(self, prompt, seed, sampler, steps):
        key = (prompt, seed, sampler, steps)
        if key not in self.full:
            self.full[key] = self.sample(self.model, prompt, seed, sampler, steps)
        return self.full[key]

    def measure(self, method, params, patcher, prompt, seed, sampler, steps, sample_steps=None):
        ref_latent, ref_calls, ref_seconds, _ = self.full_run(prompt, seed, sampler, steps)
        latent, calls, seconds, report = self.sample(patcher, prompt, seed, sampler, sample_steps or steps)
        return {
            "method": method, "params": params, "sampler": sampler, "steps": steps, "prompt": prompt,
            "seed": seed, "calls": calls, "full_calls": ref_calls,
            "psnr": metrics.psnr(self.picture(ref_latent), self.picture(latent)),
            "ssim": metrics.ssim(self.picture(ref_latent), self.picture(latent)),
            "latent_rel_l2": metrics.latent_rel_l2(ref_latent, latent),
            "seconds": seconds, "full_seconds": ref_seconds,
            "skipped_steps": [] if report is None else [r.step for r in report.records if not r.computed],
        }


def save_runs(rows, out, csv_name):
    """The runs as a CSV and their means per (sampler, steps, method, params) as summary.json."""
    with open(out / csv_name, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "skipped_steps": " ".join(map(str, row["skipped_steps"]))})
    groups = defaultdict(list)
    for row in rows:
        groups[(row["sampler"], row["steps"], row["method"], row["params"])].append(row)
    summary = [{"sampler": sampler, "steps": steps, "method": method, "params": params,
                "calls": statistics.mean(r["calls"] for r in group),
                "full_calls": statistics.mean(r["full_calls"] for r in group),
                "psnr": statistics.mean(min(r["psnr"], 100.0) for r in group),
                "ssim": statistics.mean(r["ssim"] for r in group),
                "latent_rel_l2": statistics.mean(r["latent_rel_l2"] for r in group)}
               for (sampler, steps, method, params), group in groups.items()]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def configurations(model, steps, sweep):
    """(method, params, patched model, steps to sample) for one sampler and step count."""
    thresholds = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2] if sweep else [DEFAULT_THRESHOLD, 0.05]
    caches = [0.05, 0.1, 0.2, 0.4] if sweep else [0.2]
    out = [("ours", f"δ={t} C_max=4", methods.ours(model, t, 4, "hold"), steps) for t in thresholds]
    if sweep:
        out += [("ours", f"δ=0.05 C_max={c}", methods.ours(model, 0.05, c, "hold"), steps) for c in (2, 8)]
        out += [("stale x0 (AccelDiff)", f"δ={t}", methods.stale_x0(model, t), steps) for t in (0.01, 0.05)]
        out += [("fixed interval", f"k={k}", methods.fixed_interval(model, k), steps) for k in (2, 3)]
    out += [("EasyCache", f"thr={t}", methods.easycache(model, t), steps) for t in caches]
    out += [("LazyCache", f"thr={t}", methods.lazycache(model, t), steps) for t in caches]
    fewer = sorted({max(2, round(steps * f)) for f in ((0.6, 0.4) if sweep else (0.5,))})
    out += [("fewer steps", f"steps={n}", model, n) for n in fewer if n < steps]
    return out


def greedy_oracle(bench, prompt, seed, steps, max_skips):
    """For k = 1..max_skips, add the skip that least increases the final-latent error vs full."""
    ref_latent = bench.full_run(prompt, seed, "euler", steps)[0]
    skipped, path = [], []
    for _ in range(max_skips):
        best = None
        for candidate in range(1, steps):
            if candidate in skipped:
                continue
            latent = bench.sample(methods.forced(bench.model, skipped + [candidate]), prompt, seed, "euler", steps)[0]
            error = metrics.latent_rel_l2(ref_latent, latent)
            if best is None or error < best[0]:
                best = (error, candidate, latent)
        skipped.append(best[1])
        path.append({"skips": len(skipped), "skipped": sorted(skipped), "latent_rel_l2": best[0],
                     "psnr": metrics.psnr(bench.picture(ref_latent), bench.picture(best[2]))})
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "bench")
    args = parser.parse_args()
    torch.set_num_threads(1)  # leaves a core for other work; as fast as two on this tiny model
    args.out.mkdir(parents=True, exist_ok=True)
    bench = Bench()
    seeds = [0, 1] if args.quick else [0, 1, 2, 3]
    prompts = demo_space.PROMPTS[:1] if args.quick else demo_space.PROMPTS
    pairs = [(p, s) for p in prompts for s in seeds]
    plan = [("euler", 50, True)] if args.quick else (
        [(s, 50, True) for s in ("euler", "ddim", "dpmpp_2m")]
        + [(s, 50, False) for s in ("heun", "euler_ancestral", "uni_pc")]
        + [(s, n, False) for s in ("euler", "ddim", "dpmpp_2m", "heun", "euler_ancestral", "uni_pc")
           for n in (25, 15, 10)])

    rows, started = [], time.time()
    for i, (sampler, steps, sweep) in enumerate(plan):
        for method, params, patcher, sample_steps in configurations(bench.model, steps, sweep):
            for prompt, seed in pairs:
                rows.append(bench.measure(method, params, patcher, prompt, seed, sampler, steps, sample_steps))
        print(f"[{i + 1}/{len(plan)}] {sampler} {steps} steps done, {len(rows)} runs, {time.time() - started:.0f}s",
              flush=True)

    summary = save_runs(rows, args.out, "quality.csv")

    for sampler in sorted({s["sampler"] for s in summary if s["steps"] == 50}):
        by_method = defaultdict(list)
        for s in summary:
            if s["sampler"] == sampler and s["steps"] == 50:
                by_method[s["method"]].append((s["full_calls"] / s["calls"], s["psnr"]))
        plot.chart(sorted(by_method.items()), f"{sampler}, 50 steps, demo model: quality vs speed "
                   f"({len(pairs)} prompt x seed pairs)", "fewer network calls (x)", "PSNR vs full run (dB)",
                   args.out / f"pareto_{sampler}.png")

    oracle = {}
    if not args.quick:
        for prompt in demo_space.PROMPTS[::2]:
            oracle[prompt] = greedy_oracle(bench, prompt, 0, 50, 20)
            print(f"oracle {prompt} done, {time.time() - started:.0f}s", flush=True)
    else:
        oracle[prompts[0]] = greedy_oracle(bench, prompts[0], 0, 12, 3)
    (args.out / "oracle.json").write_text(json.dumps(oracle, indent=1))
    print(f"{len(rows)} runs in {time.time() - started:.0f}s; results in {args.out}")


if __name__ == "__main__":
    main()
