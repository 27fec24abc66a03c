"""The error-controlled rule given every step's true local error: how much better placed skips
could be if the rule's running estimate were exact.

    .runtime/0.33.0/venv/bin/python bench/perfect_local.py --family demo_wan21
    .runtime/0.33.0/venv/bin/python bench/perfect_local.py --family demo_sd15_eps

On the greedy oracle's pairs (euler 50, seed 0), step by step as the rule goes: at step t the run
so far (its skips served as planned) gives the network's D_t at the latent those skips led to, and
every predictor of ``auto`` its D̂_t from the real calls before t; t is skipped, served by the best
of them, when ρ_t·||D̂_t - D_t|| / ||D_t|| is within the tolerance, under the default's C_max and
warm-up. No rule can know D_t without calling the network; this one knows it and uses it only to
decide, as the greedy oracle knows the full run. Writes docs/bench/<family>/perfect_local.json.
"""
import argparse
import dataclasses
import json
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI)
import metrics  # noqa: E402
from baselines import Baseline, ForcedPolicy, History  # noqa: E402

from adaptive_diffusion.adaptive_core import PREDICTORS, REUSE_STRATEGIES, broadcast_sigma  # noqa: E402
from adaptive_diffusion.adaptive_core.reuse import guarded_extrapolation  # noqa: E402
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS  # noqa: E402
from adaptive_diffusion.nodes.patch import patch_model  # noqa: E402
from adaptive_diffusion.nodes.widgets import DEFAULTS  # noqa: E402

SAMPLER, STEPS, SEED = "euler", 50, 0
TOLERANCES = {"demo_wan21": [0.0001, 0.0003, 0.0007, 0.0015, 0.003, 0.005, 0.008],
              "demo_sd15_eps": [0.0007, 0.0015, 0.003, 0.005, 0.008, 0.015]}


def predicted(name, times, derivatives, denoised, x, sigma, at):
    """D̂ at ``at`` by the named predictor from the real calls at ``times`` (oldest first)."""
    predictor = PREDICTORS[name]
    values = derivatives if predictor.space == "eps" else denoised
    value, _ = guarded_extrapolation([times[-1 - i] for i in predictor.points],
                                     [values[-1 - i] for i in predictor.points], at)
    return x - broadcast_sigma(sigma, x) * value if predictor.space == "eps" else value


class PlannedReuse(History):
    """Serves each skipped step with the predictor planned for it."""

    def __init__(self, plan):
        super().__init__()
        self.plan = dict(plan)

    def rebuild(self, x, sigma, at, values):
        return predicted(self.plan[round(at)], self.times, self.derivatives, self.denoised, x, sigma, at)

    def serving(self, values):
        return "planned"


@dataclasses.dataclass(frozen=True)
class Planned(Baseline):
    plan: tuple  # (step, predictor) per skipped step

    def build(self):
        return ForcedPolicy({step for step, _ in self.plan}), PlannedReuse(self.plan)


def rule(bench, prompt, seed, tolerance):
    """The rule's path with true local errors: (plan, final latent)."""
    plan, run_length = [], 0
    latent, calls = bench.calls(bench.model, prompt, seed, SAMPLER, STEPS)
    sigmas = [sigma for _, sigma, _ in calls] + [0.0]
    for t in range(max(DEFAULTS.warmup_steps, 2), STEPS):
        skipped = dict(plan)
        real = [step for step in range(STEPS) if step not in skipped]
        by_step = dict(zip(real, calls))
        before = [step for step in real if step < t][-3:]
        x, sigma, denoised = by_step[t]
        rho = abs(sigma - sigmas[t + 1]) / sigma
        derivatives = [(by_step[s][0] - by_step[s][2]) / by_step[s][1] for s in before]
        errors = {name: rho * float((predicted(name, before, derivatives, [by_step[s][2] for s in before],
                                               x, torch.tensor([sigma]), t) - denoised).norm() / denoised.norm())
                  for name in REUSE_STRATEGIES["auto"] if PREDICTORS[name].needs <= len(before)}
        best = min(errors, key=errors.get)
        if run_length < DEFAULTS.max_skip_steps and errors[best] <= tolerance:
            plan.append((t, best))
            run_length += 1
            model = patch_model(bench.model, Planned(tuple(plan)))[0]
            latent, calls = bench.calls(model, prompt, seed, SAMPLER, STEPS)
        else:
            run_length = 0
    return plan, latent


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", choices=list(DEMO_MODELS), required=True)
    parser.add_argument("--prompts", type=int, default=2, help="the oracle's first N prompts, seed 0")
    parser.add_argument("--out", type=pathlib.Path, default=harness.REPO / "docs" / "bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench = harness.Bench(DEMO_MODELS[args.family])
    started, result = time.time(), {"sampler": SAMPLER, "steps": STEPS, "seed": SEED, "paths": {}}
    for prompt, seed in harness.pairs(args.prompts):
        reference = bench.full_run(prompt, seed, SAMPLER, STEPS)[0]
        for tolerance in TOLERANCES[args.family]:
            plan, latent = rule(bench, prompt, seed, tolerance)
            psnr = metrics.psnr(bench.picture(reference), bench.picture(latent))
            result["paths"].setdefault(prompt, []).append(
                {"tolerance": tolerance, "calls": STEPS - len(plan), "psnr": psnr, "plan": plan})
            print(f"{prompt} tol {tolerance}: {STEPS - len(plan)} calls, {psnr:.2f} dB ({time.time() - started:.0f}s)",
                  flush=True)
    out = args.out / args.family / "perfect_local.json"
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
