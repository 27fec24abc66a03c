"""The prompts of a batch (scripts/queue_batch.py): the workflow in API format, and one copy of it
per combination of the overrides."""
import itertools
import json
import pathlib

SAMPLER_NODES = {"AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "KSampler", "KSamplerAdvanced",
                 "KSamplerSelect"}
SEED_NODES = SAMPLER_NODES | {"RandomNoise"}
SKIP_NODES = {"AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "AdaptiveDiffusionPatch"}
REPORT_NODES = {"AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "AdaptiveDiffusionSkipReport"}
SEED_INPUTS = ("seed", "noise_seed")
SKIP_WIDGETS = ("threshold", "max_skip_steps", "reuse", "criterion")
FIELDS = ["index", "prompt_id", "status", "seed", *SKIP_WIDGETS, "sampler", "network_calls",
          "full_run_network_calls", "expected_speedup", "computed_steps", "steps", "sampling_seconds",
          "from_cache", "files", "error"]


class BatchError(Exception):
    pass


def load_workflow(path):
    workflow = json.loads(pathlib.Path(path).read_text())
    if "nodes" in workflow and "links" in workflow:
        raise BatchError(f"{path} is in the frontend's UI format; export it with 'Export (API)' and queue that file")
    return workflow


def apply_overrides(workflow, overrides):
    prompt = json.loads(json.dumps(workflow))
    touched = False
    for node in prompt.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind in SEED_NODES and overrides.get("seed") is not None:
            for name in SEED_INPUTS:
                if name in inputs:
                    inputs[name] = overrides["seed"]
        if kind in SAMPLER_NODES and overrides.get("sampler") is not None:
            inputs["sampler_name"] = overrides["sampler"]
        if kind in SKIP_NODES:
            touched = True
            for name in SKIP_WIDGETS:
                if overrides.get(name) is not None:
                    inputs[name] = overrides[name]
    if not touched and any(overrides.get(name) is not None for name in SKIP_WIDGETS):
        raise BatchError("the workflow has no AdaptiveDiffusion node to apply --threshold/--max-skip-steps/--reuse/"
                         "--criterion to")
    return prompt


def combinations(args):
    axes = {"seed": args.seeds or [None], "threshold": args.threshold or [None],
            "max_skip_steps": args.max_skip_steps or [None], "reuse": args.reuse or [None],
            "criterion": args.criterion or [None],
            "sampler": args.sampler or [None]}
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())] * args.repeat
