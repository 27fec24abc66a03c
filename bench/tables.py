"""The tables and plots of bench/quality.py's and bench/oracle.py's results, for every family run.

    .runtime/0.33.0/venv/bin/python bench/tables.py

Writes docs/bench/tables.md (PSNR at equal network calls per family, sampler and step count; the
issue's targets; the gap to the greedy oracle) and docs/bench/<family>/pareto_<sampler>_<steps>.png.
"""
import csv
import json
import math
import pathlib
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import plot  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "bench"
SPEEDUPS = [1.5, 2.0, 2.5, 3.0]
DEFAULT, PAPER, HOLD = "ours (default: error, auto)", "paper (third_order, hold)", "ours (error, hold)"
PERFECT = "the rule with true local errors"  # bench/perfect_local.py
PEERS = ("SADA", "ZEUS")
PLOTTED = (DEFAULT, PAPER, "ours (error, hold)", "ours (error, linear)",
           "SADA (AccelDiff code)", "ZEUS (AccelDiff code)", "SADA (step-level, from the paper)",
           "ZEUS (step-level, from the paper)", "LazyCache", "fewer steps")


def at_equal_calls(points, speedup):
    """PSNR of a method at this call ratio, linearly interpolated between its two nearest settings."""
    points = sorted(points)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= speedup <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (speedup - x0) / (x1 - x0)
    return math.nan


def cell(value):
    return "-" if math.isnan(value) else f"{value:.2f}"


def curves(summary, family, sampler, steps):
    out = defaultdict(list)
    for s in summary:
        if (s["family"], s["sampler"], s["steps"]) == (family, sampler, steps):
            out[s["method"]].append((s["full_calls"] / s["calls"], s["psnr"]))
    return out


def targets(curve):
    """Per speedup: the default minus the best SADA/ZEUS variant, and minus the paper's rule."""
    rows = []
    for x in SPEEDUPS:
        ours = at_equal_calls(curve[DEFAULT], x)
        peers = [at_equal_calls(p, x) for m, p in curve.items() if m.startswith(PEERS)]
        best_peer = max((p for p in peers if not math.isnan(p)), default=math.nan)
        rows.append((x, ours, best_peer, ours - best_peer, ours - at_equal_calls(curve[PAPER], x),
                     ours - at_equal_calls(curve.get(HOLD, []), x)))
    return rows


def oracle_gaps(family, rows):
    """Per speedup, the PSNR of the oracle (per reuse) minus the rule that uses that reuse, at equal
    calls, on each of the oracle's prompts (seed 0, euler 50): {reuse: {prompt: gap}}."""
    path = OUT / family / "oracle.json"
    if not path.exists():
        return []
    oracle = json.loads(path.read_text())
    mine = defaultdict(list)
    for r in rows:
        if (r["sampler"], int(r["steps"]), int(r["seed"])) == (oracle["sampler"], oracle["steps"], oracle["seed"]):
            mine[(r["method"], r["prompt"])].append((float(r["full_calls"]) / float(r["calls"]), min(float(r["psnr"]), 100)))
    perfect = OUT / family / "perfect_local.json"
    for prompt, points in (json.loads(perfect.read_text())["paths"] if perfect.exists() else {}).items():
        mine[(PERFECT, prompt)] = [(oracle["steps"] / p["calls"], min(p["psnr"], 100)) for p in points]
    return [(x, {rule: {prompt: at_equal_calls([(oracle["steps"] / p["calls"], p["psnr"]) for p in paths[reuse]], x)
                                - at_equal_calls(mine[(method, prompt)], x) for prompt, paths in oracle["paths"].items()}
                 for rule, reuse, method in (("hold", "hold", PAPER), ("auto", "auto", DEFAULT),
                                             (PERFECT, "auto", PERFECT))}) for x in SPEEDUPS]


def mean_gap(per_prompt):
    gaps = [g for g in per_prompt.values() if not math.isnan(g)]
    return statistics.mean(gaps) if gaps else math.nan


def sensitivity(family):
    """Per pair of bench/sensitivity.py: the median and largest amplification of one skip's local
    error into the final latent, and how well the local error ranks the final one (correlation of
    their logarithms over the steps)."""
    path = OUT / family / "sensitivity.json"
    if not path.exists():
        return []
    out = []
    for pair, steps in json.loads(path.read_text())["pairs"].items():
        amplification = [r["amplification"] for r in steps]
        local, final = ([math.log(r[k]) for r in steps] for k in ("local", "final"))
        out.append((pair, statistics.median(amplification), max(amplification),
                    statistics.correlation(local, final), min(r["psnr"] for r in steps)))
    return out


def oracle_transfer(family, rows):
    """Each transferred oracle path: PSNR on its own pair, mean over the other pairs, and the rule
    with the same reuse at equal calls on those pairs (bench/oracle.py --transfer)."""
    path = OUT / family / "oracle.json"
    oracle = json.loads(path.read_text()) if path.exists() else {}
    mine = defaultdict(list)
    for r in rows:
        if (r["sampler"], int(r["steps"])) == (oracle.get("sampler"), oracle.get("steps")):
            mine[(r["method"], f'{r["prompt"]}|{r["seed"]}')].append(
                (float(r["full_calls"]) / float(r["calls"]), min(float(r["psnr"]), 100)))
    out = []
    for t in oracle.get("transfer", []):
        own = f'{t["found_on"]}|{oracle["seed"]}'
        method = DEFAULT if t["reuse"] == "auto" else PAPER
        others = [pair for pair in t["psnr"] if pair != own]
        rule = [at_equal_calls(mine[(method, pair)], oracle["steps"] / t["calls"]) for pair in others]
        rule = [v for v in rule if not math.isnan(v)]
        out.append((t["found_on"], t["reuse"], t["calls"], min(t["psnr"][own], 100),
                    statistics.mean(min(t["psnr"][p], 100) for p in others), len(others), method,
                    statistics.mean(rule) if rule else math.nan))
    return out


