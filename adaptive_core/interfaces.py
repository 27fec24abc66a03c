"""The plug-in points of a skipping run, and the words its reports use.

A run (run.py) is the mechanism: it locates each call's step, asks a ``SkipPolicy`` whether the step
computes, and on a skip asks a ``Reuse`` to stand in for the network. Before each call the policy
and the reuse ``peek``: they name the 0-dim device tensors they need on the host, which the run
reads back together, in one read per call, and hands to ``decide`` and ``rebuild``. A
``PolicyConfig`` holds one policy's settings and builds a fresh policy and reuse for each run:
the paper's rule (``SkipConfig``), the error-controlled rule (``ErrorControlConfig``) and the
benchmark's baselines all come in through this one door.
"""
import dataclasses
import enum
import math
from typing import Optional, Protocol

import torch


class _Word(str, enum.Enum):
    # str-valued, so reports, JSON and the frontend see the plain word
    __str__ = str.__str__
    __format__ = str.__format__


class Reason(_Word):
    """Why a step computed or reused."""
    WARMUP = "warmup"  # one of the first steps, which always compute
    ESTIMATOR = "estimator"  # the policy's criterion judged the step (the paper's estimator, or the predicted error)
    SCHEDULE = "schedule"  # a fixed schedule decided, not a criterion
    MAX_SKIP = "max_skip"  # the consecutive-skip limit forced a call
    DISABLED = "disabled"  # skipping is off for this run
    SAMPLER = "sampler"  # skipping would be wrong for this sampler
    NON_FINITE = "non_finite"  # NaN/Inf in the estimator or the reused prediction: call the network
    NO_CACHE = "no_cache"  # nothing usable to reuse (no earlier call, or another shape)


class RunStatus(_Word):
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"  # cancelled by the user
    FAILED = "failed"  # an error ended it


@dataclasses.dataclass(frozen=True)
class Decision:
    compute: bool
    reason: Reason
    value: float = math.nan  # what the criterion judged (NaN where none was)

    @property
    def cell(self) -> str:
        """How maps draw the step: computed, reused or warmup."""
        if not self.compute:
            return "reused"
        return "warmup" if self.reason is Reason.WARMUP else "computed"


class SkipPolicy(Protocol):
    def peek(self, x: torch.Tensor, sigma: torch.Tensor) -> dict:
        """Device tensors to read before this call: ``x`` is the latent as the network sees it.
        Called on every call, before it is known whether the call starts a step."""

    def decide(self, step: int, values: dict) -> Decision:
        """Step ``step`` (counted from the run's first step), from everything read for its first call."""

    def overrule(self, decision: Decision) -> None:
        """The run had to compute a step the policy meant to skip."""

    def why_nothing_skipped(self, steps: int) -> Optional[str]:
        """Said in the report of a run of ``steps`` steps that skipped none; None if nothing to say."""


class Reuse(Protocol):
    """What a skipped call returns in place of the network's denoised output."""

    fallbacks: int  # skipped calls that could not use the reuse's full rule (read once, at the end)

    def store(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor, at: float) -> None:
        """A real call's output, at schedule position ``at``; only for σ > 0."""

    def peek(self) -> dict:
        """Device tensors to read before each call; ``finite``: whether what is stored is usable."""

    def can_rebuild(self, x: torch.Tensor) -> bool: ...

    def rebuild(self, x: torch.Tensor, sigma: torch.Tensor, at: float, values: dict) -> torch.Tensor: ...

    def serving(self, values: dict) -> str:
        """The name of what serves a skip, given what was read."""

    def clear(self) -> None: ...


class PolicyConfig(Protocol):
    def disabled_because(self) -> Optional[str]:
        """Why these settings never skip (the run then calls the network straight through), or None."""

    def build(self) -> "tuple[SkipPolicy, Reuse]":
        """A fresh policy and reuse for one run."""

    def settings(self) -> dict:
        """The settings by name, for the report (``threshold``, where there is one, draws the line)."""

    def describe(self) -> str:
        """The settings in a few words, for the report's summary line."""
