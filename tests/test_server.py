"""The extension inside a real ComfyUI server: loading, /object_info, POST /prompt, /history."""
import json
import math
import re
import urllib.request
import sys

import pytest
import safetensors.torch
import torch

import comfy_runtime

sys.path.insert(0, str(comfy_runtime.REPO / "scripts"))
from comfy_server import ComfyServer  # noqa: E402

pytestmark = pytest.mark.slow
HELPERS = comfy_runtime.REPO / "tests" / "helper_nodes" / "adaptive_diffusion_test_helpers"
NODE_IDS = ["AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "AdaptiveDiffusionPatch",
            "AdaptiveDiffusionSkipReport", "AdaptiveDiffusionEarlyExit", "AdaptiveDiffusionLayerMap",
            "AdaptiveDiffusionTrainHeads", "AdaptiveDiffusionDemoPrompt", "AdaptiveDiffusionDemoDecode",
            "AdaptiveDiffusionDemoUNetLoader"]


@pytest.fixture(scope="module")
def server(comfy, tmp_path_factory, model_dir, wan):
    with ComfyServer(comfy_runtime.COMFYUI, tmp_path_factory.mktemp("comfy"), custom_nodes=[HELPERS],
                     models=[("diffusion_models", model_dir / "tiny_wan21.safetensors")]) as s:
        yield s


def workflow(threshold=0.01, sampler="euler", steps=20, seed=3):
    return {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny_wan21.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "AdaptiveDiffusionTestConditioning", "inputs": {"seed": 1, "width": 4096, "tokens": 8, "pooled_width": 0}},
        "3": {"class_type": "AdaptiveDiffusionTestConditioning", "inputs": {"seed": 2, "width": 4096, "tokens": 8, "pooled_width": 0}},
        "4": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 128, "height": 128, "length": 1, "batch_size": 1}},
        "5": {"class_type": "AdaptiveDiffusionKSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": steps, "cfg": 2.0, "sampler_name": sampler, "scheduler": "simple",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0,
            "threshold": threshold, "max_skip_steps": 4, "warmup_steps": 4, "reuse": "auto", "criterion": "error"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 1], "filename_prefix": "skip_map"}},
    }


def test_object_info_lists_nodes_with_widgets_and_tooltips(server):
    info = server.get("/object_info")
    for node_id in NODE_IDS:
        assert node_id in info, node_id
        node = info[node_id]
        assert node["category"].split("/")[:2] == ["sampling", "adaptive"]
        inputs = {**node["input"]["required"], **node["input"].get("optional", {})}
        for name, spec in inputs.items():
            assert spec[1].get("tooltip"), (node_id, name)
    core = list(info["KSampler"]["input"]["required"])
    # KSampler's inputs, names and order, then ours; criterion is optional, so workflows saved before it
    # existed still queue
    for node, stock_node in (("AdaptiveDiffusionKSampler", "KSampler"), ("AdaptiveDiffusionKSamplerAdvanced", "KSamplerAdvanced")):
        assert list(info[node]["input"]["required"]) == list(info[stock_node]["input"]["required"]) + [
            "threshold", "max_skip_steps", "warmup_steps", "reuse"]
        assert list(info[node]["input"]["optional"]) == ["criterion"]
    # the bundled sidecar is listed through the folder the extension registers
    sidecars = info["AdaptiveDiffusionEarlyExit"]["input"]["required"]["sidecar"][1]["options"]
    assert {"demo_wan21_uem.safetensors", "demo_wan21_uem_heads.safetensors"} <= set(sidecars)
    threshold = info["AdaptiveDiffusionKSampler"]["input"]["required"]["threshold"][1]
    assert threshold["default"] == 0.005 and threshold["min"] == 0.0 and threshold["max"] == 1.0
    required = info["AdaptiveDiffusionKSampler"]["input"]["required"]
    assert required["reuse"][1]["default"] == "auto"
    assert required["max_skip_steps"][1]["default"] == 4 and required["warmup_steps"][1]["default"] == 2


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
                                                steps=10, threshold=0.05))
    prompt["8"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 1], "filename_prefix": "hires_skip_map"}}
    status, body = server.post_prompt(prompt)
    assert status == 200, body
    outputs = server.wait_for(body["prompt_id"])["outputs"]
    first = json.loads(outputs["5"]["adaptive_diffusion"][0])
    second = json.loads(outputs["7"]["adaptive_diffusion"][0])
    assert len(first["steps"]) == 20 and len(second["steps"]) == 10
    assert [s["reason"] for s in second["steps"][:4]] == ["warmup"] * 4


