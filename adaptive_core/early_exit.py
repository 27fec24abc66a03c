"""Early exit inside one network call (AdaDiff): per-run state, the decision and the report."""
import dataclasses
import json
import math

import torch

from .interfaces import RunStatus
from .steps import StepTracker
from .uncertainty import Readout, UncertaintyHeads, token_sample


@dataclasses.dataclass
class ExitStep:
    step: int
    sigma: float
    calls: int = 0
    blocks: int = 0  # blocks evaluated over this step's calls

    def as_dict(self, total_blocks):
        mean = self.blocks / self.calls if self.calls else total_blocks
        return {"step": self.step, "sigma": self.sigma, "calls": self.calls, "mean_blocks": round(mean, 4),
                "mean_exit_block": round(mean - 1, 4)}


@dataclasses.dataclass
class ExitReport:
    threshold: float
    total_blocks: int
    schedule_steps: int = 0
    steps: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    status: RunStatus = RunStatus.COMPLETE

    @property
    def calls(self):
        return sum(s.calls for s in self.steps)

    @property
    def blocks_evaluated(self):
        return sum(s.blocks for s in self.steps)

    @property
    def block_fraction(self):
        """Blocks evaluated per block of the full model, over every network forward pass."""
        full = self.calls * self.total_blocks
        return self.blocks_evaluated / full if full else 1.0

    def summary(self):
        partial = "" if self.status == RunStatus.COMPLETE else f"{self.status.upper()}: "
        line = (f"AdaDiff early exit: {partial}{self.blocks_evaluated}/{self.calls * self.total_blocks} blocks evaluated "
                f"({100 * (1 - self.block_fraction):.1f}% skipped) over {self.calls} forward passes, "
                f"certainty threshold {self.threshold:g}")
        return "; ".join([line] + self.notes)

    def as_dict(self):
        return {
            "method": "AdaDiff early exit",
            "status": self.status,
            "threshold": self.threshold,
            "blocks": self.total_blocks,
            "steps": [s.as_dict(self.total_blocks) for s in self.steps],
            "totals": {"forward_passes": self.calls, "blocks_evaluated": self.blocks_evaluated,
                       "full_blocks": self.calls * self.total_blocks,
                       "block_fraction": round(self.block_fraction, 4)},
            "notes": list(self.notes),
            "summary": self.summary(),
        }

    def to_json(self):
        return json.dumps(self.as_dict(), indent=1)


# per_block: read each block's certainty back to decide after it (the paper); per_call: choose each
# forward pass's exit block from the previous pass's certainties, read back once per pass
DECIDE = ("per_block", "per_call")
# per_call: tokens per block whose certainty is computed at the pass's end (the mean over a strided
# sample; a video model's blocks hold tens of thousands)
TOKENS_KEPT = 256


class ExitRun:
    """State of one sampling run with early exit; one forward pass at a time.

    The adapter calls ``begin(σ)`` before each forward pass, ``after_block(i, hidden)`` after each
    evaluated block (True = the remaining blocks are skipped), and ``end()`` after the pass. The
    decision is one per pass for the whole batch (cond and uncond included), as in the reference.
    ``needed[step][i]`` is the mean raw certainty that lets a pass of that step exit after block i
    (inf: never there); ``decide`` picks when certainties are read back (DECIDE). Each pass reads
    its σ back at ``begin`` (per_call: with the previous pass's certainties, in the same read).
    ``device``: where the model runs (default: the heads').
    """

    def __init__(self, heads: UncertaintyHeads, needed, schedule, threshold: float, decide: str = "per_block",
                 device=None):
        if decide not in DECIDE:
            raise ValueError(f"decide must be one of {', '.join(DECIDE)}, got {decide!r}")
        self.needed, self.decide = [list(row) for row in needed], decide
        self.tracker = StepTracker(schedule, lookahead=False)
        self.report = ExitReport(threshold, heads.blocks, len(self.tracker.schedule) - 1)
        if len(self.needed) != self.report.schedule_steps:
            raise ValueError(f"needed has {len(self.needed)} steps, the schedule {self.report.schedule_steps}")
        self.judged_at = [[i for i, n in enumerate(row[:-1]) if math.isfinite(n)] for row in self.needed]
        self.previous = {}  # per_call: the last pass's certainty per block
        self.unread = None  # per_call: (blocks, certainties on the device) of the last pass, read at the next begin
        self.blocks, self.exited, self.exit_at, self.pending = 0, False, None, []
        # the pass in progress: its step, blocks judged, logit offsets (per_block: as layer-norm biases)
        self.step, self.judged, self.offset, self.biases = 0, [], None, None
        self.readout = Readout(heads, self.tracker.schedule, device)

    @property
    def enabled(self):
        return any(self.judged_at)

    def begin(self, sigma: torch.Tensor):
        self.blocks, self.exited, self.pending = 0, False, []
        probes = [sigma.flatten()[:1].float()]
        if self.unread is not None:
            probes.append(self.unread[1].to(sigma.device))
        read = torch.cat(probes).tolist()
        if self.unread is not None:
            self.previous, self.unread = dict(zip(self.unread[0], read[1:])), None
        self.step, starts = self.tracker.locate(read[0])
        if starts or not self.report.steps:
            self.report.steps.append(ExitStep(self.step, read[0]))
        self.judged = self.judged_at[self.step]
        self.offset = self.readout.offset_at(read[0], sigma) if self.judged else None
        if self.judged and self.decide == "per_block":
            self.biases = self.readout.biases(self.offset)
        needed = self.needed[self.step]  # a NaN certainty compares False: never exits
        self.exit_at = next((i for i in self.judged if self.previous.get(i, -math.inf) >= needed[i]), None)

    def after_block(self, block: int, hidden: torch.Tensor) -> bool:
        self.blocks += 1
        if block not in self.judged:
            return self.exited
        if self.decide == "per_call":
            self.pending.append((block, token_sample(hidden, TOKENS_KEPT)))
            self.exited = block == self.exit_at
            return self.exited
        self.exited = self.readout.reaches(block, hidden, self.biases, self.needed[self.step][block])
        return self.exited

    def end(self):
        if self.pending:
            blocks, hiddens = zip(*self.pending)
            self.unread = self.readout.certainties(blocks, hiddens, self.offset)
        record = self.report.steps[-1]
        record.calls += 1
        record.blocks += self.blocks

    def finish(self, status: RunStatus = RunStatus.COMPLETE) -> ExitReport:
        self.report.status = status
        if not self.enabled:
            self.report.notes.append("no exits: no block's certainty can reach the threshold")
        elif self.report.calls and self.report.block_fraction == 1.0:
            self.report.notes.append(f"no exits: the certainty never reached the threshold {self.report.threshold:g}")
        return self.report
