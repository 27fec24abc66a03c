"""The skip map and the layer map, judged by what they show (colours, the threshold line, block
counts) against reports written out by hand."""
import math

import numpy as np

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import ExitReport, Reason, RunReport, SkipConfig, StepRecord  # noqa: E402
from adaptive_diffusion.adaptive_core.early_exit import ExitStep  # noqa: E402
from adaptive_diffusion.maps import render_layer_map, render_skip_map  # noqa: E402

# the palette the tooltips and the README describe (Okabe-Ito)
BLUE, ORANGE, GREY, VERMILION, LIGHT_GREY = (0, 114, 178), (230, 159, 0), (120, 120, 120), (213, 94, 0), (225, 225, 225)
CELLS = {BLUE: "computed", ORANGE: "reused", GREY: "warmup"}
STEPS = [  # (computed, reason, estimator before the step)
    (True, Reason.WARMUP, math.nan), (True, Reason.WARMUP, math.nan), (True, Reason.WARMUP, math.nan),
    (True, Reason.ESTIMATOR, 0.3), (False, Reason.ESTIMATOR, 0.005), (False, Reason.ESTIMATOR, 0.004),
    (True, Reason.MAX_SKIP, 0.002), (True, Reason.NON_FINITE, math.nan), (False, Reason.ESTIMATOR, 0.009)]


def skip_report(threshold):
    report = RunReport(SkipConfig(threshold=threshold), sampler="euler", schedule_steps=len(STEPS))
    report.records = [StepRecord(i, 1.0 - i / 10, c, r, v, calls=1) for i, (c, r, v) in enumerate(STEPS)]
    return report


def rows(image):
    return [[tuple(p) for p in row] for row in np.asarray(image).tolist()]


def cell_runs(row):
    """(colour, first x, last x) of each run of one cell colour at least 3 pixels long (shorter ones
    are anti-aliased text that happens to match)."""
    runs, start = [], 0
    for x in range(1, len(row) + 1):
        if x == len(row) or row[x] != row[start]:
            if row[start] in CELLS and x - start >= 3:
                runs.append((row[start], start, x - 1))
            start = x
    return runs


def strip_band(image):
    """The rows of the strip: the first band of rows holding cells (the legend below holds them too)."""
    band = []
    for row in rows(image):
        if cell_runs(row):
            band.append(row)
        elif band:
            return band
    return band


def strip_cells(image):
    """The cells' colours, left to right: hatched rows show fewer cells, so the fullest row counts."""
    return [colour for colour, _, _ in max(map(cell_runs, strip_band(image)), key=len)]


def test_skip_map_draws_one_cell_per_step_in_its_colour():
    image = render_skip_map(skip_report(0.01))
    expected = ["warmup", "warmup", "warmup", "computed", "reused", "reused", "computed", "computed", "reused"]
    assert [CELLS[c] for c in strip_cells(image)] == expected


def test_skip_map_hatches_reused_cells_only():
    band = strip_band(render_skip_map(skip_report(0.01)))
    cells = max(map(cell_runs, band), key=len)
    columns = lambda colour: {x for c, first, last in cells if c == colour for x in range(first, last + 1)}
    reused, computed = columns(ORANGE), columns(BLUE)
    assert len(reused) >= 3 * 3 and computed
    # every column of a reused cell has white rows inside the cell; computed cells have none
    white_in = lambda xs: {x for x in xs if any(row[x] == (255, 255, 255) for row in band)}
    assert white_in(reused) == reused and not white_in(computed)


def threshold_rows(image):
    """Rows where the threshold line runs: at least 20 pixels of its colour."""
    return [y for y, row in enumerate(rows(image)) if sum(p == VERMILION for p in row) >= 20]


def test_threshold_line_sits_at_its_value_on_the_plot():
    image = render_skip_map(skip_report(0.1))
    frame = [y for y, row in enumerate(rows(image)) if sum(p == LIGHT_GREY for p in row) >= 100]
    top, bottom = frame[0], frame[-1]
    line = threshold_rows(image)
    assert line, "no threshold line"
    # the plot's ceiling is the largest estimator value (0.3): δ = 0.1 sits a third of the way up
    expected = bottom - (bottom - top) * 0.1 / 0.3
    assert abs(sum(line) / len(line) - expected) <= 2, (line, expected)


def test_no_threshold_line_when_skipping_is_disabled():
    assert threshold_rows(render_skip_map(skip_report(0.0))) == []
    assert threshold_rows(render_skip_map(skip_report(0.01)))


def layer_report(blocks_per_step, total_blocks=4, calls=1):
    """blocks_per_step: blocks evaluated per step summed over ``calls`` calls; None: no network call."""
    steps = [ExitStep(i, 1.0 - i / 10, calls, b) for i, b in enumerate(blocks_per_step) if b is not None]
    return ExitReport(0.9, total_blocks, schedule_steps=len(blocks_per_step), steps=steps)


def count(image, colour):
    return int((np.asarray(image) == colour).all(axis=-1).sum())


def test_layer_map_fills_the_evaluated_blocks():
    full = count(render_layer_map(layer_report([4, 4, 4])), BLUE)
    three = count(render_layer_map(layer_report([4, 3, 4])), BLUE)
    two = count(render_layer_map(layer_report([4, 2, 4])), BLUE)
    one_block = full - three
    assert one_block > 0 and full - two == 2 * one_block
    # one block per step fills exactly the bottom cell of each column (the legend's swatch is in both)
    none = count(render_layer_map(layer_report([0, 0, 0])), BLUE)
    assert count(render_layer_map(layer_report([1, 1, 1])), BLUE) - none == 3 * one_block
    # two calls averaging 3 blocks each fill as much as one call of 3
    assert count(render_layer_map(layer_report([8, 6, 8], calls=2)), BLUE) == three
    # a mean of 2.5 blocks fills half of the third block
    assert abs(count(render_layer_map(layer_report([8, 5, 8], calls=2)), BLUE) * 2 - (full - one_block * 1.5) * 2) \
        <= 2 * 14


def test_layer_map_greys_steps_without_a_network_call():
    with_call = count(render_layer_map(layer_report([4, 4, 4])), LIGHT_GREY)
    without = count(render_layer_map(layer_report([4, None, 4])), LIGHT_GREY)
    assert without > with_call
    assert count(render_layer_map(layer_report([4, None, 4])), BLUE) < count(render_layer_map(layer_report([4, 4, 4])), BLUE)
