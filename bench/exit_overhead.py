"""What the early-exit heads cost when nothing exits, at a real model's width: the demo model's
blocks (dim 128, 16 tokens) take so little time that a few small tensor operations per block show
as several per cent, which says little about a real model.

ComfyUI's Wan 2.1 architecture at the 1.3B model's width (dim 1536, ffn 8960, 12 heads; --blocks
of its 30, since the heads' share per block does not depend on the depth), random weights saved
and read back through ComfyUI's own loader, one 480x832 frame (1560 tokens), a 512-token text
context, euler, cfg 1 (one pass per step). Arms as in bench/early_exit.py: the block patches alone
(no head to compute), per_block and per_call with every head computed and never certain enough;
per repeat against the unpatched model in the same repeat, medians (timing.wall_ratios).

    .runtime/0.33.0/venv/bin/python bench/exit_overhead.py [--blocks 2 --steps 3 --repeats 5]

Writes docs/bench/early_exit/overhead_wide.json.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports ComfyUI and this extension)
import early_exit  # noqa: E402
from timing import wall_ratios  # noqa: E402
import comfy.ldm.wan.model  # noqa: E402
import comfy.ops  # noqa: E402
import comfy.sd  # noqa: E402
import nodes  # noqa: E402
import safetensors.torch  # noqa: E402

from adaptive_diffusion.adaptive_core import UncertaintyHeads  # noqa: E402

OUT = harness.REPO / "docs" / "bench" / "early_exit"
WIDTH = {"dim": 1536, "ffn_dim": 8960, "num_heads": 12}  # Wan 2.1 T2V 1.3B
LATENT = (1, 16, 1, 60, 104)  # one 480x832 frame


def wide_wan(blocks, directory):
    network = comfy.ldm.wan.model.WanModel(num_layers=blocks, device="cpu", operations=comfy.ops.disable_weight_init,
                                           **WIDTH)
    generator = torch.Generator().manual_seed(0)
    weights = {k: (torch.randn(v.shape, generator=generator) * 0.02).half() for k, v in network.state_dict().items()}
    path = pathlib.Path(directory) / "wan21_1.3b_width.safetensors"
    safetensors.torch.save_file(weights, str(path))
    return comfy.sd.load_diffusion_model(str(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as directory:
        model = wide_wan(args.blocks, directory)
    context = [[torch.randn((1, 512, 4096), generator=torch.Generator().manual_seed(1)) * 0.1, {}]]
    heads = UncertaintyHeads(args.blocks, WIDTH["dim"])  # zero weights: certainty 0.5 everywhere
    arms = {name: early_exit.never_exiting(model, heads, decide) for name, decide in early_exit.OVERHEAD_ARMS}
    def run(patcher):
        return nodes.common_ksampler(patcher, 0, args.steps, 1.0, "euler", "simple", context, context,
                                     {"samples": torch.zeros(LATENT)})
    base, ratios = wall_ratios(lambda: run(model), {name: (lambda p=p: run(p)) for name, p in arms.items()},
                               args.repeats)
    result = {"model": f"Wan 2.1 architecture at 1.3B width {WIDTH}, {args.blocks} blocks", "latent": LATENT,
              "steps": args.steps, "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
              "seconds_per_pass_original": base / args.steps,
              "overhead": {name: ratio - 1 for name, ratio in ratios.items()},
              "seconds": time.time() - started}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "overhead_wide.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
