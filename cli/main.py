"""The `srnl` command: parses, calls the library, prints. No logic of its own."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from srnl.errors import SrnlError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Image super-resolution and denoising with non-local attention.")
console = Console(stderr=True)
stdout = Console()

Inputs = Annotated[list[Path], typer.Argument(help="Image files and/or folders.", show_default=False)]
Output = Annotated[Optional[Path], typer.Option("--output", "-o",
                   help="Output file (one input) or folder (created if missing).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m",
                     help="Shipped model name or checkpoint file.")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")]
Ext = Annotated[str, typer.Option(help="Output format: png, jpg, webp, tif or same.")]
Overwrite = Annotated[bool, typer.Option(help="Replace existing outputs (never an input).")]
Tile = Annotated[str, typer.Option(help="auto: tile only if over the memory budget; 0: never; "
                                        "N: N x N input tiles.")]
TileOverlap = Annotated[int, typer.Option(help="Overlap between tiles, in input pixels.")]
Ensemble = Annotated[bool, typer.Option("--self-ensemble", help="Average the 8 flips/transposes.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads (default: all cores).")]
Quality = Annotated[int, typer.Option(help="JPEG/WebP quality.")]
MaxPixels = Annotated[Optional[int], typer.Option(
    help="Refuse images with more pixels (decompression bomb guard).")]


def _setup(device: str, threads: int | None, max_pixels: int | None) -> tuple[str, int | None]:
    import torch
    from PIL import Image

    from srnl.imageio import DEFAULT_MAX_PIXELS

    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device not in ("cpu", "cuda"):
        raise SrnlError(f"unknown device {device!r} (auto, cpu or cuda)")
    if device == "cuda":
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = None  # srnl applies max_pixels itself
    return device, max_pixels or DEFAULT_MAX_PIXELS


def _tile(tile: str) -> int | str:
    if tile == "auto":
        return tile
    if not tile.isdigit():
        raise SrnlError(f"--tile must be auto, 0 or a positive number, got {tile!r}")
    return int(tile)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)


def _process(inputs, output, suffix, ext, recursive, overwrite, quality, max_pixels,
             work_for: Callable) -> None:
    """Plan, run (with progress) and summarise; exit 1 if any file failed. Under torchrun each
    process takes a disjoint share of the files and rank 0 prints the combined summary."""
    from srnl.batch import plan_jobs
    from srnl.distributed import gather, process_group, shard

    with process_group() as d:
        jobs = shard(plan_jobs(inputs, output, suffix, ext, recursive), d)
        results = gather(_run_share(jobs, d, overwrite, quality, max_pixels, work_for), d)
        if d.main:
            _summary(results)
    if any(r.error for r in results):
        raise typer.Exit(1)


def _run_share(jobs, d, overwrite, quality, max_pixels, work_for: Callable) -> list:
    """Run this process's jobs with a progress bar (shown on rank 0 only)."""
    from srnl.batch import run_job

    results = []
    with _progress() as progress:
        files = progress.add_task("images", total=len(jobs), visible=d.main)
        tiles = progress.add_task("tiles", total=None, visible=False)

        def on_tile(done: int, total: int) -> None:
            progress.update(tiles, completed=done, total=total, visible=d.main and done < total)

        for job in jobs:
            progress.update(files, description=job.src.name)
            result = run_job(job, work_for(on_tile), overwrite=overwrite, quality=quality,
                             max_pixels=max_pixels)
            if result.error:
                console.print(f"[red]error:[/] {result.error}", soft_wrap=True, highlight=False)
            results.append(result)
            progress.advance(files)
    return results


def _summary(results) -> None:
    table = Table("file", "in", "out", "seconds", "status")
    size = lambda s: f"{s[0]}x{s[1]}" if s else "-"
    for r in results:
        table.add_row((r.src if r.error else r.dst).name, size(r.in_size), size(r.out_size),
                      f"{r.seconds:.2f}", "[red]failed[/]" if r.error else "[green]ok[/]")
    stdout.print(table)


@app.command()
def upscale(inputs: Inputs, output: Output = None,
            scale: Annotated[int, typer.Option("--scale", "-s", help="2, 3 or 4.")] = 2,
            model: ModelOpt = None, suffix: Annotated[Optional[str], typer.Option(
                help="Output name suffix (default _x<scale>).")] = None,
            ext: Ext = "same", recursive: Recursive = False, overwrite: Overwrite = False,
            tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
            device: Device = "auto", threads: Threads = None, quality: Quality = 95,
            max_pixels: MaxPixels = None):
    """Upscale images x2, x3 or x4."""
    from srnl.api import resolve_model, restore_picture

    device, max_pixels = _setup(device, threads, max_pixels)
    net = resolve_model(model, "sr", scale, device)
    options = dict(tile=_tile(tile), overlap=tile_overlap, self_ensemble=self_ensemble)
    _process(inputs, output, suffix if suffix is not None else f"_x{scale}", ext, recursive,
             overwrite, quality, max_pixels,
             lambda on_tile: lambda pic: restore_picture(net, pic, on_tile=on_tile, **options))


