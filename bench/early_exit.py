"""AdaDiff early exit on the demo model: blocks evaluated, compute, wall time and quality, alone
and combined with AdaptiveDiffusion step skipping, and the heads' overhead when nothing exits.

    .runtime/0.33.0/venv/bin/python bench/early_exit.py             # about 30 minutes on one core
    .runtime/0.33.0/venv/bin/python bench/early_exit.py --overhead  # only the overhead, into the last tables

Sidecars: assets/early_exit/demo_wan21_uem_heads.safetensors (the data-free heads-only trainer,
scripts/train_early_exit.py --demo, the default) and demo_wan21_uem.safetensors (the heads trained
with the model under the paper's full objective, scripts/train_demo_model.py), both calibrated on
the model's own sampling trajectories. Quality against the full run of
the same prompt and seed (PSNR, SSIM of the decoded pictures) and against the data: Fréchet
distance of a small classifier's features (bench/classifier.py, its kept weights)
between 48 samples and 512 data pictures, and the share of samples it recognises as their prompt.
Compute counts transformer blocks (embeddings and the output head, a few % of a block here, are
left out) times network calls. Wall time: the median over repeats of each run's time over the
original model's in the same repeat (wall_ratios). Writes
docs/bench/early_exit/{runs.csv,summary.json,tables.md,tradeoff.png}.
"""
import csv
import json
import math
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI and this extension)
import classifier  # noqa: E402
import methods  # noqa: E402
import metrics  # noqa: E402
import plot  # noqa: E402
from timing import median_interval, paired_ratios, wall_ratios  # noqa: E402

from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.early_exit import (RECOMMENDED_BY_SIDECAR, AdaptiveDiffusionEarlyExit,  # noqa: E402
                                                  exit_holder_of, patch_early_exit, same_every_step, thresholds)
from adaptive_diffusion.nodes.sidecar import BUNDLED, load_sidecar  # noqa: E402

OUT = harness.REPO / "docs" / "bench" / "early_exit"
SAMPLER, STEPS = "euler", 50
JOINT, HEADS = "demo_wan21_uem.safetensors", "demo_wan21_uem_heads.safetensors"
THRESHOLDS = [0.995, 0.99, 0.985, 0.98, 0.97, 0.95, 0.9]
TOLERANCES = [0.003, 0.005, 0.008]
PAIRS = [(p, s) for p in demo_space.PROMPTS for s in range(6)]


def early_exit(model, sidecar, threshold, decide="per_block"):
    return AdaptiveDiffusionEarlyExit.execute(model, sidecar, threshold, decide).result[0]


# the arms of the overhead measurement: name, and decide (None: no head computed, see never_exiting)
OVERHEAD_ARMS = (("patches only", None), ("per_block", "per_block"), ("per_call", "per_call"))
# (steps, repeats): runs as long as the others here, and short runs, paired closer in time (this
# machine's speed drifts by ±10 % between runs), which also count the per-run set-up 10x as often
OVERHEAD_RUNS = {"euler 50 steps": (STEPS, 101), "euler 5 steps": (5, 401)}


def never_exiting(model, heads, decide, metadata=None):
    """Every head computed after every block, never certain enough: the heads' cost alone;
    ``decide`` None: the block patches with no head to compute (no block can reach the threshold).
    The heads must stay below certainty 1 (the bundled ones, or zero heads at 0.5). With a
    calibrated sidecar's ``metadata``: only the blocks its recommended threshold judges at each
    step (the others it rules out), still never certain enough: what a run at the default pays
    when nothing exits."""
    if metadata is None:
        needed = same_every_step([math.inf if decide is None else 1.0] * heads.blocks)
    else:
        calibrated = thresholds(metadata, heads.blocks, RECOMMENDED_BY_SIDECAR)[1]
        needed = lambda schedule: [[2.0 if math.isfinite(n) else n for n in row] for row in calibrated(schedule)]
    return patch_early_exit(model, heads, needed, 1.0, decide or "per_block")


