"""How well each of the reuse's predictors would stand in for the network, along full runs.

    .runtime/0.33.0/venv/bin/python bench/extrapolation.py     # a few minutes

For every step k of full 50-step euler runs (8 prompts, seed 0, each family) and a distance h, each
predictor of adaptive_core/reuse.py rebuilds D_k from the real calls ending at step k - h, spaced
one step apart, and its error ||D̂ - D|| / ||D|| is averaged (median) over the steps of each phase
of the run. This is the quantity the reuse measures on itself and the error-controlled policy
scales by the step size. Writes docs/bench/extrapolation_error.md.
"""
import dataclasses
import pathlib
import statistics
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI)
import baselines  # noqa: E402
import methods  # noqa: E402

from adaptive_diffusion.adaptive_core import PREDICTORS, CalibratedReuse, REUSE_STRATEGIES  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.demo_models import DEMO_MODELS  # noqa: E402

DISTANCES = (1, 2, 3, 4)
PHASES = {"steps 4-16": (4, 17), "steps 17-33": (17, 34), "steps 34-48": (34, 49), "step 49 (to σ = 0)": (49, 50)}


class Recorder(CalibratedReuse):
    """Computes every step (a forced path with no skips) and keeps each real call's (x, σ, D)."""
    trace = []

    def store(self, x, sigma, denoised, at):
        super().store(x, sigma, denoised, at)
        self.trace.append((x.clone(), sigma.clone(), denoised.clone()))


@dataclasses.dataclass(frozen=True)
class Record(baselines.Baseline):
    def build(self):
        return baselines.ForcedPolicy(frozenset()), Recorder(REUSE_STRATEGIES["auto"], calibrate=False)


def replay(trace, k, h, predictor):
    """D̂_k from the calls at steps k - h - 2 .. k - h, as the reuse would rebuild it."""
    reuse = CalibratedReuse((predictor,), calibrate=False)
    for i in range(max(0, k - h - 2), k - h + 1):
        reuse.store(*trace[i], float(i))
    x, sigma, denoised = trace[k]
    rebuilt = reuse.rebuild(x, sigma, float(k), {})
    return float((rebuilt - denoised).norm() / denoised.norm())


def main():
    torch.set_num_threads(1)
    lines = ["# Error of each predictor along full runs (euler, 50 steps, 8 prompts, seed 0)", "",
             "Median of ||D̂ - D|| / ||D|| for the step's denoised output rebuilt from real calls ending h "
             "steps earlier, per phase of the run (bench/extrapolation.py).", ""]
    for family, demo in DEMO_MODELS.items():
        bench = harness.Bench(demo)
        traces = []
        for prompt in demo_space.PROMPTS:
            Recorder.trace = []
            bench.sample(methods.patched(bench.model, Record()), prompt, 0, "euler", 50)
            traces.append(Recorder.trace)
        lines += [f"## {family}", "", "| predictor | h | " + " | ".join(PHASES) + " |",
                  "|---|---|" + "---|" * len(PHASES)]
        for predictor in PREDICTORS:
            for h in DISTANCES:
                cells = [statistics.median(replay(t, k, h, predictor) for t in traces for k in range(lo, hi))
                         for lo, hi in PHASES.values()]
                lines.append(f"| {predictor} | {h} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
        lines.append("")
    out = harness.REPO / "docs" / "bench" / "extrapolation_error.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
