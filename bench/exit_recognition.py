"""Early exit against the exit-alone and with-step-skipping targets, finer than bench/early_exit.py's
48 pairs (one sample there is 2.1 points, more than the 1-point bar): the thresholds around the
sidecar's recommendation, both ways of deciding, alone and combined with step skipping, on N
seeds per prompt of the demo model (euler 50, cfg 3), against full depth on the same pairs.

    .runtime/0.33.0/venv/bin/python bench/exit_recognition.py --seeds 24   # 192 pairs, about 30 minutes
    .runtime/0.33.0/venv/bin/python bench/exit_recognition.py --seeds 24 --oracle   # about 45 minutes

``--oracle`` asks how much of the shortfall is the heads': beside the heads at the thresholds around
the recommendation it runs an oracle exit, which computes every exit's output at each forward pass
and takes the earliest whose true relative error against full depth is within the step's share of
1 - q (the same allocation over steps as the heads' calibration, step_targets): the best any
certainty head could do with this model's exits under that allocation. Writes oracle.{json,md}.
``--held-out`` runs the heads at the same thresholds, alone and with step skipping, on the next N
seeds per prompt (24-47 for --seeds 24): a check of settings picked on the first N. Writes
held_out.{json,md}.

Recognition is compared pair by pair: ``lost`` counts pairs the full model's picture is recognised
on and this configuration's is not, ``gained`` the reverse; the difference's 95 % interval is the
normal one for paired proportions (what McNemar's test looks at). Writes
docs/bench/early_exit/recognition.{json,md}.
"""
import argparse
import json
import math
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI and this extension)
import classifier  # noqa: E402
import methods  # noqa: E402
from early_exit import HEADS, OUT, STEPS, early_exit, evaluate, exit_blocks  # noqa: E402
import comfy.patcher_extension  # noqa: E402
import comfy.samplers  # noqa: E402

from adaptive_diffusion.adaptive_core.calibration import relative_exit_errors, step_targets  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.exits import exit_outputs  # noqa: E402

DECIDES = ("per_block", "per_call")
ALONE = (0.995, 0.99, 0.985, 0.98)
COMBINED = [(0.995, 0.005), (0.995, 0.008), (0.99, 0.003), (0.99, 0.005), (0.99, 0.008)]  # (q, step-skipping tolerance)


def step_skipping(model):
    return "step skipping (default)", "tol=0.005", methods.ours(model, 0.005)


def combined(model, decide, q, tol):
    return f"exit, {decide} + step skipping", f"q={q} tol={tol}", methods.ours(early_exit(model, HEADS, q, decide), tol)


def configurations(model):
    out = [("original", "", model)]
    out += [(f"exit, {decide}", f"q={q}", early_exit(model, HEADS, q, decide)) for decide in DECIDES for q in ALONE]
    out += [step_skipping(model)]
    out += [combined(model, decide, q, tol) for decide in DECIDES for q, tol in COMBINED]
    return out


ORACLE = (0.99, 0.9875, 0.985)
HELD_OUT_COMBINED = [("per_block", 0.99, 0.005), ("per_block", 0.99, 0.008), ("per_block", 0.9875, 0.005),
                     ("per_block", 0.9875, 0.008), ("per_call", 0.99, 0.008)]  # (decide, q, tolerance)


def heads_configurations(model):
    return [("original", "", model)] + [("exit, per_block", f"q={q}", early_exit(model, HEADS, q, "per_block"))
                                        for q in ORACLE]


def held_out_configurations(model):
    return heads_configurations(model) + [step_skipping(model)] + [combined(model, *c) for c in HELD_OUT_COMBINED]


class OracleExit:
    """An APPLY_MODEL wrapper that serves each forward pass with its earliest exit whose relative
    error against the full output (of the network's d = (x - denoised)/σ, as the calibration
    measures it; the batch's mean) is within the pass's step target. Its look-ahead passes are taken
    off the bench's forward-pass count: the pass it stands for is counted once."""

    def __init__(self, q, schedule, bench):
        self.targets = dict(zip(schedule, step_targets(1 - q, schedule)))
        self.bench, self.blocks, self.full = bench, 0, 0

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        passes = []

        def forward(options, repeat):
            passes.append(repeat)
            return executor(x, t, c_concat, c_crossattn, control, {**transformer_options, **options}, **kwargs)
        sigma = t.flatten()[:1]
        outputs, _ = exit_outputs(executor.class_obj.diffusion_model, forward, batched=False)
        self.bench.forwards -= len(passes) - 1
        errors = relative_exit_errors([(x - out) / sigma for out in outputs]).mean(1)
        exit_at = int((errors <= self.targets[sigma.item()]).nonzero()[0])  # the full output's error is 0
        self.blocks, self.full = self.blocks + exit_at + 1, self.full + len(outputs)
        return outputs[exit_at]

    def take_fraction(self):
        """Blocks an exit would have run per block of the full model, since the last call."""
        fraction, self.blocks, self.full = self.blocks / self.full, 0, 0
        return fraction


