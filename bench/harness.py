"""One demo model through ComfyUI's own sampling, with its real forward passes counted, and the
quality of every run against the full run of the same prompt, seed, sampler and step count.

Everything runs through the real ComfyUI runtime: its samplers, schedulers and CFG. Quality is
PSNR and SSIM of the decoded pictures (exact decoding, demo/space.py, so this is PSNR of the
latents) and the latent's relative L2 error; network calls are real forward passes of the
diffusion model, counted at its first layer (a call skipped inside another pack's wrapper, such
as EasyCache's, does not reach it).
"""
import csv
import json
import pathlib
import statistics
import sys
import time
from collections import defaultdict

import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import comfy_runtime  # noqa: E402

comfy_runtime.import_comfy()
comfy_runtime.load_extension()
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import nodes  # noqa: E402

from adaptive_diffusion.demo import space as demo_space  # noqa: E402
from adaptive_diffusion.nodes import demo_models  # noqa: E402
from adaptive_diffusion.nodes.patch import holder_of  # noqa: E402

import metrics  # noqa: E402

CFG = 3.0
SCHEDULER = "simple"


class Bench:
    def __init__(self, demo, scheduler=SCHEDULER):
        self.demo, self.scheduler = demo, scheduler
        self.model = demo_models.load(demo)
        table = demo_models.prompt_table(demo.name)
        self.positive = {p: [[table[p], {}]] for p in demo_space.PROMPTS}
        self.negative = [[table[demo_models.NULL_PROMPT], {}]]
        self.forwards = 0
        network = self.model.model.diffusion_model
        first = network.patch_embedding if demo.video else network.input_blocks[0][0]
        first.register_forward_pre_hook(self._count)
        self.full = {}

    def _count(self, module, args):
        self.forwards += 1

    def sample(self, runner, prompt, seed, sampler, steps):
        """runner: a (patched) MODEL sampled by ``sampler``, or a SAMPLER object of its own (a peer's
        re-implemented sampler). Returns (latent, forward passes, seconds, our report or None)."""
        before, start = self.forwards, time.perf_counter()
        latent = {"samples": torch.zeros(self.demo.empty_latent)}
        if isinstance(runner, comfy.samplers.Sampler):
            noise = comfy.sample.prepare_noise(latent["samples"], seed)
            sigmas = comfy.samplers.calculate_sigmas(self.model.get_model_object("model_sampling"), self.scheduler,
                                                 steps)
            out = comfy.sample.sample_custom(self.model, noise, CFG, runner, sigmas, self.positive[prompt],
                                             self.negative, latent["samples"], seed=seed, disable_pbar=True)
            holder = None
        else:
            out = nodes.common_ksampler(runner, seed, steps, CFG, sampler, self.scheduler, self.positive[prompt],
                                        self.negative, latent)[0]["samples"]
            holder = holder_of(runner)
        seconds = time.perf_counter() - start
        return out, self.forwards - before, seconds, holder.last_report if holder else None

    def calls(self, runner, prompt, seed, sampler, steps):
        """(latent, every real call's (x, σ, the CFG'd denoised D) in order) of a patched MODEL's run,
        caught after CFG (a reused step makes no call there)."""
        calls = []
        model = runner.clone()
        model.set_model_sampler_post_cfg_function(
            lambda args: calls.append((args["input"], float(args["sigma"][0]), args["denoised"])) or args["denoised"])
        return self.sample(model, prompt, seed, sampler, steps)[0], calls

    def picture(self, latent):
        return demo_space.latent_to_picture(self.demo.latent_format.process_in(latent)).clamp(0, 1)

    def full_run(self, prompt, seed, sampler, steps):
        key = (prompt, seed, sampler, steps)
        if key not in self.full:
            self.full[key] = self.sample(self.model, prompt, seed, sampler, steps)
        return self.full[key]

    def measure(self, method, params, runner, prompt, seed, sampler, steps, sample_steps=None):
        ref_latent, ref_calls, ref_seconds, _ = self.full_run(prompt, seed, sampler, steps)
        latent, calls, seconds, report = self.sample(runner, prompt, seed, sampler, sample_steps or steps)
        return {
            "family": self.demo.name, "method": method, "params": params, "sampler": sampler, "steps": steps,
            "prompt": prompt, "seed": seed, "calls": calls, "full_calls": ref_calls,
            "psnr": metrics.psnr(self.picture(ref_latent), self.picture(latent)),
            "ssim": metrics.ssim(self.picture(ref_latent), self.picture(latent)),
            "latent_rel_l2": metrics.latent_rel_l2(ref_latent, latent),
            "seconds": seconds, "full_seconds": ref_seconds,
            "skipped_steps": [] if report is None else [r.step for r in report.records if not r.computed],
        }


KEYS = ("family", "sampler", "steps", "method", "params")
NUMBERS = {"steps": int, "seed": int, "calls": int, "full_calls": int, "psnr": float, "ssim": float,
           "latent_rel_l2": float, "seconds": float, "full_seconds": float}


def load_runs(path):
    """The rows save_runs wrote, with their types back."""
    with open(path, newline="") as f:
        return [{**row, **{k: kind(row[k]) for k, kind in NUMBERS.items()},
                 "skipped_steps": [int(s) for s in row["skipped_steps"].split()]} for row in csv.DictReader(f)]


def save_runs(rows, out, csv_name="runs.csv"):
    """The runs as a CSV and their means per (family, sampler, steps, method, params) as summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / csv_name, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "skipped_steps": " ".join(map(str, row["skipped_steps"]))})
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in KEYS)].append(row)
    summary = [{**dict(zip(KEYS, key)), "pairs": len(group),
                "calls": statistics.mean(r["calls"] for r in group),
                "full_calls": statistics.mean(r["full_calls"] for r in group),
                # a run identical to the full one has infinite PSNR: counted as 100 dB
                "psnr": statistics.mean(min(r["psnr"], 100.0) for r in group),
                "psnr_min": min(min(r["psnr"], 100.0) for r in group),
                "ssim": statistics.mean(r["ssim"] for r in group),
                "latent_rel_l2": statistics.mean(r["latent_rel_l2"] for r in group)}
               for key, group in groups.items()]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def pairs(count):
    """The first ``count`` prompt x seed pairs: every prompt with seed 0, then seed 1, ..."""
    return [(prompt, seed) for seed in range(count) for prompt in demo_space.PROMPTS][:count]
