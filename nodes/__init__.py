"""The ComfyUI adapter: node declarations and the wrappers that attach adaptive_core to a model."""
from comfy_api.latest import ComfyExtension

from .demo import (AdaptiveDiffusionDemoDecode, AdaptiveDiffusionDemoPrompt, AdaptiveDiffusionDemoUNetLoader,
                   register_demo_model)
from .early_exit import AdaptiveDiffusionEarlyExit, AdaptiveDiffusionLayerMap
from .exit_training import AdaptiveDiffusionTrainHeads
from .ksampler import AdaptiveDiffusionKSampler, AdaptiveDiffusionKSamplerAdvanced
from .model_patch import AdaptiveDiffusionPatch, AdaptiveDiffusionSkipReport
from .sidecar import register_sidecar_folder

NODES = [AdaptiveDiffusionKSampler, AdaptiveDiffusionKSamplerAdvanced, AdaptiveDiffusionPatch,
         AdaptiveDiffusionSkipReport, AdaptiveDiffusionEarlyExit, AdaptiveDiffusionLayerMap,
         AdaptiveDiffusionDemoPrompt, AdaptiveDiffusionDemoDecode, AdaptiveDiffusionDemoUNetLoader,
         AdaptiveDiffusionTrainHeads]


class AdaptiveDiffusionExtension(ComfyExtension):
    def __init__(self):
        # on_load is called from ComfyUI 0.33 on, not by 0.3.75 (the oldest we support), so the
        # extension's one global set-up happens here.
        register_demo_model()
        register_sidecar_folder()

    async def get_node_list(self):
        return NODES
