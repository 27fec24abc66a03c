import math


class StepTracker:
    """Assigns each network call of a run to the sampler step it belongs to.

    A step's first call is always at its schedule sigma σ_k. Extra calls of multi-call samplers
    land either between schedule sigmas (dpm_2, dpmpp_sde, ...) or exactly on later ones: heun's
    corrector at σ_{k+1}, heunpp2's at σ_{k+1} and σ_{k+2}. For those ``lookahead`` samplers a
    new step begins only when a call returns to a schedule sigma at or before the previous call's,
    or follows an off-schedule call; for the others every call at a later schedule sigma begins
    that step. Either way a custom schedule with repeated sigmas still advances one step at a time.
    """

    def __init__(self, schedule, lookahead: bool):
        self.schedule = [float(s) for s in schedule]
        self.lookahead = lookahead
        self.step = -1
        self.previous_index = None  # schedule index of the previous call, None if off-schedule

    def locate(self, sigma: float):
        """Returns (step, starts_step) for a call at this sigma."""
        index = self._index(sigma, first=self.step + 1)  # past this step's own σ: repeats advance
        if self.step < 0:
            starts, index = True, index or 0
        elif self.lookahead:
            starts = index is not None and (self.previous_index is None or index <= self.previous_index)
        else:
            starts = index is not None
        self.previous_index = index
        if starts:
            self.step = index
        return self.step, starts

    def next_sigma(self, step: int) -> float:
        """Where step ``step`` ends: the next schedule sigma (0 past the end)."""
        return self.schedule[step + 1] if step + 1 < len(self.schedule) else 0.0

    def position(self, sigma: float) -> float:
        """Where σ lies on the schedule, in steps: i at schedule[i], linear in σ in between (the
        intermediate calls of multi-call samplers). The first match wins on repeated sigmas."""
        s = self.schedule
        for i in range(len(s) - 1):
            if s[i] >= sigma >= s[i + 1] and s[i] != s[i + 1]:
                return i + (s[i] - sigma) / (s[i] - s[i + 1])
        return float(len(s) - 1) if sigma <= s[-1] else 0.0

    def _index(self, sigma, first):
        for i in range(first, len(self.schedule)):
            if math.isclose(self.schedule[i], sigma, rel_tol=1e-5, abs_tol=1e-9):
                return i
        return None
