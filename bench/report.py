"""Turns bench/quality.py's results into docs/bench/summary.md and the per-prompt figure.

    .runtime/0.33.0/venv/bin/python bench/report.py
"""
import csv
import json
import pathlib
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import plot  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "bench"


def load_rows():
    with open(OUT / "quality.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for key in ("steps", "seed", "calls", "full_calls"):
            r[key] = int(r[key])
        for key in ("psnr", "ssim", "latent_rel_l2", "seconds", "full_seconds"):
            r[key] = float(r[key])
        r["skipped_steps"] = [int(s) for s in r["skipped_steps"].split()]
    return rows


def table(summary, sampler, steps):
    lines = ["| method | params | calls | fewer calls | PSNR dB | SSIM | latent rel. L2 |", "|---|---|---|---|---|---|---|"]
    for s in sorted((s for s in summary if s["sampler"] == sampler and s["steps"] == steps),
                    key=lambda s: (s["method"] != "ours", s["method"], -s["calls"])):
        lines.append(f"| {s['method']} | {s['params']} | {s['calls']:.1f}/{s['full_calls']:.0f} | "
                     f"{s['full_calls'] / s['calls']:.2f}x | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['latent_rel_l2']:.4f} |")
    return "\n".join(lines)


def oracle_agreement(rows, oracle):
    """For ours at euler 50 on the oracle's pairs: overlap of our skipped steps with the oracle's
    path at the same number of skips, and the PSNR gap to it."""
    out = []
    for prompt, path in oracle.items():
        for r in rows:
            if (r["method"], r["sampler"], r["steps"], r["prompt"], r["seed"]) != ("ours", "euler", 50, prompt, 0):
                continue
            k = len(r["skipped_steps"])
            if 0 < k <= len(path):
                best = path[k - 1]
                overlap = len(set(r["skipped_steps"]) & set(best["skipped"])) / k
                out.append({"prompt": prompt, "params": r["params"], "skips": k, "overlap": overlap,
                            "ours_psnr": r["psnr"], "oracle_psnr": best["psnr"]})
    return out


def main():
    rows = load_rows()
    summary = json.loads((OUT / "summary.json").read_text())
    oracle = json.loads((OUT / "oracle.json").read_text())
    parts = ["# Benchmark: demo model, quality vs network calls", "",
             "Made by `.runtime/0.33.0/venv/bin/python bench/quality.py && .runtime/0.33.0/venv/bin/python bench/report.py`; "
             "raw rows in `quality.csv`. Means over all prompt x seed pairs; quality against the full run of "
             "the same prompt and seed.", ""]
    for sampler, steps in sorted({(s["sampler"], s["steps"]) for s in summary}, key=lambda k: (-k[1], k[0])):
        parts += [f"## {sampler}, {steps} steps", "", table(summary, sampler, steps), ""]
    agreement = oracle_agreement(rows, oracle)
    if agreement:
        parts += ["## Agreement with the greedy oracle (euler, 50 steps, seed 0)", "",
                  "| prompt | ours | skips | overlap with oracle's skips | ours PSNR | oracle PSNR |", "|---|---|---|---|---|---|"]
        parts += [f"| {a['prompt']} | {a['params']} | {a['skips']} | {a['overlap']:.2f} | {a['ours_psnr']:.2f} | "
                  f"{a['oracle_psnr']:.2f} |" for a in agreement]
        parts += ["", f"Mean overlap {statistics.mean(a['overlap'] for a in agreement):.2f}.", ""]
    (OUT / "tables.md").write_text("\n".join(parts))

    per_prompt = defaultdict(list)
    params = "δ=0.01 C_max=4"  # the node defaults
    for r in rows:
        if (r["method"], r["params"], r["sampler"], r["steps"]) == ("ours", params, "euler", 50):
            per_prompt[r["prompt"]].append(r["steps"] - len(r["skipped_steps"]))
    prompts = sorted(per_prompt)
    series = [(f"seed {i}", [(j, per_prompt[p][i]) for j, p in enumerate(prompts) if i < len(per_prompt[p])])
              for i in range(max(map(len, per_prompt.values())))]
    plot.chart(series, f"computed steps of 50 per prompt (euler, ours {params}); x = prompt: "
               + ", ".join(f"{j} {p}" for j, p in enumerate(prompts)), "prompt", "computed steps",
               OUT / "computed_steps_by_prompt.png", size=(1100, 420), join=False)
    print((OUT / "tables.md").read_text())


if __name__ == "__main__":
    main()