def oracle_configurations(bench):
    model = bench.model
    schedule = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), bench.scheduler,
                                               STEPS).tolist()
    out, oracles = heads_configurations(model), {}
    for q in ORACLE:
        patcher, oracle = model.clone(), OracleExit(q, schedule, bench)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "oracle_exit", oracle)
        out.append(("oracle exit", f"q={q}", patcher))
        oracles[patcher] = oracle
    return out, lambda patcher: oracles[patcher].take_fraction() if patcher in oracles else exit_blocks(patcher)


def paired(rows, method, params):
    """Pairs lost and gained against full depth, and the difference's 95 % interval (points)."""
    full = {(r["prompt"], r["seed"]): r["recognised"] for r in rows if r["method"] == "original"}
    mine = [(full[(r["prompt"], r["seed"])], r["recognised"]) for r in rows
            if (r["method"], r["params"]) == (method, params)]
    lost = sum(f and not m for f, m in mine)
    gained = sum(m and not f for f, m in mine)
    n = len(mine)
    difference = (gained - lost) / n
    half = 1.96 * math.sqrt(max((gained + lost) / n - difference ** 2, 0.0) / n)
    return {"lost": lost, "gained": gained, "difference": difference,
            "interval": [difference - half, difference + half]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=24, help="seeds per prompt")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--oracle", action="store_true", help="the heads against an oracle exit (oracle.md)")
    choice.add_argument("--held-out", action="store_true", help="the heads on the next N seeds (held_out.md)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    recogniser, _, data_features = classifier.train()
    bench = harness.Bench(WAN_DEMO)
    first = args.seeds if args.held_out else 0
    pairs = [(p, s) for p in demo_space.PROMPTS for s in range(first, first + args.seeds)]
    if args.oracle:
        name, (configs, blocks_of) = "oracle", oracle_configurations(bench)
    else:
        name, blocks_of = ("held_out" if args.held_out else "recognition"), exit_blocks
        configs = held_out_configurations(bench.model) if args.held_out else configurations(bench.model)
    rows, summary = evaluate(bench, configs, pairs, (recogniser, data_features), started, blocks_of)
    for s in summary:
        s.update(paired(rows, s["method"], s["params"]))
    (OUT / f"{name}.json").write_text(json.dumps({"pairs": len(pairs), "rows": summary}, indent=1))
    full = summary[0]
    lines = [f"# Early exit on {len(pairs)} pairs (demo model, seeds {first}-{first + args.seeds - 1} per prompt, "
             "euler 50, cfg 3)", "",
             "Recognised: the share of pictures the kept classifier recognises as their prompt; lost / gained: "
             "pairs recognised at full depth and not here / the reverse; difference: its 95 % interval. "
             "Targets: exit alone ≥ 35 % fewer blocks, with step skipping ≥ 3.5x less compute; both with "
             "recognition at most 1 point and FD at most 10 % worse than full depth." + (
                 " Oracle exit: every exit computed at each forward pass, the earliest whose true relative error "
                 "against full depth is within the step's share of 1 - q taken (the heads' calibration allocates "
                 "1 - q over the steps the same way): the best any certainty head can do with this model's exits; "
                 "its fewer blocks count only the blocks that exit would run." if args.oracle else ""), "",
             "| configuration | params | fewer blocks | compute | PSNR dB | recognised | lost / gained | "
             "difference (points) | FD to data |", "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        low, high = (100 * v for v in s["interval"])
        lines.append(f"| {s['method']} | {s['params']} | {100 * (1 - s['block_fraction']):.1f} % | "
                     f"{s['compute']:.3f} ({1 / s['compute']:.2f}x less) | {s['psnr']:.2f} | "
                     f"{100 * s['recognised']:.1f} % | {s['lost']} / {s['gained']} | "
                     f"{100 * s['difference']:+.1f} ({low:+.1f} to {high:+.1f}) | "
                     f"{s['fd_data']:.1f} ({100 * (s['fd_data'] / full['fd_data'] - 1):+.0f} %) |")
    flag = " --oracle" if args.oracle else " --held-out" if args.held_out else ""
    lines += ["", f"Reproduce: .runtime/0.33.0/venv/bin/python bench/exit_recognition.py --seeds {args.seeds}{flag} "
              f"(this run: {time.time() - started:.0f} s)"]
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
