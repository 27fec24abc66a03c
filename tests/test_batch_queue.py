"""Batch queueing through the HTTP API: many prompts at once, nothing leaks between them."""
import csv
import json
import subprocess
import sys
import time

import pytest
import safetensors.torch
import torch

import comfy_runtime
import tiny_models
from sampling import adaptive

sys.path.insert(0, str(comfy_runtime.REPO / "scripts"))
from comfy_server import ComfyServer  # noqa: E402

pytestmark = pytest.mark.slow
WORKFLOW = comfy_runtime.REPO / "example_workflows" / "demo_model_adaptive_ksampler_api.json"


@pytest.fixture(scope="module")
def server(comfy, tmp_path_factory):
    with ComfyServer(comfy_runtime.COMFYUI, tmp_path_factory.mktemp("comfy")) as s:
        yield s


def settings(workflow):
    """The AdaptiveDiffusion widgets of the example workflow's sampler."""
    inputs = workflow["5"]["inputs"]
    return {k: inputs[k] for k in ("threshold", "max_skip_steps", "warmup_steps", "reuse", "criterion")}


def queue(server, workflow_path, out, *args):
    return subprocess.run([sys.executable, str(comfy_runtime.REPO / "scripts" / "queue_batch.py"), str(workflow_path),
                           "--url", server.url, "--out", str(out), *args], capture_output=True, text=True, timeout=600)


def test_batch_of_prompts_matches_in_process_runs(server, tmp_path):
    workflow = json.loads(WORKFLOW.read_text())
    workflow["9"] = {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "latent"}}
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))
    result = queue(server, path, tmp_path / "out", "--seeds", "2", "--threshold", "0.01", "0.05", "-1",
                   "--reuse", "hold", "linear", "--sampler", "euler", "dpmpp_2m")
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert len(rows) == 12, result.stderr
    demo = tiny_models.demo()
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert len(rejected) == 4 and all("threshold" in r["error"] for r in rejected)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 8, result.stderr
    assert result.returncode == 1 and "threshold" in result.stderr
    for row in done:
        folder = tmp_path / "out" / f"{int(row['index']):04d}"
        latent = safetensors.torch.load_file(str(next(folder.glob("9_*.latent"))))["latent_tensor"]
        report = json.loads((folder / "5_report.json").read_text())
        # the same settings in this process, on the same model file and prompts
        samples, skip_map, expected = adaptive(demo, row["sampler"], steps=50, cfg=3.0, seed=int(row["seed"]), **dict(
            settings(workflow), threshold=float(row["threshold"]), reuse=row["reuse"]))
        assert torch.equal(latent, samples), row
        for r in (report, expected):
            r["totals"].pop("sampling_seconds")
        assert report == expected
        from PIL import Image
        import numpy as np
        png = np.asarray(Image.open(next(folder.glob("6_skip_map*.png"))).convert("RGB"))
        assert np.array_equal(png, (skip_map[0].numpy() * 255).round().astype(np.uint8))
        assert int(row["network_calls"]) == report["totals"]["network_calls"]


def test_unreachable_server_is_a_clear_error(tmp_path):
    class Nowhere:
        url = "http://127.0.0.1:9"
    result = queue(Nowhere, WORKFLOW, tmp_path / "out", "--seeds", "1")
    assert result.returncode == 2 and "cannot reach ComfyUI" in result.stderr


def test_ui_format_workflow_is_refused_with_advice(server, tmp_path):
    result = queue(server, comfy_runtime.REPO / "example_workflows" / "demo_model_adaptive_ksampler.json", tmp_path / "out")
    assert result.returncode == 2 and "Export (API)" in result.stderr


def test_a_repeated_prompt_comes_from_the_cache_and_says_so(server, tmp_path):
    from adaptive_diffusion.nodes.widgets import REPORT_WHEN_CACHED
    result = queue(server, WORKFLOW, tmp_path / "out", "--seeds", "7", "--repeat", "2")
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [r["status"] for r in rows] == ["done", "done"], result.stderr
    assert [r["index"] for r in rows] == ["0", "1"]  # prompt order, whichever finished first
    assert [r["from_cache"] for r in rows] == ["", "yes"]
    assert "1 prompt(s) repeated an earlier one and came from ComfyUI's cache" in result.stdout
    first, second = (tmp_path / "out" / f"{i:04d}" / "5_report.json" for i in (0, 1))
    if REPORT_WHEN_CACHED:  # ComfyUI 0.33 and newer send the cached node's report again
        assert second.read_text() == first.read_text() and rows[1]["network_calls"] == rows[0]["network_calls"]
    else:
        assert not second.exists() and rows[1]["network_calls"] == ""


