"""Live progress for the frontend: each step's decision, sent while the run goes on."""
import math
import sys

from comfy_execution.utils import get_executing_context

EVENT = "adaptive_diffusion.step"


def step_sender(total_steps, threshold):
    """A callback that sends each step's decision to the client that queued the prompt, scoped to
    the prompt and the executing node; None outside a running server (in-process use, tests)."""
    # Only a running server has imported its module; importing it here would start one's set-up.
    server = getattr(getattr(sys.modules.get("server"), "PromptServer", None), "instance", None)
    context = get_executing_context()
    if server is None or context is None:
        return None

    def send(record):
        server.send_sync(EVENT, {
            "prompt_id": context.prompt_id, "node": context.node_id, "step": record.step,
            "total": total_steps, "sigma": record.sigma, "computed": record.computed, "reason": record.reason,
            "cell": record.cell, "reuse": record.reuse,
            "estimator": record.estimator if math.isfinite(record.estimator) else None, "threshold": threshold,
        }, server.client_id)
    return send
