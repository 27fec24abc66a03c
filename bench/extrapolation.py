"""Which variable to extrapolate the noise prediction in: the error of predicting a step's
denoised output from earlier real calls, along full runs of the demo model.

    .runtime/0.33.0/venv/bin/python bench/extrapolation.py     # about a minute

For every step k of a full 50-step run and a distance h, the derivative d (velocity here) of the
last 1, 2 or 3 real calls ending at step k - h is extrapolated to σ_k in σ, log σ or the step
index, and D_k = x_k - σ_k·d̂ is compared with the real D_k (relative L2, mean over steps >= 8
and the 8 prompts). Writes docs/bench/reuse/extrapolation_error.md.
"""
import math
import pathlib
import statistics
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import methods  # noqa: E402  (imports ComfyUI)
import quality  # noqa: E402

from adaptive_diffusion.adaptive_core import NoisePredictionCache, SkipConfig, lagrange  # noqa: E402
from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes.patch import patch_model  # noqa: E402

VARIABLES = {"σ": lambda sigmas: sigmas, "log σ": lambda sigmas: [math.log(s) for s in sigmas],
             "step index": lambda sigmas: list(range(len(sigmas)))}
ORDERS = {"hold": 0, "linear": 1, "parabola": 2}


class Recorder(NoisePredictionCache):
    def __init__(self, trace):
        super().__init__("hold")
        self.trace = trace

    def store(self, x, sigma, denoised, at):
        super().store(x, sigma, denoised, at)
        self.trace.append((at, self.derivatives[-1].clone(), denoised.clone(), x.clone()))


def main():
    torch.set_num_threads(1)
    bench = quality.Bench()
    runs = []
    for prompt in demo_space.PROMPTS:
        trace = []
        patcher = patch_model(bench.model, SkipConfig(1.0, 1000, 0),
                              methods._holder(policy=lambda: methods.Forced([]), cache=lambda: Recorder(trace)))[0]
        bench.sample(patcher, prompt, 1, "euler", 50)
        runs.append(trace)
    lines = ["# Extrapolation error of the noise prediction along full runs (demo model, euler 50, 8 prompts)", "",
             "Relative L2 error of the rebuilt denoised output at step k from real calls ending at k - h.", "",
             "| variable | h | " + " | ".join(ORDERS) + " |", "|---|---|" + "---|" * len(ORDERS)]
    for name, variable in VARIABLES.items():
        for h in (1, 2, 3):
            errors = {order: [] for order in ORDERS}
            for trace in runs:
                sigmas, d, denoised, x = zip(*trace)
                t = variable(list(sigmas))
                for k in range(8, len(trace)):
                    for order, degree in ORDERS.items():
                        points = list(range(k - h - degree, k - h + 1))
                        prediction = x[k] - sigmas[k] * lagrange([t[i] for i in points], [d[i] for i in points], t[k])
                        errors[order].append(float((prediction - denoised[k]).norm() / denoised[k].norm()))
            lines.append(f"| {name} | {h} | " + " | ".join(f"{statistics.mean(e):.4f}" for e in errors.values()) + " |")
    lines += ["", "Reproduce: .runtime/0.33.0/venv/bin/python bench/extrapolation.py"]
    out = methods.REPO / "docs" / "bench" / "reuse" / "extrapolation_error.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