def test_server_killed_mid_batch_then_resume_loses_nothing(comfy, tmp_path):
    out, seeds = tmp_path / "out", [str(s) for s in range(41, 47)]
    results = out / "results.csv"
    workflow = json.loads(WORKFLOW.read_text())
    workflow["9"] = {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "latent"}}
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))

    def done_rows():
        return [r for r in csv.DictReader(open(results))] if results.exists() else []

    with ComfyServer(comfy_runtime.COMFYUI, tmp_path / "first") as first:
        batch = subprocess.Popen([sys.executable, str(comfy_runtime.REPO / "scripts" / "queue_batch.py"), str(path),
                                  "--url", first.url, "--out", str(out), "--seeds", *seeds],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while len(done_rows()) < 2 and time.time() < deadline and batch.poll() is None:
            time.sleep(0.2)
        first.process.kill()
        _, stderr = batch.communicate(timeout=120)
    before = done_rows()
    assert batch.returncode == 2 and "go on with --resume" in stderr and "Traceback" not in stderr, stderr
    assert 2 <= len(before) < len(seeds) and all(r["status"] == "done" for r in before)
    # every complete folder has its row; nothing half-downloaded is left under a final name
    assert {p.name for p in out.iterdir() if p.is_dir() and not p.name.endswith(".partial")} == \
        {f"{int(r['index']):04d}" for r in before}

    class Gone:
        url = first.url
    refused = queue(Gone, path, out, "--seeds", *seeds)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never mixed into silently
    with ComfyServer(comfy_runtime.COMFYUI, tmp_path / "second") as second:
        resumed = queue(second, path, out, "--seeds", *seeds, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    after = done_rows()
    assert after[:len(before)] == before  # the finished rows, untouched
    assert sorted(int(r["index"]) for r in after) == list(range(len(seeds)))
    assert not list(out.glob("*.partial"))
    demo = tiny_models.demo()
    for row in after:
        latent = safetensors.torch.load_file(str(next((out / f"{int(row['index']):04d}").glob("9_*.latent"))))
        samples, _, _ = adaptive(demo, "euler", steps=50, cfg=3.0, seed=int(row["seed"]),
                                 **settings(json.loads(WORKFLOW.read_text())))
        assert torch.equal(latent["latent_tensor"], samples), row


def test_three_servers_one_killed_mid_batch_lose_nothing(comfy, tmp_path):
    """100 prompts spread over three real servers; one is killed mid-batch: its unfinished prompts
    run on the others, every result is kept, and every latent is bit-identical to one process's."""
    seeds = [str(s) for s in range(100, 200)]
    workflow = json.loads(WORKFLOW.read_text())
    workflow["5"]["inputs"]["steps"] = 12
    workflow["9"] = {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "latent"}}
    path, out = tmp_path / "workflow.json", tmp_path / "out"
    path.write_text(json.dumps(workflow))
    with ComfyServer(comfy_runtime.COMFYUI, tmp_path / "a") as a, ComfyServer(comfy_runtime.COMFYUI, tmp_path / "b") as b, \
            ComfyServer(comfy_runtime.COMFYUI, tmp_path / "c") as c:
        batch = subprocess.Popen([sys.executable, str(comfy_runtime.REPO / "scripts" / "queue_batch.py"), str(path),
                                  "--url", a.url, b.url, c.url, "--out", str(out), "--seeds", *seeds],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while time.time() < deadline and batch.poll() is None and \
                (not (out / "results.csv").exists() or len((out / "results.csv").read_text().splitlines()) < 21):
            time.sleep(0.2)
        b.process.kill()
        _, stderr = batch.communicate(timeout=600)
    assert batch.returncode == 0, stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(int(r["index"]) for r in rows) == list(range(len(seeds)))
    assert all(r["status"] == "done" for r in rows)
    demo = tiny_models.demo()
    mismatches = 0
    for row in rows:
        latent = safetensors.torch.load_file(str(next((out / f"{int(row['index']):04d}").glob("9_*.latent"))))
        samples, _, _ = adaptive(demo, "euler", steps=12, cfg=3.0, seed=int(row["seed"]),
                                 **settings(json.loads(WORKFLOW.read_text())))
        mismatches += not torch.equal(latent["latent_tensor"], samples)
    assert mismatches == 0
