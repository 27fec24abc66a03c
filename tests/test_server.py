"""The extension inside a real ComfyUI server: loading, /object_info, POST /prompt, /history."""
import json
import math
import pathlib
import sys

import pytest

import runtime

sys.path.insert(0, str(runtime.REPO / "scripts"))
from comfy_server import ComfyServer  # noqa: E402

pytestmark = pytest.mark.slow
HELPERS = runtime.REPO / "tests" / "helper_nodes" / "adaptive_diffusion_test_helpers"
NODE_IDS = ["AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "AdaptiveDiffusionPatch",
            "AdaptiveDiffusionSkipReport", "AdaptiveDiffusionEarlyExit", "AdaptiveDiffusionLayerMap"]


@pytest.fixture(scope="module")
def server(comfy, tmp_path_factory, model_dir, wan):
    with ComfyServer(runtime.COMFYUI, tmp_path_factory.mktemp("comfy"), custom_nodes=[HELPERS],
                     models=[("diffusion_models", model_dir / "tiny_wan21.safetensors")]) as s:
        yield s


def workflow(threshold=0.05, sampler="euler", steps=20, seed=3):
    return {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny_wan21.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "AdaptiveDiffusionTestConditioning", "inputs": {"seed": 1, "width": 4096, "tokens": 8, "pooled_width": 0}},
        "3": {"class_type": "AdaptiveDiffusionTestConditioning", "inputs": {"seed": 2, "width": 4096, "tokens": 8, "pooled_width": 0}},
        "4": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 128, "height": 128, "length": 1, "batch_size": 1}},
        "5": {"class_type": "AdaptiveDiffusionKSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": steps, "cfg": 2.0, "sampler_name": sampler, "scheduler": "simple",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0,
            "threshold": threshold, "max_skip_steps": 4, "warmup_steps": 4, "reuse": "linear"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 1], "filename_prefix": "skip_map"}},
    }


def test_object_info_lists_nodes_with_widgets_and_tooltips(server):
    info = server.get("/object_info")
    for node_id in NODE_IDS:
        assert node_id in info, node_id
        node = info[node_id]
        assert node["category"] == "sampling/adaptive"
        inputs = {**node["input"]["required"], **node["input"].get("optional", {})}
        for name, spec in inputs.items():
            assert spec[1].get("tooltip"), (node_id, name)
    core = list(info["KSampler"]["input"]["required"])
    ours = list(info["AdaptiveDiffusionKSampler"]["input"]["required"])
    assert ours == core + ["threshold", "max_skip_steps", "warmup_steps", "reuse"]
    advanced = list(info["AdaptiveDiffusionKSamplerAdvanced"]["input"]["required"])
    assert advanced == list(info["KSamplerAdvanced"]["input"]["required"]) + ["threshold", "max_skip_steps", "warmup_steps", "reuse"]
    # the bundled sidecars are listed through the folder the extension registers
    sidecars = info["AdaptiveDiffusionEarlyExit"]["input"]["required"]["sidecar"][1]["options"]
    assert {"demo_wan21_uem_heads.safetensors", "demo_wan21_uem_full.safetensors"} <= set(sidecars)
    threshold = info["AdaptiveDiffusionKSampler"]["input"]["required"]["threshold"][1]
    assert threshold["default"] == 0.01 and threshold["min"] == 0.0 and threshold["max"] == 1.0


def test_queued_workflow_completes_with_outputs_in_history(server):
    status, body = server.post_prompt(workflow())
    assert status == 200, body
    entry = server.wait_for(body["prompt_id"])
    images = entry["outputs"]["6"]["images"]
    assert len(images) == 1 and server.output_file(images[0]).exists()
    report = json.loads(entry["outputs"]["5"]["adaptive_diffusion"][0])
    assert report["totals"]["steps"] == 20
    assert 0 < report["totals"]["network_calls"] < 20
    assert "AdaptiveDiffusion: computed" in server.log()


def test_two_sampler_nodes_in_one_workflow(server):
    prompt = workflow(seed=11)  # a seed no other test used: ComfyUI would serve node 5 from its cache
    prompt["7"] = dict(prompt["5"], inputs=dict(prompt["5"]["inputs"], latent_image=["5", 0], denoise=0.5,
                                                steps=10, threshold=0.2))
    prompt["8"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 1], "filename_prefix": "hires_skip_map"}}
    status, body = server.post_prompt(prompt)
    assert status == 200, body
    outputs = server.wait_for(body["prompt_id"])["outputs"]
    first = json.loads(outputs["5"]["adaptive_diffusion"][0])
    second = json.loads(outputs["7"]["adaptive_diffusion"][0])
    assert len(first["steps"]) == 20 and len(second["steps"]) == 10
    assert [s["reason"] for s in second["steps"][:4]] == ["warmup"] * 4


@pytest.mark.parametrize("widget,value", [("threshold", -0.1), ("threshold", math.nan), ("threshold", 1.5),
                                          ("max_skip_steps", -1), ("warmup_steps", -3), ("reuse", "cubic")])
def test_invalid_widget_rejected_at_queue_time_naming_it(server, widget, value):
    prompt = workflow()
    prompt["5"]["inputs"][widget] = value
    status, body = server.post_prompt(prompt)
    assert status == 400
    errors = body["node_errors"]["5"]["errors"]
    assert any(widget in json.dumps(e) for e in errors), errors


def test_unknown_sidecar_rejected_at_queue_time_naming_it(server):
    prompt = workflow()
    prompt["9"] = {"class_type": "AdaptiveDiffusionEarlyExit",
                   "inputs": {"model": ["1", 0], "sidecar": "missing.safetensors", "threshold": 0.9}}
    prompt["5"]["inputs"]["model"] = ["9", 0]
    status, body = server.post_prompt(prompt)
    assert status == 400
    assert any("sidecar" in json.dumps(e) for e in body["node_errors"]["9"]["errors"])
