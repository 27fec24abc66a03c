"""AdaDiff early exit in the real ComfyUI runtime: every family's block patches, the sidecar and its
calibration, the bundled demo sidecar (the trainer: test_exit_training.py)."""
import json
import math

import pytest
import safetensors.torch
import torch

from sampling import AdaptiveDiffusionKSampler, stock, with_patcher

import comfy_runtime
import tiny_dits
import tiny_models
from adaptive_diffusion.adaptive_core import UncertaintyHeads  # noqa: E402
from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.early_exit import (AdaptiveDiffusionEarlyExit, AdaptiveDiffusionLayerMap,  # noqa: E402
                                                 exit_holder_of, patch_early_exit, same_every_step, thresholds)
from adaptive_diffusion.nodes.exits import layout_of  # noqa: E402
from adaptive_diffusion.nodes.sidecar import check_matches, fingerprint, load_sidecar, save_sidecar  # noqa: E402

SIDECAR = "demo_wan21_uem_heads.safetensors"  # the data-free heads of the demo model (scripts/train_early_exit.py --demo)
FAMILIES = ["wan21", "wan21_vace", "sd3", "flux", "flux2", "chroma", "hunyuan_video", "qwen_image", "ltxv"]


@pytest.fixture(scope="module")
def exit_families(comfy, model_dir):
    return tiny_dits.exit_families(model_dir)


def blocks_of(model):
    diffusion_model = model.patcher.get_model_object("diffusion_model")
    return [block for stage, _ in layout_of(diffusion_model).stages for block in getattr(diffusion_model, stage.attribute)]


def exit_after(model, block):
    """Heads that are certain after ``block`` and nowhere before it; every block may exit."""
    hidden = []
    handle = blocks_of(model)[0].register_forward_hook(lambda m, a, out: hidden.append(out))
    try:
        stock(model, steps=1)
    finally:
        handle.remove()
    out = hidden[0][-1] if isinstance(hidden[0], tuple) else hidden[0]  # (txt, img) or img
    heads = UncertaintyHeads(len(blocks_of(model)), out.shape[-1])
    with torch.no_grad():
        for i, layer in enumerate(heads.token):
            layer.bias.fill_(20.0 if i == block else -20.0)
    return heads, same_every_step([0.9] * heads.blocks)


class BlockCounter:
    def __init__(self, model):
        self.counts = [0] * len(blocks_of(model))
        self.handles = [block.register_forward_hook(self.hook(i)) for i, block in enumerate(blocks_of(model))]

    def hook(self, i):
        def count(module, args, output):
            self.counts[i] += 1
        return count

    def remove(self):
        for handle in self.handles:
            handle.remove()


def counted(model, patched, **kwargs):
    counter = BlockCounter(model)
    try:
        return stock(with_patcher(model, patched), **kwargs), counter.counts
    finally:
        counter.remove()


@pytest.mark.parametrize("family", FAMILIES)
def test_exit_fires_and_later_blocks_are_not_executed(exit_families, family):
    model = exit_families[family]
    heads, needed = exit_after(model, 0)
    patched = patch_early_exit(model.patcher, heads, needed, 0.9)
    samples, counts = counted(model, patched, steps=4)
    report = exit_holder_of(patched).last_report
    assert report.calls == 4 and torch.isfinite(samples).all()
    assert len(counts) >= 2 and counts == [4] + [0] * (len(counts) - 1), counts
    assert report.blocks_evaluated == 4 and all(s["mean_exit_block"] == 0 for s in report.as_dict()["steps"])
    assert not torch.equal(samples, stock(model, steps=4))


@pytest.mark.parametrize("family", FAMILIES)
def test_no_reachable_threshold_is_bit_identical_to_no_exit(exit_families, family):
    model = exit_families[family]
    heads, _ = exit_after(model, 0)
    patched = patch_early_exit(model.patcher, heads, same_every_step([math.inf] * heads.blocks), 1.01)
    samples, counts = counted(model, patched, steps=4)
    assert torch.equal(samples, stock(model, steps=4)) and counts == [4] * len(counts)


def test_per_call_decides_from_the_previous_pass_with_one_read_each(demo, monkeypatch):
    heads, needed = exit_after(demo, 0)
    patched = patch_early_exit(demo.patcher, heads, needed, 0.9, decide="per_call")
    reads = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: reads.append(t.numel()) or original(t))
    _, counts = counted(demo, patched, steps=5)
    monkeypatch.undo()
    report = exit_holder_of(patched).last_report
    # the first pass knows no certainty yet and runs every block; each later one exits after block 0
    assert [s["mean_blocks"] for s in report.as_dict()["steps"]] == [len(counts), 1, 1, 1, 1]
    assert counts == [5] + [1] * (len(counts) - 1)
    # the schedule once per run; then one read per forward pass: its σ, with the last pass's
    # certainties (every judged block after the first pass, then block 0 only)
    assert reads == [6, 1, len(counts)] + [2] * 3


@pytest.mark.parametrize("name", ["CausalWanModel", "NextDiT", "HiDreamImageTransformer2DModel"])
def test_models_that_ignore_block_patches_are_refused(comfy, name):
    """The causal Wan runs its blocks directly in AR mode; Lumina 2 / Z-Image (NextDiT) and HiDream
    have no block patches at all: each is a clear error, never a silent no-op."""
    import importlib
    where = {"CausalWanModel": "comfy.ldm.wan.ar_model", "NextDiT": "comfy.ldm.lumina.model",
             "HiDreamImageTransformer2DModel": "comfy.ldm.hidream.model"}[name]
    try:
        cls = getattr(importlib.import_module(where), name)
    except ImportError:  # ComfyUI before 0.33 has no causal Wan model
        assert name == "CausalWanModel" and not comfy_runtime.COMFYUI.joinpath("comfy/ldm/wan/ar_model.py").exists()
        return
    model = torch.nn.Module.__new__(cls)  # the class is what is judged; no weights needed
    model.__dict__.update(torch.nn.Module().__dict__)
    message = "causal/autoregressive Wan model" if name == "CausalWanModel" else "no block-replacement patches"
    with pytest.raises(ValueError, match=message):
        layout_of(model)


