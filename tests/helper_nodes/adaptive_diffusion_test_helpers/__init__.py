"""A conditioning source for workflows on the tiny test models, which have no text encoder.

Loaded only by the tests and the demo (from their own custom_nodes folder), never by users.
"""
import torch
from comfy_api.latest import ComfyExtension, io


class TinyConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AdaptiveDiffusionTestConditioning",
            category="testing",
            inputs=[io.Int.Input("seed", default=0, min=0, max=2 ** 31),
                    io.Int.Input("width", default=4096, min=1, max=8192),
                    io.Int.Input("tokens", default=8, min=1, max=512),
                    io.Int.Input("pooled_width", default=0, min=0, max=8192)],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, seed, width, tokens, pooled_width):
        g = torch.Generator().manual_seed(seed)
        extras = {"pooled_output": torch.randn((1, pooled_width), generator=g)} if pooled_width else {}
        return io.NodeOutput([[torch.randn((1, tokens, width), generator=g), extras]])


class Extension(ComfyExtension):
    async def get_node_list(self):
        return [TinyConditioning]


async def comfy_entrypoint():
    return Extension()
