"""The data-free heads trainer in the real ComfyUI runtime: the Train AdaDiff Heads node and
scripts/train_early_exit.py on the demo model, its held-out runs, calibration and resuming."""
import json
import subprocess
import sys

import torch

import comfy_runtime

comfy_runtime.import_comfy()
comfy_runtime.import_extension()
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.sidecar import check_matches, load_sidecar  # noqa: E402


def _train(out, *args):
    return subprocess.run([sys.executable, str(comfy_runtime.REPO / "scripts" / "train_early_exit.py"), "--demo",
                           "--seeds", "0", "--steps", "8", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=900)


def test_train_heads_node_calibrates_on_a_whole_held_out_run(demo, tmp_path, monkeypatch):
    import folder_paths
    from adaptive_diffusion.nodes.exit_training import AdaptiveDiffusionTrainHeads
    monkeypatch.setattr(folder_paths, "models_dir", str(tmp_path))
    out = AdaptiveDiffusionTrainHeads.execute(demo.patcher, demo.make_cond(1), demo.make_cond(2),
                                              {"samples": torch.zeros(WAN_DEMO.empty_latent)}, seeds=4, steps=16,
                                              cfg=3.0, sampler_name="euler", scheduler="simple", train_steps=5,
                                              filename="node_heads")
    assert out.result == ("node_heads.safetensors",)
    heads, backbone, metadata = load_sidecar(tmp_path / "adaptive_diffusion" / "node_heads.safetensors")
    # seeds 0-2 train; seed 3's 16 calls (cond and uncond: 32 samples) calibrate, in two σ bands
    assert metadata["calls"] == "64" and metadata["calibration_samples"] == "32" and metadata["steps"] == "5"
    assert len(json.loads(metadata["calibration"])["knots"]) == 2
    check_matches(metadata, demo.patcher.get_model_object("diffusion_model"), "uem")


def test_data_free_trainer_lowers_its_held_out_loss_and_resumes_bit_identically(demo, tmp_path):
    straight, resumed = tmp_path / "straight" / "uem.safetensors", tmp_path / "resumed" / "uem.safetensors"
    result = _train(straight, "--train-steps", "40", "--checkpoint-every", "20")
    assert result.returncode == 0, result.stderr[-2000:]
    history = torch.load(straight.with_suffix(".checkpoint.pt"), weights_only=False)["history"]
    held = [h["held_out"] for h in history if "held_out" in h]
    assert len(held) == 3 and held[0] > held[1] > held[2] and held[2] < 0.5 * held[0], held
    heads, backbone, metadata = load_sidecar(straight)
    # two of the eight runs held out whole: 16 calls, 32 samples at 8 σ levels, two bands
    calibration = json.loads(metadata["calibration"])
    assert metadata["mode"] == "heads" and backbone is None and metadata["calibration_samples"] == "32"
    assert len(calibration["edges"]) == 1 and len(calibration["knots"]) == 2
    # calibrated again on every call of 4 seeds (512 samples, 8 σ levels): five bands, two levels each
    again = _train(tmp_path / "calibrated.safetensors", "--calibrate", str(straight), "--seeds", "0", "1", "2", "3")
    assert again.returncode == 0, again.stderr[-2000:]
    calibration = json.loads(load_sidecar(tmp_path / "calibrated.safetensors")[2]["calibration"])
    assert len(calibration["knots"]) == 5 and len(calibration["edges"]) == 4
    assert calibration["edges"] == sorted(calibration["edges"], reverse=True)
    check_matches(metadata, demo.patcher.get_model_object("diffusion_model"), "uem")
    assert _train(resumed, "--train-steps", "40", "--checkpoint-every", "20", "--stop-after", "20").returncode == 0
    assert not resumed.exists()
    again = _train(resumed, "--train-steps", "40", "--checkpoint-every", "20", "--resume")
    assert "resumed from" in again.stdout and again.returncode == 0
    a, b = load_sidecar(straight)[0].state_dict(), load_sidecar(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
