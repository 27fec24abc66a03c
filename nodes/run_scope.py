"""What the step-skipping and early-exit patches share about living on a ComfyUI model."""
import contextlib

import comfy.model_patcher


class SharedHolder:
    """Per patched model: its settings and the report of its last run.

    ModelPatcher.clone() deep-copies model_options; every clone made downstream (LoRA loaders,
    ModelSamplingSD3, the other patch of this pack) must report into this same holder, which the
    map nodes read."""
    last_report = None

    def __deepcopy__(self, memo):
        return self


@contextlib.contextmanager
def run_options(guider):
    """The transformer_options of one sampling run: a copy of the guider's model_options that the
    run's state goes into, restored afterwards so nothing outlives the run."""
    original = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original)
    try:
        yield guider.model_options["transformer_options"]
    finally:
        guider.model_options = original
