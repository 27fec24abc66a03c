"""What a sidecar's threshold means: per noise band and block, the expected exit error at each
level of raw certainty (fitted on held-out calls when the sidecar is saved), and per step of a
run, the raw certainty each block needs for that step's share of the target error.

The heads' certainty reads differently at different noise levels (the same mean certainty after
block 3 promises another error at σ 10 than at σ 0.1), so one table pooled over every σ is right
only for the mix of σ it was fitted on: a sidecar calibrated on 30-step runs then meant something
else at 50 steps. Bands of σ make the meaning independent of the step count and scheduler.
"""
import math

import torch

BANDS, BINS = 5, 8
# fewer samples per bin make a band's table noisier than one pooled over every σ; but a pooled table
# is biased (bench/exit_calibration.py --trained), so bands are kept down to two samples a bin
MIN_PER_BIN = 2


def relative_exit_errors(exit_outputs):
    """Per block and sample, ||g_i(h_i) - g_full|| / ||g_full||: how far each exit is from the full model."""
    full = exit_outputs[-1].float().flatten(1)
    return torch.stack([(g.float().flatten(1) - full).norm(dim=1) / full.norm(dim=1) for g in exit_outputs])


def band_of(edges, sigma: float) -> int:
    """The band of σ: 0 above the first (largest) edge, one more below each edge it does not exceed."""
    return sum(sigma <= edge for edge in edges)


def fit_calibration(certainties, errors, sigmas, bands=BANDS, bins=BINS):
    """{"edges": the σ where each band after the first begins (descending), "knots": per band, per
    block, knots (certainty, expected relative exit error)}. The bands hold equally many of the σ
    levels seen (a run's steps), so each has about as many samples; as many bands as give each bin
    MIN_PER_BIN samples, down to one.
    certainties, errors: (blocks, samples); sigmas: (samples,)."""
    bands = max(1, min(bands, len(sigmas) // (bins * MIN_PER_BIN)))
    levels = sigmas.unique().flip(0)
    edges = [float(group[0]) for group in levels.tensor_split(bands)[1:] if len(group)]
    band = torch.tensor([band_of(edges, float(s)) for s in sigmas])
    return {"edges": edges,
            "knots": [fit_knots(certainties[:, band == b], errors[:, band == b], bins) for b in range(len(edges) + 1)]}


def fit_knots(certainties, errors, bins=BINS):
    """Per block, knots (certainty, expected relative exit error): the mean of each certainty
    quantile, made non-increasing in certainty the cautious way (a bin never promises less error
    than any more certain bin shows)."""
    knots = []
    for c, e in zip(certainties, errors):
        order = c.argsort()
        groups = [(float(c[i].mean()), float(e[i].mean())) for i in order.tensor_split(min(bins, len(c)))]
        expected, table = 0.0, []
        for certainty, error in reversed(groups):
            expected = max(expected, error)
            table.append((certainty, expected))
        knots.append(table[::-1])
    return knots


def certainty_needed(knots, target_error):
    """Per block, the smallest raw certainty whose expected exit error is within target_error (the
    knots interpolated linearly), or inf where no certainty seen on held-out data promises it."""
    needed = []
    for table in knots:
        value = math.inf
        for i, (certainty, error) in enumerate(table):
            if error <= target_error:
                if i == 0:
                    value = certainty
                else:
                    (c0, e0) = table[i - 1]  # e0 > target_error >= error
                    value = c0 + (certainty - c0) * (e0 - target_error) / (e0 - error)
                break
        needed.append(value)
    return needed


def step_targets(target_error, schedule):
    """Per step of the schedule (σ_0 > … > 0), the relative exit error it may take: target_error·ρ̄/ρ,
    with ρ = |σ - σ'|/σ the step's relative size and ρ̄ its mean over the run. An exit whose output
    is off by e moves the latent by ρ·e (the Euler form every sampler shares to first order), so each
    step may put the same error into the latent as an exit within target_error at a step of mean
    size, and the run as a whole the same as that exit at every step: spent where exiting is cheap,
    at the small steps, and sparingly at the large last ones."""
    sizes = [abs(s - s_next) / s if s > 0 else 0.0 for s, s_next in zip(schedule, schedule[1:])]
    mean = sum(sizes) / len(sizes) if sizes else 0.0
    # a step that does not move the latent takes any exit, unless no exit is allowed at all
    unmoved = math.inf if target_error > 0 else target_error
    return [target_error * mean / size if size > 0 else unmoved for size in sizes]


def needed_per_step(calibration, target_error, schedule):
    """Per step of the schedule, ``certainty_needed`` in its σ's band for its share of the error (step_targets)."""
    return [certainty_needed(calibration["knots"][band_of(calibration["edges"], sigma)], target)
            for sigma, target in zip(schedule, step_targets(target_error, schedule))]
