"""Whether an early-exit threshold means what it says, offline on recorded full-depth calls of the
demo model: the bundled data-free heads, calibrated once on 8 prompts x seeds 100-103 at euler
simple 30 (as the bundled sidecar is), applied to runs of other seeds, step counts and schedulers.

Every exit of every recorded call is computed, so each rule's choice is scored exactly: the blocks
it runs and the error it puts into the latent per run, the sum over passes of ρ·e (e the chosen
exit's relative error against full depth, ρ the step's relative size; what step_targets shares
out). The oracle takes the earliest exit within each pass's share of 1 - q, so its error is what
q allows; a calibration that means q puts in as much, and one that skips more blocks at the same
error ranks the exits better. Two calibrations, fitted on the same calls: one table pooled over
every σ (the sidecars before the σ bands) and the σ-banded one (adaptive_core/calibration.py).

--trained: heads a user trains, with the Train AdaDiff Heads node's recipe (one prompt, euler
simple 30, 600 steps) on the demo model, scored the same way: before
(4 seeds, calibrated on every tenth call, 24 samples, one table) and now (8 seeds, every fourth
run held out whole and calibrated on, nodes/exit_training.record_training).

    .runtime/0.33.0/venv/bin/python bench/exit_calibration.py   # 9 minutes beside two other benchmarks
    .runtime/0.33.0/venv/bin/python bench/exit_calibration.py --trained

Writes docs/bench/early_exit/calibration.{json,md} (--trained: trained_calibration.{json,md}).
"""
import argparse
import json
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI and this extension)
from early_exit import HEADS, OUT  # noqa: E402
import comfy.samplers  # noqa: E402

from adaptive_diffusion.adaptive_core.calibration import (fit_calibration, fit_knots, needed_per_step,  # noqa: E402
                                                          step_targets)
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.exit_training import HeadsTrainer, record_calls, record_training  # noqa: E402
from adaptive_diffusion.nodes.sidecar import BUNDLED, load_sidecar  # noqa: E402

FIT = ([100, 101, 102, 103], "simple", 30)
CELLS = [("simple", 50), ("simple", 20), ("beta", 50), ("linear_quadratic", 50)]
EVALUATED = [200, 201, 202]
QS = (0.995, 0.99, 0.9875, 0.985)
BENCH = None  # the demo model and its prompts (harness.Bench), set by main


def runs_of(prompts, seeds, scheduler, steps):
    return [dict(seed=seed, steps=steps, cfg=harness.CFG, sampler_name="euler", scheduler=scheduler,
                 positive=positive, negative=BENCH.negative, latent={"samples": torch.zeros(WAN_DEMO.empty_latent)})
            for positive in prompts for seed in seeds]


def judged(trainer, calls):
    """(certainty per block, relative exit error per block, σ) of every sample of every call."""
    certainties, errors, sigmas = zip(*trainer.judged(calls))
    return torch.stack(certainties), torch.stack(errors), [float(sigma[0]) for sigma in sigmas]


def recorded(heads, seeds, scheduler, steps):
    """``judged`` on every full-depth call of the eight prompts' runs, and the number of runs."""
    runs = runs_of(BENCH.positive.values(), seeds, scheduler, steps)
    calls = record_calls(BENCH.model, runs)
    return (*judged(HeadsTrainer(BENCH.model, [], calls, heads=heads), calls), len(runs))


def chosen(certainties, errors, sigmas, schedule, q, calibration):
    """Per pass, the exit taken: the oracle's (calibration None) or the heads' on the batch's mean certainty."""
    targets = dict(zip(schedule, step_targets(1 - q, schedule)))
    needed = None if calibration is None else dict(zip(schedule, needed_per_step(calibration, 1 - q, schedule)))
    exits = []
    for c, e, sigma in zip(certainties, errors, sigmas):
        ok = e.mean(1) <= targets[sigma] if needed is None else c.mean(1) >= torch.tensor(needed[sigma])
        ok[-1] = True
        exits.append(int(ok.nonzero()[0]))
    return exits


def scored(exits, errors, sigmas, schedule, runs):
    size = {s: abs(s - s_next) / s for s, s_next in zip(schedule, schedule[1:])}
    blocks = errors.shape[1]
    injected = sum(size[sigma] * float(e[at].mean()) for at, e, sigma in zip(exits, errors, sigmas)) / runs
    return {"fewer_blocks": 1 - sum(at + 1 for at in exits) / (len(exits) * blocks), "injected": injected}