@app.command()
def denoise(inputs: Inputs, output: Output = None,
            sigma: Annotated[str, typer.Option(
                help="Noise std in 0-255 units, or auto to estimate it per image.")] = "auto",
            model: ModelOpt = None, suffix: Annotated[str, typer.Option(
                help="Output name suffix.")] = "_dn",
            ext: Ext = "same", recursive: Recursive = False, overwrite: Overwrite = False,
            tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
            device: Device = "auto", threads: Threads = None, quality: Quality = 95,
            max_pixels: MaxPixels = None):
    """Remove Gaussian noise; one model serves every noise level."""
    from srnl.api import resolve_model, estimate_noise_sigma, restore_picture

    device, max_pixels = _setup(device, threads, max_pixels)
    try:
        fixed = None if sigma == "auto" else float(sigma)
    except ValueError:
        raise SrnlError(f"--sigma must be auto or a number, got {sigma!r}") from None
    net = resolve_model(model, "denoise", 1, device)
    options = dict(tile=_tile(tile), overlap=tile_overlap, self_ensemble=self_ensemble)

    def work_for(on_tile):
        def work(pic):
            s = fixed if fixed is not None else estimate_noise_sigma(pic)
            return restore_picture(net, pic, sigma=s, on_tile=on_tile, **options)
        return work

    _process(inputs, output, suffix, ext, recursive, overwrite, quality, max_pixels, work_for)


@app.command()
def models():
    """List the shipped models and their measured numbers."""
    from srnl.models.catalog import describe_shipped

    table = Table("name", "task", "params", "FLOPs/px", "PSNR, dB (SR: Y)", "status")
    rows = describe_shipped()
    for row in rows:
        task = f"x{row['scale']} SR" if row["task"] == "sr" else row["task"]
        table.add_row(row["name"], task, f"{row['params']:,}", f"{row['flops_per_pixel'] / 1e3:.0f}K",
                      row["headline"], "provisional" if row["provisional"] else "")
    stdout.print(table)
    for row in rows:
        stdout.print(f"{row['name']}: trained on {row['data']}, {row['steps']} steps; "
                     f"PSNR / SSIM {row['metrics']}", highlight=False)


Opt = lambda help: typer.Option(help=help)


@app.command()
def train(
    recipe: Annotated[Optional[str], typer.Option(help="A recipe shipped with srnl (e.g. x2).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="A TOML file of training options.")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory.")] = None,
    task: Annotated[Optional[str], Opt("sr or denoise.")] = None,
    scale: Annotated[Optional[int], Opt("2, 3 or 4 (sr).")] = None,
    data: Annotated[Optional[list[str]], Opt("Training image folder (repeatable).")] = None,
    val: Annotated[Optional[str], Opt("Validation folder.")] = None,
    val_holdout: Annotated[Optional[int], Opt("Hold this many training images out for validation.")] = None,
    steps: Annotated[Optional[int], Opt("Training steps.")] = None,
    batch: Annotated[Optional[int], Opt("Patches per step per process.")] = None,
    patch: Annotated[Optional[int], Opt("LR patch side.")] = None,
    lr: Annotated[Optional[float], Opt("Peak learning rate.")] = None,
    schedule: Annotated[Optional[str], Opt("cosine or multistep.")] = None,
    warmup: Annotated[Optional[int], Opt("Warm-up steps (cosine).")] = None,
    milestones: Annotated[Optional[list[int]], Opt("Multistep milestones (repeatable).")] = None,
    loss: Annotated[Optional[str], Opt("l1 or charbonnier.")] = None,
    ema: Annotated[Optional[float], Opt("EMA decay of the weights (0: off).")] = None,
    sigma_min: Annotated[Optional[float], Opt("Denoising: lowest training sigma.")] = None,
    sigma_max: Annotated[Optional[float], Opt("Denoising: highest training sigma.")] = None,
    seed: Annotated[Optional[int], Opt("Random seed.")] = None,
    workers: Annotated[Optional[int], Opt("Data loader processes.")] = None,
    device: Annotated[Optional[str], Opt("auto, cpu or cuda.")] = None,
    threads: Annotated[Optional[int], Opt("CPU threads per process.")] = None,
    channels_last: Annotated[Optional[bool], Opt("channels_last memory format.")] = None,
    compile: Annotated[Optional[bool], Opt("torch.compile the network.")] = None,
    bf16: Annotated[Optional[bool], Opt("bf16 autocast (CUDA).")] = None,
    out: Annotated[Optional[str], Opt("Run directory.")] = None,
    save_every: Annotated[Optional[int], Opt("Checkpoint every N steps.")] = None,
    val_every: Annotated[Optional[int], Opt("Validate every N steps.")] = None,
    init: Annotated[Optional[str], Opt("Start from this model (name or file).")] = None,
    cache_dir: Annotated[Optional[str], Opt("Cache decoded images here (memory-mapped).")] = None,
    features: Annotated[Optional[int], Opt("Network width.")] = None,
    blocks: Annotated[Optional[int], Opt("Residual blocks.")] = None,
    nonlocal_after: Annotated[Optional[list[int]], Opt("Non-local module after block N (repeatable; -1: none).")] = None,
    nonlocal_down: Annotated[Optional[int], Opt("Non-local query downsampling.")] = None,
    nonlocal_pool: Annotated[Optional[int], Opt("Non-local key/value pooling.")] = None,
    nonlocal_heads: Annotated[Optional[int], Opt("Non-local heads.")] = None,
):
    """Train a model (single process, or several under torchrun)."""
    from srnl.train.config import TrainConfig, load_toml
    from srnl.train.loop import train as run_training

    given = {k: v for k, v in locals().items() if v is not None}
    for key in ("recipe", "config", "resume", "run_training", "TrainConfig", "load_toml"):
        given.pop(key, None)
    model_keys = ("task", "scale", "features", "blocks", "nonlocal_after", "nonlocal_down",
                  "nonlocal_pool", "nonlocal_heads")
    model = {k: given.pop(k) for k in model_keys if k in given}
    if model.get("nonlocal_after") == [-1]:
        model["nonlocal_after"] = []
    if model.get("task") == "denoise" and "scale" not in model:
        model["scale"] = 1
    cfg = TrainConfig()
    if resume:
        cfg = cfg.updated(load_toml(str(resume / "config.toml")))
        given["out"] = str(resume)
    elif recipe or config:
        cfg = cfg.updated(load_toml(str(config or recipe)))
    cfg = cfg.updated({**given, "model": model})
    if not cfg.data:
        raise SrnlError("no training data: give --data DIR, --recipe or --config")
    run_dir = run_training(cfg, resume=resume is not None, progress=_train_progress(cfg),
                           echo=console.print)
    stdout.print(f"run directory: {run_dir}")


