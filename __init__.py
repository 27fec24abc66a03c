"""AdaptiveDiffusion for ComfyUI: training-free step skipping (NeurIPS 2024) as sampler nodes, and
AdaDiff (ECCV 2024) early exit inside the network."""
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    # Imported here so that adaptive_core stays importable without ComfyUI.
    from .nodes import AdaptiveDiffusionExtension
    return AdaptiveDiffusionExtension()
