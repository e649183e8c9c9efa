"""Evaluation records as JSON, CSV and a Markdown table, each written atomically."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path

from ..atomic import atomic_path, write_text
from .protocol import Setting, protocol
from .runner import Record

FIELDS = ["dataset", "method", "task", "scale", "sigma", "psnr", "ssim", "images", "seconds",
          "clip", "lr", "degradation", "tile", "tiled"]


def psnr_text(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.2f}"


def seconds_text(s: float) -> str:
    return f"{s:.2f}" if s >= 0.1 else f"{s:.3f}"


def setting_of(r: Record) -> Setting:
    return Setting(r.task, r.scale, r.sigma, bool(r.clip), r.degradation)


def _finite(x):
    # JSON has no infinity: identical images (PSNR inf) are written as the string "inf".
    return "inf" if isinstance(x, float) and math.isinf(x) else x


def _row(d: dict) -> dict:
    return {k: _finite(v) for k, v in d.items()}


def write_json(records: list[Record], path: Path, per_image: bool = False) -> None:
    rows = []
    for r in records:
        row = _row({k: getattr(r, k) for k in FIELDS})
        if per_image:
            row["per_image"] = [_row(asdict(s)) for s in r.per_image]
        rows.append(row)
    write_text(path, json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


def write_csv(records: list[Record], path: Path, per_image: bool = False) -> None:
    """One row per record (empty `image`); with `per_image`, each followed by its images' rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS + ["image"])
        writer.writeheader()
        for r in records:
            row = {k: getattr(r, k) for k in FIELDS}
            writer.writerow(_row({**row, "image": ""}))
            for s in r.per_image if per_image else []:
                writer.writerow(_row({**row, **asdict(s), "images": 1}))


def protocols(records: list[Record]) -> list[str]:
    """The protocol line of each task (and noise clipping) present in `records`."""
    lines = [protocol(task, clip) + "." for task, clip in
             dict.fromkeys((r.task, bool(r.clip)) for r in records)]
    chains = list(dict.fromkeys(r.degradation for r in records if r.degradation))
    if chains:
        lines.append(f"Degraded inputs ({', '.join(chains)}): the clean image modcropped, then "
                     "that seeded chain (srnl.degrade.named_plan), seeded by the image's index; "
                     "every stage rounds and clips to 8 bits.")
    return lines


def markdown_table(records: list[Record]) -> str:
    """Methods x datasets, each cell `PSNR / SSIM (seconds per image)`, then the protocol."""
    datasets = list(dict.fromkeys(r.dataset for r in records))
    rows: dict[tuple[str, str], dict[str, Record]] = {}
    for r in records:
        rows.setdefault((r.method, setting_of(r).label), {})[r.dataset] = r
    lines = ["| method | setting | " + " | ".join(datasets) + " |",
             "|---|---|" + "---|" * len(datasets)]
    for (method, label), cells in rows.items():
        text = [f"{psnr_text(c.psnr)} / {c.ssim:.4f} ({seconds_text(c.seconds)} s)"
                if (c := cells.get(d)) else "-" for d in datasets]
        lines.append(f"| {method} | {label} | " + " | ".join(text) + " |")
    lines.append("")
    lines.append(" ".join(["PSNR (dB) / SSIM (seconds per image)."] + protocols(records)))
    tiled = [r for r in records if r.tiled]
    if tiled:
        lines.append("Tiled: " + ", ".join(f"{r.method} on {r.dataset} {setting_of(r).label} "
                                           f"({r.tiled} of {r.images} images, tile {r.tile})"
                                           for r in tiled) + ".")
    return "\n".join(lines) + "\n"


def write_markdown(records: list[Record], path: Path) -> None:
    write_text(path, markdown_table(records))