def overhead(bench):
    """Per run length and arm, wall time when nothing exits over the original model's, minus one:
    the median of the paired ratios and a distribution-free 95 % interval for it."""
    heads, _, metadata = load_sidecar(BUNDLED / HEADS)
    arms = {name: never_exiting(bench.model, heads, decide) for name, decide in OVERHEAD_ARMS}
    recommended = thresholds(metadata, heads.blocks, RECOMMENDED_BY_SIDECAR)[0]
    arms.update({f"{decide} at q {recommended:g}": never_exiting(bench.model, heads, decide, metadata)
                 for decide in ("per_block", "per_call")})
    out = {}
    for run_name, (steps, repeats) in OVERHEAD_RUNS.items():
        run = sample_one(bench, steps)
        _, ratios = paired_ratios(lambda: run(bench.model), {name: (lambda p=p: run(p)) for name, p in arms.items()},
                                  repeats)
        out[run_name] = {name: [value - 1 for value in median_interval(values)] for name, values in ratios.items()}
    return out


def configurations(model):
    out = [("original", "", model)]
    out += [("exit (data-free heads, per block)", f"q={t}", early_exit(model, HEADS, t)) for t in THRESHOLDS]
    out += [("exit (data-free heads, per call)", f"q={t}", early_exit(model, HEADS, t, "per_call")) for t in THRESHOLDS[1:5]]
    out += [("exit (joint heads, per block)", f"q={t}", early_exit(model, JOINT, t)) for t in THRESHOLDS[1:5]]
    out += [("step skipping (default)", f"tol={t}", methods.ours(model, t)) for t in TOLERANCES]
    out += [("exit + step skipping", f"q={q} tol={t}", methods.ours(early_exit(model, HEADS, q), t))
            for q in (0.99, 0.985, 0.98) for t in TOLERANCES]
    return out


def sample_one(bench, steps=STEPS):
    return lambda patcher: bench.sample(patcher, demo_space.PROMPTS[0], 0, SAMPLER, steps)


def exit_blocks(patcher):
    """The last run's blocks evaluated per block of a full run (1 without early exit)."""
    holder = exit_holder_of(patcher)
    return holder.last_report.block_fraction if holder and holder.last_report else 1.0