def fitted(c, e, sigmas, pooled=False):
    flat = lambda values: values.permute(1, 0, 2).reshape(values.shape[1], -1)  # (blocks, samples)
    if pooled:
        return {"edges": [], "knots": [fit_knots(flat(c), flat(e))]}
    return fit_calibration(flat(c), flat(e), torch.tensor(sigmas).repeat_interleave(c.shape[2]))


def node_trained(seeds, held_out):
    """Heads trained as the Train AdaDiff Heads node does for the first prompt with ``seeds`` runs,
    calibrated on every tenth of their calls (held_out False) or on whole held-out runs (record_training)."""
    runs = runs_of(list(BENCH.positive.values())[:1], range(seeds), "simple", 30)
    if held_out:
        calls, held = record_training(BENCH.model, runs)
    else:
        calls = record_calls(BENCH.model, runs)
        calls, held = [c for i, c in enumerate(calls) if i % 10], calls[::10]
    trainer = HeadsTrainer(BENCH.model, calls, held)
    while trainer.step < 600:
        trainer.train_step()
    return trainer.heads, fitted(*judged(trainer, held))


def scored_cells(calibrations):
    """Per cell, each calibration's rows at every q; calibrations: name -> (heads, calibration or None)."""
    rows = []
    for scheduler, steps in CELLS:
        schedule = comfy.samplers.calculate_sigmas(BENCH.model.get_model_object("model_sampling"), scheduler,
                                                   steps).tolist()
        cells = {}
        for name, (heads, calibration) in calibrations.items():
            if heads not in cells:
                cells[heads] = recorded(heads, EVALUATED, scheduler, steps)
            c, e, sigmas, runs = cells[heads]
            rows += [{"scheduler": scheduler, "steps": steps, "rule": name, "q": q,
                      **scored(chosen(c, e, sigmas, schedule, q, calibration), e, sigmas, schedule, runs)} for q in QS]
        print(f"{scheduler} {steps}", flush=True)
    return rows


def main():
    global BENCH
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trained", action="store_true")
    args = parser.parse_args()
    started = time.time()
    torch.set_num_threads(1)
    BENCH = harness.Bench(WAN_DEMO)
    if args.trained:
        before, now = node_trained(4, held_out=False), node_trained(8, held_out=True)
        calibrations = {"oracle": (now[0], None), "before": before, "now": now}  # the oracle needs no heads
        name, title = "trained_calibration", ("heads trained with the Train AdaDiff Heads node's recipe (one prompt, "
                                              "euler simple 30, 600 steps): before, 4 seeds and every tenth call "
                                              "calibrated on; now, 8 seeds and every fourth run held out")
    else:
        heads = load_sidecar(BUNDLED / HEADS)[0]
        c, e, sigmas, _ = recorded(heads, *FIT)
        calibrations = {"oracle": (heads, None), "pooled": (heads, fitted(c, e, sigmas, pooled=True)),
                        "banded": (heads, fitted(c, e, sigmas))}
        name, title = "calibration", "the bundled heads calibrated once (8 prompts x seeds 100-103, euler simple 30)"
    rows = scored_cells(calibrations)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"fit": FIT, "evaluated_seeds": EVALUATED, "rows": rows,
                                                  "seconds": time.time() - started}, indent=1))
    (OUT / f"{name}.md").write_text(table(rows, title))
    print(table(rows, title))


def table(rows, title):
    """Per cell and q: each rule's fewer blocks and error put in, and that error over the oracle's."""
    oracle = {(r["scheduler"], r["steps"], r["q"]): r["injected"] for r in rows if r["rule"] == "oracle"}
    lines = [f"Early exit offline: {title}, "
             f"scored on every full-depth call of 8 prompts x seeds {EVALUATED[0]}-{EVALUATED[-1]} (bench/exit_calibration.py). "
             "Per cell: fewer blocks / error put into the latent per run (sum of rho*e) / that error over the oracle's at "
             "the same q (1.00: q means what it says).", "",
             "| euler, scheduler, steps | rule | " + " | ".join(f"q {q}" for q in QS) + " |",
             "|---|---|" + "---|" * len(QS)]
    for r in rows:
        if r["q"] == QS[0]:
            cells = [x for x in rows if (x["scheduler"], x["steps"], x["rule"]) == (r["scheduler"], r["steps"], r["rule"])]
            lines.append(f"| {r['scheduler']} {r['steps']} | {r['rule']} | " + " | ".join(
                f"{100 * x['fewer_blocks']:.1f} % / {x['injected']:.4f} / "
                f"{x['injected'] / oracle[(x['scheduler'], x['steps'], x['q'])]:.2f}" for x in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
