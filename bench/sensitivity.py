"""How much one skipped step costs at the end of the run, against the error it puts in where it
is skipped: what an error-controlled rule (which sees only the latter) can know of the former.

    .runtime/0.33.0/venv/bin/python bench/sensitivity.py --family demo_wan21
    .runtime/0.33.0/venv/bin/python bench/sensitivity.py --family demo_sd15_eps

For each pair (euler, 50 steps) and each step t after the first two, the full run's own calls
give the local error of serving step t by the line through the two calls before it (`linear`,
the default's first predictor): e_t = ρ_t·||D̂_t - D_t|| / ||D_t||, ρ_t = |σ_t - σ_t+1| / σ_t,
the quantity the error-controlled rule estimates and holds to its tolerance. The run is then
repeated with step t alone skipped and served that way; its final latent's relative error
against the full run, over e_t, is that step's amplification. Where the amplification depends on
the step alone (the same on every pair), a rule could charge for it; where it differs from pair
to pair, only a rule that knows the full run (the greedy oracle) can avoid the costly steps.
Writes docs/bench/<family>/sensitivity.json and sensitivity.png.

    .runtime/0.33.0/venv/bin/python bench/sensitivity.py --family demo_wan21 --charge

then asks what knowing the amplification would be worth: the default's tolerance sweep against the
same rule charging each step its amplification (the median over the pairs above, so a profile no
run could measure of itself: an upper bound for any estimate of it), on 16 other pairs (seeds 1
and 2), PSNR at equal calls. Writes docs/bench/<family>/sensitivity_charge.json.
"""
import argparse
import dataclasses
import json
import math
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI)
import methods  # noqa: E402
import metrics  # noqa: E402
import perfect_local  # noqa: E402
import plot  # noqa: E402
from tables import SPEEDUPS, at_equal_calls  # noqa: E402

from adaptive_diffusion.adaptive_core import ErrorControlConfig, ErrorControlledPolicy  # noqa: E402
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS  # noqa: E402
from adaptive_diffusion.nodes.patch import patch_model  # noqa: E402

SAMPLER, STEPS, FIRST = "euler", 50, 2


def local_errors(bench, prompt, seed):
    """Per step t >= FIRST of the full run: ρ_t·||D̂_t - D_t|| / ||D_t|| for D̂ as `linear` serves it
    from the two calls before it (the sampler's CFG'd D, caught after CFG)."""
    calls = bench.calls(bench.model, prompt, seed, SAMPLER, STEPS)[1]
    sigmas = [s for _, s, _ in calls] + [0.0]
    d = [(x - denoised) / s for x, s, denoised in calls]
    errors = {}
    for t in range(FIRST, STEPS):
        x, sigma, denoised = calls[t]
        predicted = perfect_local.predicted("linear", [t - 2, t - 1], d[t - 2:t], None, x, torch.tensor([sigma]), t)
        rho = abs(sigma - sigmas[t + 1]) / sigma
        errors[t] = rho * float((predicted - denoised).norm() / denoised.norm())
    return errors


def measure(bench, prompt, seed):
    reference = bench.full_run(prompt, seed, SAMPLER, STEPS)[0]
    rows = []
    for t, local in local_errors(bench, prompt, seed).items():
        latent = bench.sample(methods.forced(bench.model, [t], "linear"), prompt, seed, SAMPLER, STEPS)[0]
        final = metrics.latent_rel_l2(reference, latent)
        rows.append({"step": t, "local": local, "final": final, "amplification": final / local,
                     "psnr": metrics.psnr(bench.picture(reference), bench.picture(latent))})
    return rows


def quartiles(values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return q[0], statistics.median(values), q[2]


def summarise(per_pair):
    """Per step, the amplification's quartiles over the pairs; and how far apart the pairs are:
    the median over steps of the ratio of the largest to the smallest pair's amplification."""
    steps = sorted({r["step"] for rows in per_pair.values() for r in rows})
    by_step = {t: [r["amplification"] for rows in per_pair.values() for r in rows if r["step"] == t] for t in steps}
    return {"per_step": {t: dict(zip(("q1", "median", "q3"), quartiles(v))) for t, v in by_step.items()},
            "pair_spread": statistics.median(max(v) / min(v) for v in by_step.values())}


class ChargedPolicy(ErrorControlledPolicy):
    """The error-controlled rule with each step's expected error multiplied by its amplification."""

    def __init__(self, config, reuse, amplification):
        super().__init__(config, reuse)
        self.amplification = amplification

    def decide(self, step, values):
        if "error" in values:
            values = {**values, "error": values["error"] * self.amplification.get(step, 1.0)}
        return super().decide(step, values)


@dataclasses.dataclass(frozen=True)
class Charged(ErrorControlConfig):
    amplification: tuple = ()  # (step, amplification) pairs

    def build(self):
        reuse = super().build()[1]  # the default's reuse; only the policy differs
        return ChargedPolicy(self, reuse, dict(self.amplification)), reuse


def charge(bench, per_step, pairs):
    """Per arm (the default, the default charged with the amplification profile): its sweep's
    (calls, PSNR) means, and PSNR at equal calls."""
    profile = tuple((int(t), q["median"]) for t, q in per_step.items())
    arms = {"default": lambda t: methods.ours(bench.model, t),
            "charged with the amplification": lambda t: patch_model(bench.model, Charged(t, amplification=profile))[0]}
    sweeps = {}
    for arm, make in arms.items():
        sweeps[arm] = []
        for tolerance in methods.TOLERANCES:
            model = make(tolerance)
            rows = [bench.measure(arm, "", model, p, s, SAMPLER, STEPS) for p, s in pairs]
            sweeps[arm].append((tolerance, statistics.mean(r["calls"] for r in rows),
                                statistics.mean(min(r["psnr"], 100.0) for r in rows)))
    return {"pairs": [f"{p}|{s}" for p, s in pairs], "sweeps": sweeps,
            "at_equal_calls": {x: {arm: at_equal_calls([(STEPS / c, q) for _, c, q in sweep], x)
                                   for arm, sweep in sweeps.items()} for x in SPEEDUPS}}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", choices=list(DEMO_MODELS), required=True)
    parser.add_argument("--pairs", type=int, default=8, help="the first N benchmark pairs (the oracle's first)")
    parser.add_argument("--out", type=pathlib.Path, default=harness.REPO / "docs" / "bench")
    parser.add_argument("--charge", action="store_true", help="the sweep with the amplification charged")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench = harness.Bench(DEMO_MODELS[args.family])
    out = args.out / args.family
    if args.charge:
        per_step = json.loads((out / "sensitivity.json").read_text())["per_step"]
        result = charge(bench, per_step, harness.pairs(24)[8:])
        (out / "sensitivity_charge.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result["at_equal_calls"], indent=1))
        return
    started, per_pair = time.time(), {}
    for prompt, seed in harness.pairs(args.pairs):
        per_pair[f"{prompt}|{seed}"] = measure(bench, prompt, seed)
        print(f"{args.family} {prompt}|{seed} {time.time() - started:.0f}s", flush=True)
    result = {"sampler": SAMPLER, "steps": STEPS, "reuse": "linear", **summarise(per_pair), "pairs": per_pair}
    out.mkdir(parents=True, exist_ok=True)
    (out / "sensitivity.json").write_text(json.dumps(result, indent=1))
    series = [(pair, [(r["step"], math.log10(r["amplification"])) for r in rows]) for pair, rows in per_pair.items()]
    plot.chart(series, f"{args.family}: one linear skip, final error / local error", "skipped step",
               "log10 amplification", out / "sensitivity.png")


if __name__ == "__main__":
    main()
