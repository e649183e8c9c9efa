"""The training-curve picture: loss against step and validation PSNR against CPU-hours, drawn with Pillow so that
no plotting library is needed for one chart."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from ..atomic import atomic_path

W, H, PAD = 720, 300, 48


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], points, colour, title,
           unit: str = "step"):
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(180, 180, 180))
    draw.text((x0 + 4, y0 + 4), title, fill=(0, 0, 0))
    if len(points) < 1:
        return
    xs, ys = zip(*points)
    xmin, xmax = min(xs), max(xs)
    ymin, ymax = min(ys), max(ys)
    if ymax == ymin:
        ymin, ymax = ymin - 1, ymax + 1
    xmax = xmax if xmax > xmin else xmin + 1
    scaled = [(x0 + (x - xmin) / (xmax - xmin) * (x1 - x0),
               y1 - (y - ymin) / (ymax - ymin) * (y1 - y0 - 20)) for x, y in points]
    if len(scaled) > 1:
        draw.line(scaled, fill=colour, width=2)
    for sx, sy in scaled[-1:]:
        draw.ellipse((sx - 3, sy - 3, sx + 3, sy + 3), fill=colour)
    draw.text((x0 - PAD + 4, y0 + 20), f"{ymax:.4g}", fill=(80, 80, 80))
    draw.text((x0 - PAD + 4, y1 - 12), f"{ymin:.4g}", fill=(80, 80, 80))
    draw.text((x0, y1 + 4), _tick(xmin), fill=(80, 80, 80))
    draw.text((x1 - 80, y1 + 4), f"{unit} {_tick(xmax)}", fill=(80, 80, 80))


def _tick(x: float) -> str:
    # Steps print whole (16000, not 1.6e+04); CPU-hours to 4 significant digits.
    return str(x) if isinstance(x, int) else f"{x:.4g}"


def plot_curves(history: list[dict], path: Path) -> None:
    img = Image.new("RGB", (W, 2 * H), "white")
    draw = ImageDraw.Draw(img)
    loss = [(r["step"], r["loss"]) for r in history]
    validated = [r for r in history if r.get("val_psnr") is not None]
    # Runs logged before CPU-hours were recorded fall back to steps.
    unit = "CPU-h" if all("cpu_hours" in r for r in validated) else "step"
    val = [(r["cpu_hours" if unit == "CPU-h" else "step"], r["val_psnr"]) for r in validated]
    _panel(draw, (PAD, 10, W - 10, H - 24), loss, (200, 60, 40), "training loss")
    _panel(draw, (PAD, H + 10, W - 10, 2 * H - 24), val, (40, 90, 200),
           f"validation PSNR (dB) against {unit} (CPU-h: threads x processes x wall time)", unit)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