def evaluate(bench, configs, pairs, judge, started, blocks_of=exit_blocks):
    """Every configuration on every pair: (one row per run, one summary row per configuration).
    The first configuration must be the original model: the others are compared with its runs.
    ``blocks_of(patcher)``: the fraction of blocks its last run evaluated."""
    recogniser, data_features = judge
    outputs, rows, summary, full_calls = {}, [], [], {}
    for method, params, patcher in configs:
        pictures, labels = [], []
        for prompt, seed in pairs:
            latent, calls, seconds, skip_report = bench.sample(patcher, prompt, seed, SAMPLER, STEPS)
            full_calls.setdefault((prompt, seed), calls)
            picture = bench.picture(latent)
            outputs[(method, params, prompt, seed)] = picture
            reference = outputs.get(("original", "", prompt, seed), picture)
            blocks = blocks_of(patcher)
            rows.append({"method": method, "params": params, "prompt": prompt, "seed": seed,
                         "calls": calls, "block_fraction": blocks,
                         "compute": calls * blocks / full_calls[(prompt, seed)],
                         "psnr": min(metrics.psnr(reference, picture), 100.0), "ssim": metrics.ssim(reference, picture)})
            pictures.append(picture)
            labels.append(demo_space.PROMPTS.index(prompt))
        with torch.no_grad():
            batch = torch.cat(pictures)
            features = recogniser.features(batch).double()
            hits = (recogniser(batch).argmax(1) == torch.tensor(labels)).tolist()
        group = [r for r in rows if (r["method"], r["params"]) == (method, params)]
        for row, hit in zip(group, hits):
            row["recognised"] = hit
        recognised = statistics.mean(hits)
        summary_row = {"method": method, "params": params,
                       "block_fraction": statistics.mean(r["block_fraction"] for r in group),
                       "compute": statistics.mean(r["compute"] for r in group),
                       "psnr": statistics.mean(r["psnr"] for r in group),
                       "ssim": statistics.mean(r["ssim"] for r in group),
                       "fd_data": classifier.frechet_distance(features, data_features),
                       "recognised": recognised}
        summary.append(summary_row)
        print(f"{method} {params}: blocks {summary_row['block_fraction']:.3f} compute {summary_row['compute']:.3f} "
              f"PSNR {summary_row['psnr']:.2f} FD {summary_row['fd_data']:.3f} recognised {recognised:.4f} "
              f"({time.time() - started:.0f}s)", flush=True)
    return rows, summary


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if sys.argv[1:] == ["--overhead"]:  # only the overhead again, into the last run's tables
        results = json.loads((OUT / "summary.json").read_text())
        results["overhead_nothing_exits"] = overhead(harness.Bench(WAN_DEMO))
        write_tables(results, started)
        return
    recogniser, accuracy, data_features = classifier.train()
    print(f"classifier: {accuracy:.3f} accuracy on data pictures ({time.time() - started:.0f}s)", flush=True)
    bench = harness.Bench(WAN_DEMO)
    configs = configurations(bench.model)
    rows, summary = evaluate(bench, configs, PAIRS, (recogniser, data_features), started)
    for s, (_, _, patcher) in zip(summary, configs):
        run = sample_one(bench)
        s["wall_ratio"] = wall_ratios(lambda: run(bench.model), {"this": lambda: run(patcher)}, repeats=5)[1]["this"]
    with open(OUT / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_tables({"classifier_accuracy": accuracy, "rows": summary,
                  "overhead_nothing_exits": overhead(bench)}, started)


def write_tables(results, started):
    (OUT / "summary.json").write_text(json.dumps(results, indent=1))
    summary, accuracy = results["rows"], results["classifier_accuracy"]
    lines = [f"# AdaDiff early exit on the demo model ({len(PAIRS)} prompt x seed pairs, {SAMPLER} {STEPS} steps, cfg 3)",
             "", f"Classifier accuracy on data pictures: {accuracy:.3f}. FD: Fréchet distance of its features to 512 "
             "data pictures (lower is better). Compute: transformer blocks evaluated per block of a full run. "
             "PSNR/SSIM against the original model's run of the same prompt and seed. q: the calibrated threshold "
             "(exit when the output is expected within 1 - q of the full model's).", "",
             "| method | params | blocks evaluated | compute | wall time | PSNR dB | SSIM | FD to data | recognised |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['method']} | {s['params']} | {100 * s['block_fraction']:.1f}% | "
                     f"{s['compute']:.3f} ({1 / s['compute']:.2f}x less) | {s['wall_ratio']:.3f} | {s['psnr']:.2f} | "
                     f"{s['ssim']:.4f} | {s['fd_data']:.3f} | {100 * s['recognised']:.0f}% |")
    lines += ["", "Overhead when nothing exits (wall time over the original model's in the same repeat, order rotated, "
              "the median over repeats with its 95 % interval; patches only: the block patches with no head to "
              "compute; per_block / per_call: every head computed, no certainty enough; at q: only the blocks the "
              "sidecar's recommended threshold judges, no certainty enough):", ""]
    for run_name, arms in results["overhead_nothing_exits"].items():
        lines.append(f"- {run_name}, {OVERHEAD_RUNS[run_name][1]} repeats: " + ", ".join(
            f"{k} {100 * m:+.1f} % ({100 * lo:+.1f} to {100 * hi:+.1f})" for k, (m, lo, hi) in arms.items()))
    lines.append("")
    lines.append("Reproduce: .runtime/0.33.0/venv/bin/python bench/early_exit.py; only the overhead again: "
                 f"bench/early_exit.py --overhead (this run: {time.time() - started:.0f} s)")
    (OUT / "tables.md").write_text("\n".join(lines) + "\n")
    series = {}
    for s in summary:
        if s["params"]:
            series.setdefault(s["method"], []).append((1 / s["compute"], s["psnr"]))
    plot.chart(sorted(series.items()), "demo model, euler 50: quality vs compute", "less compute (x, blocks)",
               "PSNR vs reference (dB)", OUT / "tradeoff.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
