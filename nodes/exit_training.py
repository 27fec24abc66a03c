"""AdaDiff's uncertainty heads for any supported model, trained without a data set.

The inputs are the model's own sampling trajectories: every network call of real ComfyUI sampling
runs (an APPLY_MODEL wrapper records its arguments), for the user's prompts and seeds. The labels
are the model's own full-depth outputs: for each recorded call, how far each exit's output is from
the full model's (the heads-only objective L_u of adaptive_core/uncertainty.py). The backbone is
never changed. Outputs are compared as k-diffusion derivatives d = (x - D)/σ (ε or velocity).
Deterministic for a seed; resumable from a checkpoint; on the model's own device (the GPU when
there is one).
"""
import dataclasses
import pathlib

import comfy.model_management
import comfy.patcher_extension
import comfy.samplers
import comfy.utils
import folder_paths
import nodes
import torch
from comfy_api.latest import io

from ..adaptive_core import UncertaintyHeads
from ..adaptive_core.calibration import relative_exit_errors
from ..adaptive_core.uncertainty import adadiff_loss
from .exits import exit_outputs, layout_of
from .sidecar import FOLDER, calibrated, fingerprint, save_sidecar
from .widgets import TRAINING_CATEGORY, check_declared

RECORDER = "adaptive_diffusion_exit_trainer"
HEADS_ONLY = {"mode": "heads", "objective": "L_u (heads only, the model's own outputs as labels)",
              "certainty_labels": "closeness to the model's own output"}


@dataclasses.dataclass
class Call:
    """One recorded network call, on the CPU: the arguments of BaseModel.apply_model."""
    x: torch.Tensor
    sigma: torch.Tensor
    arguments: dict


def _cpu(value):
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    return value


def _to(value, device):
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value


def record_calls(patcher, runs, every=1):
    """Samples each run (a dict of nodes.common_ksampler's arguments) with the model and returns its
    network calls, keeping every ``every``-th one."""
    calls, seen = [], [0]

    def recorder(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        if seen[0] % every == 0:
            calls.append(Call(_cpu(x), _cpu(t), {"c_concat": _cpu(c_concat), "c_crossattn": _cpu(c_crossattn),
                                                 **{k: _cpu(v) for k, v in kwargs.items()}}))
        seen[0] += 1
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

    clone = patcher.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, RECORDER, recorder)
    for run in runs:
        nodes.common_ksampler(clone, **run)
    return calls


def record_training(patcher, runs, every=1):
    """(training calls, held-out calls) of the runs: every fourth run, and at least one, is held out
    whole, for the held-out loss and the calibration, which needs many held-out samples at every σ
    of a run to fit its σ bands (bench/exit_calibration.py --trained: every tenth call of the node's
    former 4 runs gave it 24 samples and one table for all σ, which let in 0.9 to 1.6 times the
    error the oracle takes at the same threshold; two whole runs of 8, 0.7 to 1.0 times)."""
    held = set(range(3, len(runs), 4)) or {len(runs) - 1}
    training = [run for i, run in enumerate(runs) if i not in held]
    return record_calls(patcher, training, every), record_calls(patcher, [runs[i] for i in sorted(held)], every)


