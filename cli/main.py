"""The `srnl` command: parses, calls the library, prints. No logic of its own."""
from __future__ import annotations

import os
import signal
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


def _show_version(value: bool) -> None:
    if value:
        from srnl import __version__

        stdout.print(f"srnl {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Show the version and exit.")] = False):
    """Image super-resolution and denoising with non-local attention."""


Inputs = Annotated[list[Path], typer.Argument(
    help="Image files and/or folders; - reads one image from standard input.", show_default=False)]
Output = Annotated[Optional[Path], typer.Option("--output", "-o",
                   help="Output file (one input), folder (created if missing), or - for standard "
                        "output (PNG unless --ext).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m",
                     help="Shipped model name or checkpoint file.")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")]
Ext = Annotated[str, typer.Option(help="Output format: png, jpg, webp, tif, bmp or same "
                                       "(the input's; PNG where it cannot be written).")]
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
SkipExisting = Annotated[bool, typer.Option(
    help="Keep outputs that already exist and go on with the rest (to resume a folder job).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary; "
                                                           "errors are still shown.")]
JsonSummary = Annotated[Optional[Path], typer.Option(
    "--json", help="Write a summary of every file (input, output, sizes, seconds, status, "
                   "error) as JSON.")]
MIN_TILE = 64  # as auto tiling's smallest tile: below it, overlaps and edges take most of the time


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a file job: what was finished, for the one-line report."""


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise SrnlError(f"--threads must be 1 or more, got {threads}")


def _check_cuda(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SrnlError(f"device {device!r}: PyTorch finds no CUDA GPU here (use cpu or auto)")


def _setup(device: str, threads: int | None, max_pixels: int | None) -> tuple[str, int | None]:
    import torch
    from PIL import Image

    from srnl.imageio import DEFAULT_MAX_PIXELS

    _check_threads(threads)
    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device not in ("cpu", "cuda"):
        raise SrnlError(f"unknown device {device!r} (auto, cpu or cuda)")
    _check_cuda(device)
    if device == "cuda":
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = None  # srnl applies max_pixels itself
    return device, max_pixels or DEFAULT_MAX_PIXELS


def _tile(tile: str, overlap: int) -> int | str:
    """--tile, checked with --tile-overlap: an overlap over half a tile would barely advance."""
    if overlap < 0:
        raise SrnlError(f"--tile-overlap must be 0 or more, got {overlap}")
    if tile == "auto":
        return tile
    if not tile.isdigit() or 0 < int(tile) < MIN_TILE:
        raise SrnlError(f"--tile must be auto, 0 or a number from {MIN_TILE} up, got {tile!r}")
    side = int(tile)
    if side and overlap > side // 2:
        raise SrnlError(f"--tile-overlap must be at most half the tile ({side // 2} for --tile "
                        f"{side}), got {overlap}")
    return side


def _progress(quiet: bool = False) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                    disable=quiet)


def _process(inputs, output, suffix, ext, recursive, work_for: Callable, *, overwrite: bool,
             skip_existing: bool, quality: int, max_pixels: int | None, quiet: bool,
             json_path: Path | None) -> None:
    """Plan (refusing a bad plan before any image is read), run with progress, summarise; exit 1
    if any file failed. Under torchrun each process takes a disjoint share of the files and rank
    0 prints the combined summary."""
    from srnl.atomic import check_writable_file
    from srnl.batch import STDIO, plan_jobs
    from srnl.distributed import gather, process_group, shard

    if overwrite and skip_existing:
        raise SrnlError("--overwrite and --skip-existing contradict each other: choose one")
    jobs = plan_jobs(inputs, output, suffix, ext, recursive)
    if json_path:
        check_writable_file(json_path)
    with process_group() as d:
        results = gather(_run_share(shard(jobs, d), d, work_for, overwrite=overwrite,
                                    skip_existing=skip_existing, quality=quality,
                                    max_pixels=max_pixels, quiet=quiet), d)
        if d.main and not quiet:
            # An image written to standard output must not be mixed with text.
            _summary(results, console if output == STDIO else stdout)
        if d.main and json_path:
            _write_summary(results, json_path)
    if any(r.error for r in results):
        raise typer.Exit(1)


def _run_share(jobs, d, work_for: Callable, *, quiet: bool, **options) -> list:
    """Run this process's jobs with a progress bar (shown on rank 0 only)."""
    from srnl.batch import run_job

    results = []
    try:
        with _progress(quiet) as progress:
            files = progress.add_task("images", total=len(jobs), visible=d.main)
            tiles = progress.add_task("tiles", total=None, visible=False)

            def on_tile(done: int, total: int) -> None:
                progress.update(tiles, completed=done, total=total,
                                visible=d.main and done < total)

            for job in jobs:
                progress.update(files, description=job.src.name)
                result = run_job(job, work_for(on_tile), **options)
                if result.error:
                    console.print(f"[red]error:[/] {result.error}", soft_wrap=True,
                                  highlight=False)
                results.append(result)
                progress.advance(files)
    except KeyboardInterrupt:
        done = sum(r.status == "ok" for r in results)
        raise Interrupted(f"{done} of {len(jobs)} files finished") from None
    return results


def _summary(results, out: Console) -> None:
    table = Table("file", "in", "out", "seconds", "status")
    size = lambda s: f"{s[0]}x{s[1]}" if s else "-"
    style = {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}
    for r in results:
        table.add_row((r.src if r.error else r.dst).name, size(r.in_size), size(r.out_size),
                      f"{r.seconds:.2f}", style[r.status])
    out.print(table)


def _write_summary(results, path: Path) -> None:
    import json

    from srnl.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps([r.to_dict() for r in results], indent=1) + "\n")