def test_a_model_that_bypasses_the_block_patches_is_a_clear_error(wan):
    """Another pack that replaces the same blocks (one slot per block in ComfyUI) would leave the
    exit patches unreached: the run stops with an error instead of silently never exiting."""
    heads, needed = exit_after(wan, 0)
    patched = patch_early_exit(wan.patcher, heads, needed, 0.9)
    for i in range(len(blocks_of(wan))):
        patched.set_model_patch_replace(lambda args, extra: extra["original_block"](args), "dit", "double_block", i)
    with pytest.raises(RuntimeError, match="without going through ComfyUI's block replacement patches"):
        stock(with_patcher(wan, patched), steps=4)


def test_bundled_sidecar_above_one_is_bit_identical_and_below_exits(demo):
    above = AdaptiveDiffusionEarlyExit.execute(demo.patcher, SIDECAR, 1.01).result[0]
    samples, counts = counted(demo, above, steps=12, cfg=3.0)
    assert torch.equal(samples, stock(demo, steps=12, cfg=3.0)) and len(set(counts)) == 1
    assert "no exits" in exit_holder_of(above).last_report.summary()
    recommended = AdaptiveDiffusionEarlyExit.execute(demo.patcher, SIDECAR, -1.0).result[0]
    _, counts = counted(demo, recommended, steps=12, cfg=3.0)
    report = exit_holder_of(recommended).last_report
    assert report.threshold == float(load_sidecar(comfy_runtime.REPO / "assets/early_exit" / SIDECAR)[2]
                                     ["recommended_threshold"])
    assert sum(counts) == report.blocks_evaluated < 12 * len(counts)


def test_a_sidecar_calibrated_before_the_sigma_bands_reads_as_one_band():
    tables = [[[0.0, 0.4], [1.0, 0.0]]] * 2  # per block: the error falls from 0.4 at certainty 0 to 0 at 1
    old = thresholds({"calibration": json.dumps(tables)}, 2, 0.97)[1]
    banded = thresholds({"calibration": json.dumps({"edges": [], "knots": [tables]})}, 2, 0.97)[1]
    schedule = [10.0, 9.0, 4.5, 0.0]  # step sizes 0.1, 0.5, 1: the first step may take 0.03 · (1.6/3) / 0.1
    assert old(schedule) == banded(schedule)
    assert old(schedule)[0] == pytest.approx([1 - 0.03 * (1.6 / 3) / 0.1 / 0.4] * 2)


def test_mismatched_sidecars_are_refused(demo, wan, tmp_path):
    with pytest.raises(ValueError, match="trained for demo_wan21.safetensors, a different architecture"):
        AdaptiveDiffusionEarlyExit.execute(wan.patcher, SIDECAR, 0.9)
    weights = safetensors.torch.load_file(str(WAN_DEMO.file))
    safetensors.torch.save_file({k: v * 1.5 for k, v in weights.items()}, str(tmp_path / "other.safetensors"))
    other = tiny_models.load_file_model(tmp_path / "other.safetensors")  # same architecture, other weights
    _, _, metadata = load_sidecar(comfy_runtime.REPO / "assets/early_exit" / SIDECAR)
    with pytest.raises(ValueError, match="same architecture but other weights"):
        check_matches(metadata, other.get_model_object("diffusion_model"), SIDECAR)
    (tmp_path / "not_a_sidecar.safetensors").write_bytes(WAN_DEMO.prompts_file.read_bytes())
    with pytest.raises(ValueError, match="is not an AdaptiveDiffusion early-exit sidecar"):
        load_sidecar(tmp_path / "not_a_sidecar.safetensors")


def test_sidecar_round_trips_exactly(demo, tmp_path):
    heads, _ = exit_after(demo, 3)
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


def test_layer_map_node_and_composition_with_step_skipping(demo):
    patched = AdaptiveDiffusionEarlyExit.execute(demo.patcher, SIDECAR, 0.9).result[0]
    counter = BlockCounter(demo)
    try:
        out = AdaptiveDiffusionKSampler.execute(patched, 1, 30, 3.0, "euler", "simple", demo.make_cond(1),
                                                demo.make_cond(2), {"samples": torch.zeros(WAN_DEMO.empty_latent)},
                                                1.0, 0.005, 4, 2, "auto").result
    finally:
        counter.remove()
    skips = json.loads(out[2])
    exits = exit_holder_of(patched).last_report
    assert 0 < skips["totals"]["network_calls"] < 30
    assert exits.calls == skips["totals"]["network_calls"]  # a skipped step never reaches the blocks
    assert {s.step for s in exits.steps} == {s["step"] for s in skips["steps"] if s["computed"]}
    image, text = AdaptiveDiffusionLayerMap.execute(patched, out[0]).result
    # the blocks that really ran, counted by hooks on the blocks themselves
    assert json.loads(text)["totals"]["blocks_evaluated"] == sum(counter.counts) < exits.calls * len(counter.counts)
    assert image.ndim == 4
    with pytest.raises(ValueError, match="not patched by Apply AdaDiff Early Exit"):
        AdaptiveDiffusionLayerMap.execute(demo.patcher, out[0])
