"""Where the default places its skips at few steps: the rule's variants on held-out pairs.

    .runtime/0.33.0/venv/bin/python bench/rule_variants.py --cells demo_wan21:beta:euler:25 ...
    .runtime/0.33.0/venv/bin/python bench/rule_variants.py --table

At 25 steps and 2x fewer calls ZEUS's paper rule (a real call every other step) beats the default
on Wan with ``beta`` (docs/benchmark.md). Each variant below changes one thing of the default and
sweeps its tolerance like the default; PSNR at equal calls on pairs 8-23 (--first 8), not the
pairs 0-7 that the probe which found these variants looked at:

- C_max 2 / C_max 3: shorter runs of skips (the widget ``max_skip_steps``; the default is 4);
- window total: a skip is judged on the predicted error of its whole run of skips, this step's
  included, instead of on its own step's alone, so a long run pays for every step in it.

Writes docs/bench/rule_variants/<family>_<scheduler>_<sampler>_<steps>.json per cell, and with
--table docs/bench/rule_variants/tables.md from every cell written.
"""
import argparse
import dataclasses
import json
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI)
import methods  # noqa: E402
from tables import SPEEDUPS, at_equal_calls, cell  # noqa: E402

from adaptive_diffusion.adaptive_core import ErrorControlConfig, ErrorControlledPolicy  # noqa: E402
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS  # noqa: E402

OUT = harness.REPO / "docs" / "bench" / "rule_variants"


class WindowTotalPolicy(ErrorControlledPolicy):
    """The error-controlled rule judged on the predicted error summed over the run of skips."""

    def __init__(self, config, reuse):
        super().__init__(config, reuse)
        self.spent = 0.0  # predicted error of this run's earlier skips

    def decide(self, step, values):
        own = None
        if "error" in values:
            size = (step - self.reuse.last_call) * abs(values["sigma"] - values["next_sigma"]) / values["sigma"]
            own = values["error"] * size
            if size > 0:  # the policy multiplies the error by this size: hand it the run's total
                values = {**values, "error": (self.spent + own) / size}
        decision = super().decide(step, values)
        self.spent = 0.0 if decision.compute else self.spent + own  # a skip always had an error
        return decision

    def overrule(self, decision):
        super().overrule(decision)
        self.spent = 0.0


@dataclasses.dataclass(frozen=True)
class WindowTotal(ErrorControlConfig):
    def build(self):
        reuse = super().build()[1]  # the default's reuse; only the policy differs
        return WindowTotalPolicy(self, reuse), reuse


VARIANTS = {"default (C_max 4)": lambda model, t: methods.ours(model, t),
            "C_max 2": lambda model, t: methods.ours(model, t, max_skip_steps=2),
            "C_max 3": lambda model, t: methods.ours(model, t, max_skip_steps=3),
            "window total": lambda model, t: methods.patched(model, WindowTotal(t))}


def run_cell(spec, pairs):
    family, scheduler, sampler, steps = spec.split(":")
    steps = int(steps)
    bench = harness.Bench(DEMO_MODELS[family], scheduler)
    tolerances = methods.TOLERANCES + (methods.WIDE_TOLERANCES if steps < 50 else [])
    sweeps = {}
    for name, make in VARIANTS.items():
        sweeps[name] = []
        for tolerance in tolerances:
            model = make(bench.model, tolerance)
            rows = [bench.measure(name, tolerance, model, p, s, sampler, steps) for p, s in pairs]
            sweeps[name].append({"tolerance": tolerance, "calls": statistics.mean(r["calls"] for r in rows),
                                 "psnr": statistics.mean(min(r["psnr"], 100.0) for r in rows)})
    return {"family": family, "scheduler": scheduler, "sampler": sampler, "steps": steps,
            "pairs": [f"{p}|{s}" for p, s in pairs], "sweeps": sweeps}


def table(results):
    lines = ["# The rule's variants at equal calls", "",
             "PSNR (dB) against the full run at equal network calls, per variant of the default (its tolerance "
             "swept as the default's), on pairs the variants were not chosen on; '-': the sweep does not reach that "
             "ratio (window total charges a run of skips more, so the same tolerances skip less). Made by "
             "bench/rule_variants.py.", ""]
    for r in results:
        lines += [f"## {r['family']}, {r['scheduler']}, {r['sampler']} {r['steps']} steps ({len(r['pairs'])} pairs)", "",
                  "| variant | " + " | ".join(f"{x}x" for x in SPEEDUPS) + " | fastest |",
                  "|---|" + "---|" * (len(SPEEDUPS) + 1)]
        for name, sweep in r["sweeps"].items():
            points = [(r["steps"] / s["calls"], s["psnr"]) for s in sweep]
            lines.append(f"| {name} | " + " | ".join(cell(at_equal_calls(points, x)) for x in SPEEDUPS)
                         + f" | {max(x for x, _ in points):.2f}x |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="*", default=[], help="family:scheduler:sampler:steps")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--first", type=int, default=8, help="the first pair used (0-7 chose the variants)")
    parser.add_argument("--table", action="store_true", help="write tables.md from every cell written")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    pairs = harness.pairs(args.first + args.pairs)[args.first:]
    for spec in args.cells:
        start = time.time()
        result = run_cell(spec, pairs)
        result["seconds"] = round(time.time() - start)
        (OUT / f"{spec.replace(':', '_')}.json").write_text(json.dumps(result, indent=1))
        print(table([result]), f"({result['seconds']} s)", flush=True)
    if args.table:
        results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
        (OUT / "tables.md").write_text(table(results))


if __name__ == "__main__":
    main()
