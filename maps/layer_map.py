"""The layer map: per step, how many transformer blocks the network evaluated before exiting."""
from PIL import Image, ImageDraw, ImageFont

from ..adaptive_core import ExitReport
from .skip_map import BACKGROUND, COMPUTED, ESTIMATOR, GRID, REUSED, WARMUP

CELL, ROW, MARGIN = 14, 10, 44


def render_layer_map(report: ExitReport) -> Image.Image:
    """Columns are steps, rows blocks (block 0 at the bottom): evaluated blocks are filled, the
    skipped rest is hatched. A step with several forward passes shows their mean (a partial cell).
    Steps whose network call was skipped altogether (step skipping) are grey."""
    steps, blocks = report.steps, report.total_blocks
    n = max([report.schedule_steps] + [s.step + 1 for s in steps] + [1])
    cell = max(4, min(CELL, 900 // n))
    width = max(2 * MARGIN + n * cell, 420)
    top = 28
    height = top + blocks * ROW + 16 + 22
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    totals = report.as_dict()["totals"]
    draw.text((MARGIN, 6), f"{totals['blocks_evaluated']}/{totals['full_blocks']} blocks evaluated "
              f"({100 * (1 - report.block_fraction):.1f}% skipped), threshold {report.threshold:g}",
              fill=ESTIMATOR, font=font)
    bottom = top + blocks * ROW
    by_step = {s.step: s for s in steps}
    for i in range(n):
        x0 = MARGIN + i * cell
        record = by_step.get(i)
        if record is None or not record.calls:
            draw.rectangle([x0, top, x0 + cell - 2, bottom - 1], fill=GRID)
            continue
        mean = record.blocks / record.calls
        for b in range(blocks):
            y1 = bottom - b * ROW - 1
            y0 = y1 - ROW + 2
            filled = min(max(mean - b, 0.0), 1.0)
            draw.rectangle([x0, y0, x0 + cell - 2, y1], fill=REUSED)
            for y in range(int(y0), int(y1) + 1, 3):  # hatching: skipped, as in the skip map
                draw.line([x0, y, x0 + cell - 2, y], fill=BACKGROUND)
            if filled > 0:
                draw.rectangle([x0, y1 - filled * (ROW - 2), x0 + cell - 2, y1], fill=COMPUTED)
    for b in range(0, blocks, max(1, blocks // 6)):
        draw.text((4, bottom - (b + 1) * ROW), f"b{b}", fill=WARMUP, font=font)
    tick = next(t for t in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 10 ** 9) if n / t <= 12)
    for i in range(0, n, tick):
        draw.text((MARGIN + i * cell, bottom + 2), str(i), fill=WARMUP, font=font)
    legend_y = bottom + 18
    x = MARGIN
    for label, colour in (("block evaluated", COMPUTED), ("block skipped (exit)", REUSED),
                          ("no network call", GRID)):
        draw.rectangle([x, legend_y + 2, x + 10, legend_y + 12], fill=colour)
        draw.text((x + 14, legend_y), label, fill=ESTIMATOR, font=font)
        x += 14 + int(draw.textlength(label, font=font)) + 14
    return image
