"""Small line/scatter charts drawn with Pillow (ComfyUI ships no plotting library)."""
import math

from PIL import Image, ImageDraw, ImageFont

# Okabe-Ito, then greys: distinguishable with colour-vision deficiencies
PALETTE = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
           (240, 228, 66), (0, 0, 0), (120, 120, 120), (190, 190, 190)]
MARKERS = ["o", "s", "^", "D", "v", "x", "+", "o", "s", "D"]


def chart(series, title, xlabel, ylabel, path, size=(760, 480), join=True):
    """series: list of (label, [(x, y), ...]); with join, points of a series are joined in x order.
    The default font has no Greek: δ is written out."""
    title = title.replace("δ", "delta ")
    w, h = size
    left, right, top, bottom = 64, 190, 34, 46
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    points = [p for _, pts in series for p in pts if math.isfinite(p[1])]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    pad_x, pad_y = (x1 - x0) * 0.05 or 1, (y1 - y0) * 0.08 or 1
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y
    sx = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)
    sy = lambda y: h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)
    draw.rectangle([left, top, w - right, h - bottom], outline=(190, 190, 190))
    for i in range(6):
        xv, yv = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        draw.text((sx(xv) - 10, h - bottom + 4), f"{xv:.3g}", fill="black", font=font)
        draw.text((6, sy(yv) - 6), f"{yv:.3g}", fill="black", font=font)
        draw.line([left, sy(yv), w - right, sy(yv)], fill=(235, 235, 235))
    draw.text((left, 8), title, fill="black", font=font)
    draw.text(((left + w - right) / 2 - 40, h - 18), xlabel, fill="black", font=font)
    draw.text((6, 20), ylabel, fill="black", font=font)
    for i, (label, pts) in enumerate(series):
        colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        pts = sorted(p for p in pts if math.isfinite(p[1]))
        if join and len(pts) > 1:
            draw.line([(sx(x), sy(y)) for x, y in pts], fill=colour, width=2)
        for x, y in pts:
            _marker(draw, sx(x), sy(y), marker, colour)
        ly = top + 4 + i * 16
        _marker(draw, w - right + 14, ly + 6, marker, colour)
        draw.text((w - right + 24, ly), label.replace("δ", "delta "), fill="black", font=font)
    image.save(path)


def _marker(draw, x, y, kind, colour, r=4):
    if kind == "o":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif kind == "s":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    elif kind == "^":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    elif kind == "v":
        draw.polygon([(x, y + r), (x - r, y - r), (x + r, y - r)], fill=colour)
    elif kind == "D":
        draw.polygon([(x, y - r), (x - r, y), (x, y + r), (x + r, y)], fill=colour)
    else:
        draw.line([x - r, y - r, x + r, y + r], fill=colour, width=2)
        draw.line([x - r, y + r, x + r, y - r], fill=colour, width=2)
        if kind == "+":
            draw.line([x, y - r, x, y + r], fill=colour, width=2)
