"""`srnl models` and `srnl bench`: what is shipped, and how fast it runs here."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import folding_table, Threads, command, console, runtime, stdout


@command()
def models(file: Annotated[Optional[Path], typer.Option(
        "--file", metavar="FILE", show_default=False,
        help="Say what this model file is instead (srnl's, or any architecture spandrel "
             "knows).")] = None):
    """List the shipped models and their measured numbers."""
    from ..models.catalog import describe_shipped

    if file is not None:
        from ..models.external import describe
        from ..models.registry import load_model

        for key, value in describe(load_model(file)).items():
            stdout.print(f"{key}: {value:,}" if isinstance(value, int) else f"{key}: {value}",
                         highlight=False)
        return

    table = folding_table("name", "task", "params", "FLOPs/px", "PSNR, dB (SR: Y)")
    rows = describe_shipped()
    for row in rows:
        task = f"x{row['scale']} SR" if row["task"] == "sr" else row["task"]
        table.add_row(row["name"], task, f"{row['params']:,}",
                      f"{row['flops_per_pixel'] / 1e3:.0f}K", row["headline"])
    stdout.print(table)
    for row in rows:
        stdout.print(f"{row['name']}: {row['about']}; trained on {row['data']}, {row['steps']} "
                     f"steps; PSNR / SSIM {row['metrics']}", highlight=False)


@command()
def bench(json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results here.")] = None,
          quick: Annotated[bool, typer.Option(help="Smaller sizes, one repeat (a smoke run).")] = False,
          threads: Threads = None,
          models: Annotated[Optional[list[str]], typer.Option(
              "--model", "-m", show_default=False,
              help="Also time this model (file or name; repeatable), in the same run as the "
                   "shipped ones.")] = None):
    """Measure speed and memory on this machine: models, attention, baselines, training."""
    import json

    from ..atomic import check_writable_file, write_text
    from ..bench import run_bench
    from ..models.registry import resolve_model_path
    from ..train.config import load_recipe

    runtime("cpu", threads)
    if json_path:
        check_writable_file(json_path)
    recipe = load_recipe("x2")
    extra = tuple(models or ())
    for name in extra:
        resolve_model_path(name)
    with console.status("benchmarking (a few minutes)..."):
        results = run_bench(recipe.model, recipe.batch, recipe.patch, quick=quick,
                            extra_models=extra)
    stdout.print(f"threads {results['threads']}, float32 matmul {results['matmul_gflops']:.1f} GFLOP/s (the ceiling)")
    columns = ["what", "size", "seconds", "mpix_per_s", "gflop", "gflops", "ceiling_share",
               "peak_mb", "map_mb", "psnr_db", "steps_per_s", "slowdown", "note"]
    for section in ("models", "mechanisms", "attention", "seams", "classical", "training",
                    "big images"):
        rows = results[section]
        used = [c for c in columns if any(r.get(c) is not None for r in rows)]
        table = folding_table(*used, title=section)
        for r in rows:
            table.add_row(*(_cell(c, r.get(c)) for c in used))
        stdout.print(table)
    growth = folding_table("what", "peak memory, 4x the pixels", title="memory growth")
    for what, ratio in results["memory_growth_4x_pixels"].items():
        growth.add_row(what, "-" if ratio is None else f"{ratio:.1f}x")
    stdout.print(growth)
    if json_path:
        write_text(json_path, json.dumps(results, indent=1))


def _cell(column: str, v) -> str:
    if v is None:
        return "-"
    if column == "ceiling_share":
        return f"{v:.0%}"
    if column == "slowdown":
        return f"{v:.2f}x"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
