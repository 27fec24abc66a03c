"""Imports the real ComfyUI runtime in-process and loads this extension as a package.

The ComfyUI checkout is COMFYUI_PATH when set (a user's own install, or the one scripts/runtime_env.sh
names), else the copy of COMFYUI_VERSION (default 0.33.0) that scripts/install_runtime.sh unpacks into
.runtime/<version>/ComfyUI.
"""
import asyncio
import importlib.util
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
COMFYUI = pathlib.Path(os.environ.get("COMFYUI_PATH")
                       or REPO / ".runtime" / os.environ.get("COMFYUI_VERSION", "0.33.0") / "ComfyUI").resolve()
PACKAGE = "adaptive_diffusion"


def import_comfy():
    if not (COMFYUI / "comfy").is_dir():
        raise RuntimeError(f"no ComfyUI at {COMFYUI}: run scripts/install_runtime.sh or set COMFYUI_PATH")
    if str(COMFYUI) not in sys.path:
        sys.path.insert(0, str(COMFYUI))
    import comfy.cli_args
    import torch
    # Otherwise comfy.model_management probes for CUDA at import time, and fails without one.
    comfy.cli_args.args.cpu = not torch.cuda.is_available()
    import comfy.model_management  # noqa: F401
    import comfy.sd  # noqa: F401
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False  # in-process runs: keep logs readable
    import comfy.samplers  # noqa: F401
    import nodes
    return nodes


def import_extension():
    """This repository imported as the package ComfyUI would load from custom_nodes."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def load_extension():
    """The extension as ComfyUI loads it: imported, then its entry point run (which registers the
    bundled demo model and sidecars with folder_paths). Needs import_comfy() first."""
    package = import_extension()
    asyncio.run(package.comfy_entrypoint())
    return package
