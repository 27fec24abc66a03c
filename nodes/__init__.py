"""The ComfyUI adapter: node declarations and the wrappers that attach adaptive_core to a model."""
from comfy_api.latest import ComfyExtension

from .ksampler import AdaptiveDiffusionKSampler, AdaptiveDiffusionKSamplerAdvanced
from .model_patch import AdaptiveDiffusionPatch, AdaptiveDiffusionSkipReport

NODES = [AdaptiveDiffusionKSampler, AdaptiveDiffusionKSamplerAdvanced, AdaptiveDiffusionPatch,
         AdaptiveDiffusionSkipReport]


class AdaptiveDiffusionExtension(ComfyExtension):
    async def get_node_list(self):
        return NODES