WIDGETS = ["seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "threshold", "max_skip_steps",
           "warmup_steps", "reuse", "criterion", "prompt", "sidecar", "decide"]
BAD_INPUTS = [("threshold", -0.1), ("threshold", math.nan), ("threshold", 1.5), ("threshold", math.inf),
              ("max_skip_steps", -1), ("max_skip_steps", 101), ("max_skip_steps", 1e12), ("warmup_steps", -3),
              ("warmup_steps", 10001), ("reuse", "cubic"), ("criterion", "second_order"), ("sampler_name", "nope"),
              ("scheduler", "nope"),
              ("cfg", math.nan), ("cfg", 101.0), ("denoise", math.nan), ("denoise", -0.5), ("steps", 0)]


def named_widgets(errors):
    """The widgets the errors' texts name. ComfyUI files a node's validate_inputs message under every
    input it takes ("cfg - <message>"); what counts is the message after that prefix."""
    said = " ".join(e["message"] + " " + e["details"].split(" - ", 1)[-1] for e in errors)
    return {w for w in WIDGETS if re.search(rf"\b{w}\b", said)}


def rejected(server, prompt, node):
    status, body = server.post_prompt(prompt)
    assert status == 400, body
    return body["node_errors"][node]["errors"]


@pytest.mark.parametrize("widget,value", BAD_INPUTS)
def test_invalid_widget_rejected_at_queue_time_naming_it(server, widget, value):
    prompt = workflow()
    prompt["5"]["inputs"][widget] = value
    assert named_widgets(rejected(server, prompt, "5")) == {widget}


def test_a_missing_widget_is_named_on_its_own_node(server):
    prompt = workflow()
    del prompt["5"]["inputs"]["reuse"]
    errors = rejected(server, prompt, "5")
    assert named_widgets(errors) == {"reuse"} and errors[0]["type"] == "required_input_missing", errors


def test_unknown_demo_prompt_rejected_at_queue_time(server):
    prompt = workflow()
    prompt["2"] = {"class_type": "AdaptiveDiffusionDemoPrompt", "inputs": {"prompt": "a dragon"}}
    assert named_widgets(rejected(server, prompt, "2")) == {"prompt"}


@pytest.mark.parametrize("widget,value", [("threshold", math.nan), ("decide", "per_step")])
def test_bad_early_exit_widget_rejected_at_queue_time(server, widget, value):
    prompt = workflow()
    prompt["9"] = {"class_type": "AdaptiveDiffusionEarlyExit",
                   "inputs": {"model": ["1", 0], "sidecar": "demo_wan21_uem_heads.safetensors", "threshold": -1.0,
                              "decide": "per_call", widget: value}}
    prompt["5"]["inputs"]["model"] = ["9", 0]
    assert named_widgets(rejected(server, prompt, "9")) == {widget}


def test_a_workflow_saved_before_the_criterion_widget_still_queues(server):
    prompt = workflow(seed=41)
    del prompt["5"]["inputs"]["criterion"]
    status, body = server.post_prompt(prompt)
    assert status == 200, body
    report = json.loads(server.wait_for(body["prompt_id"])["outputs"]["5"]["adaptive_diffusion"][0])
    assert report["criterion"] == "error"


def test_server_stays_up_and_repeats_a_good_prompt_bit_for_bit_after_bad_ones(server):
    def latent_of(seed):
        prompt = workflow(seed=seed)
        prompt["9"] = {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "repeat"}}
        status, body = server.post_prompt(prompt)
        assert status == 200, body
        saved = server.wait_for(body["prompt_id"])["outputs"]["9"]["latents"][0]
        return safetensors.torch.load_file(str(server.output_file(saved)))["latent_tensor"]

    first = latent_of(31)
    for widget, value in BAD_INPUTS:
        prompt = workflow(seed=31)
        prompt["5"]["inputs"][widget] = value
        assert server.post_prompt(prompt)[0] == 400
    # drop ComfyUI's node cache (it is dropped after the next prompt), so the repeat really samples again
    request = urllib.request.Request(server.url + "/free", data=json.dumps({"free_memory": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    latent_of(32)
    assert torch.equal(latent_of(31), first)