@app.command()
def upscale(inputs: Inputs, output: Output = None,
            scale: Annotated[Optional[int], typer.Option(
                "--scale", "-s", help="2, 3 or 4 (default: the model's scale; without --model, 2).",
                show_default=False)] = None,
            model: ModelOpt = None, suffix: Annotated[Optional[str], typer.Option(
                help="Output name suffix (default _x<scale>).")] = None,
            ext: Ext = "same", recursive: Recursive = False, overwrite: Overwrite = False,
            skip_existing: SkipExisting = False,
            tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
            device: Device = "auto", threads: Threads = None, quality: Quality = 95,
            max_pixels: MaxPixels = None, quiet: Quiet = False, json_path: JsonSummary = None):
    """Upscale images x2, x3 or x4."""
    from srnl.api import resolve_model, restore_picture

    device, max_pixels = _setup(device, threads, max_pixels)
    options = dict(tile=_tile(tile, tile_overlap), overlap=tile_overlap,
                   self_ensemble=self_ensemble)
    net = resolve_model(model, "sr", scale, device)
    _process(inputs, output, suffix if suffix is not None else f"_x{net.config.scale}", ext,
             recursive,
             lambda on_tile: lambda pic: restore_picture(net, pic, on_tile=on_tile, **options),
             overwrite=overwrite, skip_existing=skip_existing, quality=quality,
             max_pixels=max_pixels, quiet=quiet, json_path=json_path)


@app.command()
def denoise(inputs: Inputs, output: Output = None,
            sigma: Annotated[str, typer.Option(
                help="Noise std in 0-255 units (0 to 255), or auto to estimate it per "
                     "image.")] = "auto",
            model: ModelOpt = None, suffix: Annotated[str, typer.Option(
                help="Output name suffix.")] = "_dn",
            ext: Ext = "same", recursive: Recursive = False, overwrite: Overwrite = False,
            skip_existing: SkipExisting = False,
            tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
            device: Device = "auto", threads: Threads = None, quality: Quality = 95,
            max_pixels: MaxPixels = None, quiet: Quiet = False, json_path: JsonSummary = None):
    """Remove Gaussian noise; one model serves every noise level."""
    from srnl.api import check_sigma, estimate_noise_sigma, resolve_model, restore_picture

    device, max_pixels = _setup(device, threads, max_pixels)
    try:
        fixed = None if sigma == "auto" else check_sigma(float(sigma))
    except ValueError:
        raise SrnlError(f"--sigma must be auto or a number, got {sigma!r}") from None
    options = dict(tile=_tile(tile, tile_overlap), overlap=tile_overlap,
                   self_ensemble=self_ensemble)
    net = resolve_model(model, "denoise", 1, device)

    def work_for(on_tile):
        def work(pic):
            s = fixed if fixed is not None else estimate_noise_sigma(pic)
            return restore_picture(net, pic, sigma=s, on_tile=on_tile, **options)
        return work

    _process(inputs, output, suffix, ext, recursive, work_for, overwrite=overwrite,
             skip_existing=skip_existing, quality=quality, max_pixels=max_pixels, quiet=quiet,
             json_path=json_path)