def _train_progress(cfg):
    """A rich bar with loss, learning rate, steps/s and the last validation PSNR."""
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return None
    bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f} lr {task.fields[lr]:.2e} "
                              "{task.fields[speed]:.2f} it/s val {task.fields[val]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    task = None

    def update(run, loss, val_psnr):
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("train", total=cfg.steps, completed=run.step - 1, loss=loss,
                                lr=0.0, speed=0.0, val="-")
        t = bar.tasks[0]
        bar.update(task, completed=run.step, loss=loss, lr=run.scheduler.get_last_lr()[0],
                   speed=t.speed or 0.0, val=f"{val_psnr:.2f} dB" if val_psnr else "-")
        if run.step >= cfg.steps:
            bar.stop()

    return update


@app.command()
def export(checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint (last.pt, best.pt).")],
           output: Annotated[Path, typer.Argument(help="The model file to write.")],
           weights: Annotated[str, typer.Option(help="auto (EMA if present), ema or model.")] = "auto"):
    """Strip a training checkpoint down to a model file for --model / load_model."""
    from srnl.checkpoint import export_model

    meta = export_model(checkpoint, output, weights=weights)
    stdout.print(f"wrote {output} (step {meta.get('steps', '?')})")


import cli.evaluate  # noqa: E402,F401  (registers eval/compare; it imports this module)


@app.command()
def bench(json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results here.")] = None,
          quick: Annotated[bool, typer.Option(help="Smaller sizes, one repeat (a smoke run).")] = False,
          threads: Threads = None):
    """Measure speed and memory on this machine: models, attention, baselines, training."""
    import json

    from srnl.atomic import atomic_path
    from srnl.bench import run_bench

    with console.status("benchmarking (a few minutes)..."):
        results = run_bench(quick=quick, threads=threads)
    stdout.print(f"threads {results['threads']}, float32 matmul {results['matmul_gflops']:.1f} GFLOP/s (the ceiling)")
    columns = ["what", "size", "seconds", "mpix_per_s", "gflop", "gflops", "ceiling_share",
               "peak_mb", "map_mb", "psnr_db", "steps_per_s", "slowdown", "note"]
    for section in ("models", "mechanisms", "attention", "seams", "classical", "training"):
        rows = results[section]
        used = [c for c in columns if any(r.get(c) is not None for r in rows)]
        table = Table(*used, title=section)
        for r in rows:
            table.add_row(*(_cell(c, r.get(c)) for c in used))
        stdout.print(table)
    growth = Table("what", "peak memory, 4x the pixels", title="memory growth")
    for what, ratio in results["memory_growth_4x_pixels"].items():
        growth.add_row(what, "-" if ratio is None else f"{ratio:.1f}x")
    stdout.print(growth)
    if json_path:
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(results, indent=1))


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


def main() -> None:
    from srnl.runtime import keep_freed_memory

    keep_freed_memory()
    try:
        app()
    except SrnlError as e:
        console.print(f"[red]error:[/] {e}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        sys.exit(130)