def main():
    parts = ["# Benchmark tables", "",
             "PSNR (dB) against the full run of the same prompt and seed, at equal network calls (x = fewer calls "
             "than the full run), linearly interpolated along each method's sweep; '-' where a sweep does not "
             "reach that ratio. Made by bench/quality.py, bench/oracle.py and bench/tables.py.", ""]
    # one folder per family from bench/quality.py (early_exit/ is bench/early_exit.py's), then the runs
    # with another scheduler than simple (quality.py --scheduler S --out docs/bench/scheduler_S)
    found = [p.parent for p in sorted(OUT.glob("*/summary.json")) if p.parent.name != "early_exit"]
    for family_dir in found + [p.parent for p in sorted(OUT.glob("scheduler_*/*/summary.json"))]:
        family, scheduler = family_dir.name, family_dir.parent.name.removeprefix("scheduler_")
        summary = json.loads((family_dir / "summary.json").read_text())
        with open(family_dir / "runs.csv") as f:
            rows = list(csv.DictReader(f))
        pairs = max(s["pairs"] for s in summary)
        nested = family_dir.parent != OUT
        parts += [f"## {family}{f', {scheduler} scheduler' if nested else ''} ({pairs} prompt x seed pairs)", ""]
        for sampler, steps in sorted({(s["sampler"], s["steps"]) for s in summary}, key=lambda k: (-k[1], k[0])):
            curve = curves(summary, family, sampler, steps)
            parts += [f"### {sampler}, {steps} steps", "", "| method | " + " | ".join(f"{x}x" for x in SPEEDUPS)
                      + " | fastest setting |", "|---|" + "---|" * (len(SPEEDUPS) + 1)]
            for method, points in sorted(curve.items(), key=lambda kv: (kv[0] != DEFAULT, kv[0])):
                fastest = max(points)
                parts.append(f"| {method} | " + " | ".join(cell(at_equal_calls(points, x)) for x in SPEEDUPS)
                             + f" | {fastest[0]:.2f}x @ {fastest[1]:.2f} dB |")
            parts += ["", "| target | " + " | ".join(f"{x}x" for x in SPEEDUPS) + " |", "|---|" + "---|" * len(SPEEDUPS)]
            t = targets(curve)
            parts.append("| default minus best SADA/ZEUS (dB) | " + " | ".join(cell(r[3]) for r in t) + " |")
            parts.append("| default minus the paper's rule (dB) | " + " | ".join(cell(r[4]) for r in t) + " |")
            parts.append("| default minus error control with hold (dB) | " + " | ".join(cell(r[5]) for r in t) + " |")
            parts.append("")
            plot.chart([(m, curve[m]) for m in PLOTTED if m in curve],
                       f"{family}: {sampler}, {steps} steps ({pairs} pairs)", "fewer network calls (x)",
                       "PSNR vs full run (dB)", family_dir / f"pareto_{sampler}_{steps}.png")
        if nested:  # the oracle and the single-skip studies ran with the simple scheduler only
            continue
        gaps = oracle_gaps(family, rows)
        if gaps:
            means = [(mean_gap(g["hold"]), mean_gap(g["auto"])) for _, g in gaps]
            parts += ["### Gap to the greedy oracle (euler, 50 steps, seed 0)", "",
                      "| | " + " | ".join(f"{x}x" for x in SPEEDUPS) + " |", "|---|" + "---|" * len(SPEEDUPS),
                      "| oracle(hold) minus the paper's rule | " + " | ".join(cell(m[0]) for m in means) + " |",
                      "| oracle(auto) minus the default | " + " | ".join(cell(m[1]) for m in means) + " |",
                      "| share of the paper's gap closed | " + " | ".join(
                          cell(100 * (1 - m[1] / m[0])) + " %" if m[0] > 0 else "-" for m in means) + " |"]
            for reuse, name in (("hold", "oracle(hold) minus the paper's rule"), ("auto", "oracle(auto) minus the default"),
                                (PERFECT, f"oracle(auto) minus {PERFECT} (bench/perfect_local.py)")):
                parts += [f"| {name}, on {prompt} | " + " | ".join(cell(g[reuse][prompt]) for _, g in gaps) + " |"
                          for prompt in gaps[0][1][reuse]]
            parts.append("")
        moved = oracle_transfer(family, rows)
        if moved:
            parts += ["Each oracle path run on the other benchmark pairs (bench/oracle.py --transfer): what it owes "
                      "to fitting its own pair's full run.", "",
                      "| path found on | reuse | calls | PSNR on its pair | mean on the other pairs | "
                      "the rule with that reuse, same pairs, equal calls |", "|---|---|---|---|---|---|"]
            parts += [f"| {m[0]} | {m[1]} | {m[2]} | {m[3]:.2f} | {m[4]:.2f} ({m[5]} pairs) | {m[6]}: {cell(m[7])} |"
                      for m in moved]
            parts.append("")
        amplified = sensitivity(family)
        if amplified:
            parts += ["One skip at a time (bench/sensitivity.py, euler 50, served by `linear`): the final latent's "
                      "error over the error the skip put in where it was made, over the steps 2-49.", "",
                      "| pair | median amplification | largest | correlation of log local and log final error | "
                      "worst PSNR of one skip |", "|---|---|---|---|---|"]
            parts += [f"| {a[0]} | {a[1]:.2f} | {a[2]:.1f} | {a[3]:.2f} | {a[4]:.1f} |" for a in amplified]
            parts.append("")
    (OUT / "tables.md").write_text("\n".join(parts) + "\n")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