@app.command()
def models():
    """List the shipped models and their measured numbers."""
    from srnl.models.catalog import describe_shipped

    table = Table("name", "task", "params", "FLOPs/px", "PSNR, dB (SR: Y)")
    rows = describe_shipped()
    for row in rows:
        task = f"x{row['scale']} SR" if row["task"] == "sr" else row["task"]
        table.add_row(row["name"], task, f"{row['params']:,}", f"{row['flops_per_pixel'] / 1e3:.0f}K",
                      row["headline"])
    stdout.print(table)
    for row in rows:
        stdout.print(f"{row['name']}: trained on {row['data']}, {row['steps']} steps; "
                     f"PSNR / SSIM {row['metrics']}", highlight=False)


Opt = lambda help: typer.Option(help=help)


def _default_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return str(value)


class _TrainCommand(typer.core.TyperCommand):
    """`srnl train`, whose help shows the trainer's own defaults. They are read from TrainConfig
    only when the help is shown: importing it pulls in torch, which `srnl --help` should not."""

    def format_help(self, ctx, formatter) -> None:
        from srnl.train.config import TrainConfig

        cfg = TrainConfig()
        defaults = {**cfg.model.to_dict(), **cfg.to_dict()}
        for param in self.params:
            if param.name in defaults and "(default:" not in (param.help or ""):
                param.help = f"{param.help} (default: {_default_text(defaults[param.name])})"
        super().format_help(ctx, formatter)


@app.command(cls=_TrainCommand)
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
    """Train a model (single process, or several under torchrun).

    An option not given comes from --resume's run, else --config or --recipe, else the trainer's
    defaults shown below, which are not any recipe's: the recipes (srnl/recipes/*.toml) set their
    own steps, learning rate, schedule and network."""
    import math

    from srnl.atomic import check_writable_folder
    from srnl.train.config import TrainConfig, load_toml
    from srnl.train.loop import train as run_training

    given = {k: v for k, v in locals().items() if v is not None}
    for key in ("recipe", "config", "resume", "run_training", "TrainConfig", "load_toml", "math",
                "check_writable_folder"):
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
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise SrnlError(f"the learning rate must be a positive number, got {cfg.lr}")
    _check_threads(cfg.threads or None)
    _check_cuda(cfg.device)
    check_writable_folder(cfg.out)
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

    def update(p):
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("train", total=p.steps, completed=p.step - 1, loss=p.loss,
                                lr=0.0, speed=0.0, val="-")
        t = bar.tasks[0]
        bar.update(task, completed=p.step, loss=p.loss, lr=p.lr, speed=t.speed or 0.0,
                   val=f"{p.val_psnr:.2f} dB" if p.val_psnr else "-")
        if p.step >= p.steps:
            bar.stop()

    return update


@app.command()
def export(checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint (last.pt, best.pt).")],
           output: Annotated[Path, typer.Argument(help="The model file to write.")],
           weights: Annotated[str, typer.Option(help="auto (EMA if present), ema or model.")] = "auto",
           overwrite: Annotated[bool, typer.Option(help="Replace an existing model file.")] = False):
    """Strip a training checkpoint down to a model file for --model / load_model."""
    from srnl.atomic import check_writable_file
    from srnl.models.checkpoint import export_model

    if output.exists() and output.resolve() == checkpoint.resolve():
        raise SrnlError(f"{output}: the model file would overwrite its checkpoint; refused")
    check_writable_file(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    meta = export_model(checkpoint, output, weights=weights)
    stdout.print(f"wrote {output} (step {meta.get('steps', '?')})")


import cli.evaluate  # noqa: E402,F401  (registers eval/compare; it imports this module)


@app.command()
def bench(json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results here.")] = None,
          quick: Annotated[bool, typer.Option(help="Smaller sizes, one repeat (a smoke run).")] = False,
          threads: Threads = None):
    """Measure speed and memory on this machine: models, attention, baselines, training."""
    import json

    from srnl.atomic import atomic_path, check_writable_file
    from srnl.bench import run_bench

    _check_threads(threads)
    if json_path:
        check_writable_file(json_path)
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
        json_path.parent.mkdir(parents=True, exist_ok=True)
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


def _terminate(signum, frame) -> None:
    # As Ctrl-C: unwinding runs the `finally` blocks that delete half-written temporary files.
    raise KeyboardInterrupt


def main() -> None:
    from srnl.runtime import keep_freed_memory

    keep_freed_memory()
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except SrnlError as e:
        console.print(f"[red]error:[/] {e}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except Interrupted as e:
        console.print(f"[red]interrupted:[/] {e}", highlight=False)
        sys.exit(130)
    except SystemExit as e:
        if e.code == 130:  # Typer's exit after a KeyboardInterrupt it caught itself
            console.print("[red]interrupted[/]")
        raise
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
