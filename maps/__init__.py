"""Pictures of what a run did, drawn with Pillow from adaptive_core's reports (no ComfyUI)."""
from .layer_map import render_layer_map
from .skip_map import render_skip_map

__all__ = ["render_skip_map", "render_layer_map"]
