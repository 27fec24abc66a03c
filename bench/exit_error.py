"""How far each exit is from the full model, and what the heads say about it, per noise level.

    .runtime/0.33.0/venv/bin/python bench/exit_error.py     # about a minute

For 64 noised data samples of the demo model at each σ, with each bundled sidecar: the mean
certainty after every block, and the mean absolute difference between the exit's output (the
velocity) and the full model's. Writes docs/bench/early_exit/exit_error.md.
"""
import pathlib
import sys

import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import train_early_exit  # noqa: E402  (imports ComfyUI)

import comfy.sd  # noqa: E402

from adaptive_diffusion.nodes.demo_models import WAN_DEMO  # noqa: E402
from adaptive_diffusion.nodes.sidecar import BUNDLED, load_sidecar  # noqa: E402

SIGMAS = [0.99, 0.9, 0.7, 0.5, 0.3, 0.1, 0.02]


def main():
    torch.set_num_threads(1)
    lines = ["# Exit error and certainty per block (demo model, 64 noised data samples per σ)", ""]
    for name in ("demo_wan21_uem_heads.safetensors", "demo_wan21_uem_full.safetensors"):
        heads, backbone, metadata = load_sidecar(BUNDLED / name)
        patcher = comfy.sd.load_diffusion_model(str(WAN_DEMO.file))
        diffusion_model, model_sampling = patcher.model.diffusion_model.float(), patcher.model.model_sampling
        if backbone:
            diffusion_model.load_state_dict({k: v.float() for k, v in backbone.items()})
        generator = torch.Generator().manual_seed(5)
        x0, context = next(train_early_exit.demo_batches(64, generator))
        noise = torch.randn(x0.shape, generator=generator)
        lines += [f"## {name} ({metadata['mode']}; certainty = {metadata.get('certainty_labels', '?')})", "",
                  "| σ | " + " | ".join(f"block {i}" for i in range(heads.blocks)) + " |",
                  "|---|" + "---|" * heads.blocks]
        for s in SIGMAS:
            sigma = torch.full((64,), s)
            x = model_sampling.noise_scaling(sigma, noise, x0)
            with torch.no_grad():
                outputs, hidden = train_early_exit.exit_outputs(
                    diffusion_model, heads.blocks, x, model_sampling.timestep(sigma), context, sigma)
                cells = [f"{float(heads(i, h, sigma).mean()):.2f} / {float((o - outputs[-1]).abs().mean()):.3f}"
                         for i, (h, o) in enumerate(zip(hidden, outputs))]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines += ["", "Cells: mean certainty / mean |exit output - full output|.", ""]
    lines.append("Reproduce: .runtime/0.33.0/venv/bin/python bench/exit_error.py")
    (REPO / "docs" / "bench" / "early_exit" / "exit_error.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