class HeadsTrainer:
    """Trains the heads on recorded calls (or, given ``heads``, only calibrates them);
    ``state()``/``load()`` give a resumable checkpoint."""

    def __init__(self, patcher, calls, held_out, seed=0, lr=1e-2, heads=None):
        comfy.model_management.load_models_gpu([patcher])
        self.model, self.device = patcher.model, patcher.load_device
        self.diffusion_model = self.model.diffusion_model
        self.layout = layout_of(self.diffusion_model)
        self.calls, self.held_out = calls, held_out
        if heads is None:
            with torch.no_grad():
                hidden = self.exits(held_out[0])[1]
            heads = UncertaintyHeads(self.layout.blocks, hidden[0].shape[-1])
        self.heads = heads.to(self.device)
        self.optimizer = torch.optim.AdamW(self.heads.parameters(), lr=lr, weight_decay=0.0)
        self.generator = torch.Generator().manual_seed(seed)
        self.step, self.history = 0, []

    def exits(self, call):
        """(every exit's d, every block's hidden state, σ) for a recorded call, on the device."""
        x, sigma = call.x.to(self.device), call.sigma.to(self.device)
        arguments = {k: _to(v, self.device) for k, v in call.arguments.items()}

        def forward(options, repeat):
            denoised = self.model.apply_model(x, sigma, transformer_options=options, **arguments)
            return (x - denoised) / sigma.reshape((-1,) + (1,) * (x.ndim - 1))
        outputs, hidden = exit_outputs(self.diffusion_model, forward, batched=False)
        return outputs, hidden, sigma

    def loss(self, call):
        with torch.no_grad():
            outputs, hidden, sigma = self.exits(call)
        certainties = [self.heads(i, h.float(), sigma).mean(1) for i, h in enumerate(hidden)]
        return adadiff_loss(outputs, certainties, outputs[-1], train_backbone=False)[0]

    def held_out_loss(self):
        """The loss on every fourth held-out call: it follows training as well as all of them would,
        at a quarter of the cost (the calibration uses them all)."""
        calls = self.held_out[::4]
        with torch.no_grad():
            return sum(float(self.loss(call)) for call in calls) / len(calls)

    def train_step(self):
        call = self.calls[int(torch.randint(len(self.calls), (1,), generator=self.generator))]
        loss = self.loss(call)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.history.append({"step": self.step, "loss": loss.item()})
        return loss.item()

    def state(self):
        return {"heads": self.heads.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "generator": self.generator.get_state(), "history": self.history}

    def load(self, state):
        self.heads.load_state_dict(state["heads"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step, self.history = state["step"], state["history"]

    def judged(self, calls):
        """Per call: (each block's certainty, each exit's relative error against full depth, σ), per
        sample and on the CPU: what a calibration is fitted on and scored against."""
        judged = []
        with torch.no_grad():
            for call in calls:
                outputs, hidden, sigma = self.exits(call)
                certainties = torch.stack([self.heads(i, h.float(), sigma).mean(1) for i, h in enumerate(hidden)])
                judged.append((certainties.cpu(), relative_exit_errors(outputs).cpu(),
                               sigma.flatten().expand(len(outputs[0])).cpu()))
        return judged

    def save(self, path: pathlib.Path, info, backbone=None):
        """The heads as a sidecar, calibrated on the held-out calls."""
        certainties, errors, sigmas = zip(*self.judged(self.held_out))
        save_sidecar(path, self.heads.cpu(), fingerprint(self.diffusion_model),
                     calibrated(info, torch.cat(certainties, 1), torch.cat(errors, 1), torch.cat(sigmas)), backbone)
        self.heads.to(self.device)


class AdaptiveDiffusionTrainHeads(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionTrainHeads",
            display_name="Train AdaDiff Heads",
            category=TRAINING_CATEGORY,
            description="Trains early-exit heads for this model without a data set: the model samples the "
                        "prompt with each seed, and its own full-depth outputs are the labels. Writes a sidecar "
                        "to models/adaptive_diffusion for Apply AdaDiff Early Exit (refresh the node list).",
            is_output_node=True,
            inputs=[io.Model.Input("model", tooltip="The model to train heads for (its weights are not changed)."),
                    io.Conditioning.Input("positive", tooltip="The prompt its trajectories are sampled with."),
                    io.Conditioning.Input("negative", tooltip="The negative prompt of those runs."),
                    io.Latent.Input("latent_image", tooltip="An empty latent of the size to train at."),
                    io.Int.Input("seeds", default=8, min=2, max=1000,
                                 tooltip="Sampling runs, seeds 0 to N-1; every fourth run (at least one) is held "
                                         "out to calibrate the threshold."),
                    io.Int.Input("steps", default=30, min=2, max=1000, tooltip="Sampling steps of each run."),
                    io.Float.Input("cfg", default=5.0, min=0.0, max=100.0, step=0.1, tooltip="CFG of each run."),
                    io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS,
                                   tooltip="The sampler of each run."),
                    io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS,
                                   tooltip="The scheduler of each run."),
                    io.Int.Input("train_steps", default=600, min=1, max=100000,
                                 tooltip="Training steps, one recorded network call each."),
                    io.String.Input("filename", default="my_model_uem_heads",
                                    tooltip="The sidecar's name in models/adaptive_diffusion (no extension).")],
            outputs=[io.String.Output("sidecar", tooltip="The sidecar's file name in models/adaptive_diffusion.")],
        )

    @classmethod
    def validate_inputs(cls, cfg=None, sampler_name=None, scheduler=None, filename=None):
        if filename is not None and (not filename or any(c in filename for c in "/\\:")):
            return f"filename must be a plain file name, got {filename!r}"
        return check_declared(cls, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler)

    @classmethod
    def execute(cls, model, positive, negative, latent_image, seeds, steps, cfg, sampler_name, scheduler,
                train_steps, filename) -> io.NodeOutput:
        runs = [dict(seed=seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                     positive=positive, negative=negative, latent=latent_image) for seed in range(seeds)]
        trainer = HeadsTrainer(model, *record_training(model, runs))
        progress = comfy.utils.ProgressBar(train_steps)
        while trainer.step < train_steps:
            trainer.train_step()
            progress.update(1)
        name = f"{filename}.safetensors"
        trainer.save(pathlib.Path(folder_paths.models_dir) / FOLDER / name,
                     {**HEADS_ONLY, "model": "connected to Train AdaDiff Heads", "seed": 0, "runs": len(runs),
                      "calls": len(trainer.calls) + len(trainer.held_out), "steps": trainer.step})
        return io.NodeOutput(name, ui={"text": [f"wrote models/{FOLDER}/{name}"]})
