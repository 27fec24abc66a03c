"""AdaDiff sidecar files: the uncertainty heads (and, after a full fine-tune, the tuned backbone)
for one specific model, in the models folder ComfyUI knows as ``adaptive_diffusion``."""
import hashlib
import json
import os
import pathlib

import folder_paths
import safetensors
import safetensors.torch
import torch

from ..adaptive_core.calibration import fit_calibration
from ..adaptive_core.uncertainty import UncertaintyHeads

FOLDER = "adaptive_diffusion"
FORMAT = "adaptive-diffusion-uem/1"
BUNDLED = pathlib.Path(__file__).resolve().parents[1] / "assets" / "early_exit"
HEADS_PREFIX, BACKBONE_PREFIX = "heads.", "backbone."
# fp8/fp16/bf16 loads of the same file differ this much in the weight checksum
CHECKSUM_TOLERANCE = 0.02


def register_sidecar_folder():
    """models/adaptive_diffusion (ComfyUI's models dir) plus the bundled sidecars."""
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[FOLDER] = (
            [os.path.join(folder_paths.models_dir, FOLDER)], set(folder_paths.supported_pt_extensions))
    folder_paths.add_model_folder_path(FOLDER, str(BUNDLED))


def fingerprint(diffusion_model):
    """Which model a sidecar belongs to: its architecture (every parameter's name and shape) and a
    checksum of the first and last parameter tensors (cheap even for 14B models)."""
    named = list(diffusion_model.named_parameters())
    architecture = hashlib.sha256(json.dumps([(n, list(p.shape)) for n, p in named]).encode()).hexdigest()[:16]
    checksum = sum(float(p.detach().double().abs().sum()) for _, p in named[:2] + named[-2:])
    return {"architecture": architecture, "checksum": checksum}


# what Apply AdaDiff Early Exit uses when its threshold is left at -1, unless the sidecar says otherwise:
# on the demo model (bench/exit_recognition.py, 192 pairs) q 0.99 keeps recognition within a point of
# full depth, alone and under step skipping; 0.98 loses 4.7 points and leaves 21 dB of the full picture
RECOMMENDED = 0.99


def calibrated(info, certainties, errors, sigmas, recommended=RECOMMENDED):
    """``info`` plus the calibration that makes a sidecar's threshold mean one thing everywhere:
    per band of σ and block, the expected relative error of exiting there for each level of raw
    certainty, fitted on held-out samples (certainties and relative exit errors: (blocks, samples);
    sigmas: (samples,))."""
    calibration = fit_calibration(certainties, errors, sigmas)
    return {**info, "calibration": json.dumps(calibration), "calibration_samples": certainties.shape[1],
            "recommended_threshold": info.get("recommended_threshold", recommended)}


def save_sidecar(path, heads: UncertaintyHeads, model_fingerprint, info, backbone=None):
    tensors = {HEADS_PREFIX + k: v.detach().float().contiguous() for k, v in heads.state_dict().items()}
    if backbone is not None:
        tensors.update({BACKBONE_PREFIX + k: v.detach().to(torch.float16).contiguous() for k, v in backbone.items()})
    metadata = {"format": FORMAT, "blocks": str(heads.blocks), "hidden_size": str(heads.hidden_size),
                "architecture": model_fingerprint["architecture"], "checksum": repr(model_fingerprint["checksum"]),
                **{k: str(v) for k, v in info.items()}}
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)


def load_sidecar(path):
    """(heads, backbone state dict or None, metadata); raises ValueError for a file that is not one."""
    with safetensors.safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{pathlib.Path(path).name} is not an AdaptiveDiffusion early-exit sidecar "
                             f"(format {metadata.get('format')!r}, expected {FORMAT!r})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    heads = UncertaintyHeads(int(metadata["blocks"]), int(metadata["hidden_size"]))
    heads.load_state_dict({k[len(HEADS_PREFIX):]: v for k, v in tensors.items() if k.startswith(HEADS_PREFIX)})
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in tensors.items() if k.startswith(BACKBONE_PREFIX)}
    return heads, backbone or None, metadata


def check_matches(metadata, diffusion_model, name):
    """A clear error when the sidecar was trained for another model."""
    found = fingerprint(diffusion_model)
    trained_for = metadata.get("model", "another model")
    if found["architecture"] != metadata["architecture"]:
        raise ValueError(f"early-exit sidecar {name} was trained for {trained_for}, a different architecture than "
                         f"the model connected here; train heads for this model with scripts/train_early_exit.py")
    expected = float(metadata["checksum"])
    if abs(found["checksum"] - expected) > CHECKSUM_TOLERANCE * abs(expected):
        raise ValueError(f"early-exit sidecar {name} was trained for {trained_for}: same architecture but other "
                         f"weights (checksum {found['checksum']:.6g}, expected {expected:.6g}); train heads for "
                         f"this model with scripts/train_early_exit.py")
