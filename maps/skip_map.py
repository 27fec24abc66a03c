"""The skip map: one cell per step, computed or reused, over the value the criterion judged
against the threshold."""
import math

from PIL import Image, ImageDraw, ImageFont

from ..adaptive_core import RunReport

# Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
COMPUTED = (0, 114, 178)
REUSED = (230, 159, 0)
WARMUP = (120, 120, 120)
THRESHOLD = (213, 94, 0)
ESTIMATOR = (0, 0, 0)
BACKGROUND = (255, 255, 255)
GRID = (225, 225, 225)
CELL_COLOURS = {"computed": COMPUTED, "reused": REUSED, "warmup": WARMUP}

CELL, MARGIN, STRIP, PLOT = 14, 44, 26, 120


def render_skip_map(report: RunReport) -> Image.Image:
    records = report.records
    n = max(len(records), 1)
    cell = max(4, min(CELL, 900 // n))
    width = max(2 * MARGIN + n * cell, 420)
    height = 28 + STRIP + 16 + PLOT + 28
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()

    totals = report.as_dict()["totals"]
    draw.text((MARGIN, 6), f"{totals['computed_steps']}/{totals['steps']} steps computed, "
              f"{totals['network_calls']}/{totals['full_run_network_calls']} calls "
              f"({totals['expected_speedup']:.2f}x), {report.sampler}", fill=ESTIMATOR, font=font)

    top = 28
    for i, r in enumerate(records):
        colour = CELL_COLOURS[r.cell]
        x0 = MARGIN + i * cell
        draw.rectangle([x0, top, x0 + cell - 2, top + STRIP], fill=colour)
        if not r.computed:  # a second cue besides colour: reused cells are hatched
            for y in range(top, top + STRIP, 4):
                draw.line([x0, y, x0 + cell - 2, y], fill=BACKGROUND)

    tick = next(t for t in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10 ** 9) if n / t <= 12)
    for i in range(0, n, tick):
        draw.text((MARGIN + i * cell, top + STRIP + 1), str(i), fill=WARMUP, font=font)

    plot_top = top + STRIP + 16
    plot_bottom = plot_top + PLOT
    values = [r.estimator for r in records]
    finite = [v for v in values if math.isfinite(v)]
    threshold = report.threshold
    ceiling = max(finite + [2 * (threshold or 0), 1e-6])
    scale = lambda v: plot_bottom - (min(v, ceiling) / ceiling) * PLOT
    draw.rectangle([MARGIN, plot_top, MARGIN + n * cell, plot_bottom], outline=GRID)
    if threshold is not None:
        y = scale(threshold)
        draw.line([MARGIN, y, MARGIN + n * cell, y], fill=THRESHOLD, width=2)
        draw.text((MARGIN + n * cell + 4, y - 6), f"{threshold:g}", fill=THRESHOLD, font=font)
    points = [(MARGIN + i * cell + cell / 2, scale(v)) for i, v in enumerate(values) if math.isfinite(v)]
    if len(points) > 1:
        draw.line(points, fill=ESTIMATOR, width=1)
    for px, py in points:
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=ESTIMATOR)
    draw.text((4, plot_top), f"{ceiling:.3g}", fill=ESTIMATOR, font=font)
    judged = "predicted error" if report.config.settings().get("criterion") == "error" else "estimator"
    draw.text((MARGIN + 4, plot_top + 2), f"{judged} before each step", fill=WARMUP, font=font)
    draw.text((4, plot_bottom - 10), "0", fill=ESTIMATOR, font=font)

    legend_y = plot_bottom + 8
    x = MARGIN
    for label, colour in (("computed", COMPUTED), ("reused", REUSED), ("warm-up", WARMUP),
                          (judged, ESTIMATOR), ("threshold", THRESHOLD)):
        draw.rectangle([x, legend_y + 2, x + 10, legend_y + 12], fill=colour)
        draw.text((x + 14, legend_y), label, fill=ESTIMATOR, font=font)
        x += 14 + int(draw.textlength(label, font=font)) + 14
    return image
