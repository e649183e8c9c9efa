"""`srnl upscale` and `srnl denoise`: files and folders in, files out."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console

from .common import (folding_table, Device, Ensemble, Ext, Inputs, JsonSummary, MaxPixels, ModelOpt, Output,
                     Overwrite, Quality, Quiet, Recursive, SkipExisting, Threads, Tile,
                     TileOverlap, command, console, inference_options, print_error, progress, runtime,
                     stdout)


def _run(inputs: list[Path], output: str | None, suffix: str, ext: str, recursive: bool,
         work_for: Callable, *, overwrite: bool, skip_existing: bool, quality: int,
         max_pixels: int | None, quiet: bool, json_path: Path | None) -> None:
    """Plan (a bad plan is refused before any image is read), run with a progress bar, print the
    summary; exit 1 if any file failed."""
    from ..atomic import check_writable_file
    from ..files import (STDIO, FileReporter, JobInterrupted, WriteOptions, plan_jobs, run_files,
                         write_summary)

    options = WriteOptions(overwrite, skip_existing, quality, max_pixels)
    jobs = plan_jobs(inputs, output, suffix, ext, recursive)
    if json_path:
        check_writable_file(json_path)
    with progress(quiet) as bar:
        files = bar.add_task("images", total=len(jobs), visible=False)
        tiles = bar.add_task("tiles", total=None, visible=False)
        main = True  # only the main process (under torchrun) shows its bars

        def start(total, d):
            nonlocal main
            main = d.main
            bar.update(files, total=total, visible=main)

        def tile(done, total):
            bar.update(tiles, completed=done, total=total, visible=main and done < total)

        def after(result):
            if result.error:
                print_error(result.error, result.option)
            bar.advance(files)

        report = FileReporter(start, lambda job: bar.update(files, description=job.src.name),
                              tile, after)
        try:
            results, main = run_files(jobs, work_for, options, report)
        except JobInterrupted as e:
            # What was done, skipped, failed and not started, so that the job can be resumed.
            if json_path:
                write_summary(e.results, json_path)
            raise
    if main and not quiet:
        # An image written to standard output must not be mixed with text.
        _summary(results, console if output == str(STDIO) else stdout)
    if main and json_path:
        write_summary(results, json_path)
    if any(r.error for r in results):
        raise typer.Exit(1)


def _summary(results, out: Console) -> None:
    notes = any(r.note for r in results)
    table = folding_table("file", "model", "in", "out", "seconds", "status", *(["note"] if notes else []))
    size = lambda s: f"{s[0]}x{s[1]}" if s else "-"
    style = {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}
    for r in results:
        table.add_row((r.src if r.error else r.dst).name, r.model or "-", size(r.in_size),
                      size(r.out_size),
                      f"{r.seconds:.2f}", style[r.status], *([r.note or "-"] if notes else []))
    out.print(table)


@command()
def upscale(inputs: Inputs, output: Output = None,
            scale: Annotated[Optional[float], typer.Option(
                "--scale", "-s", help="Any factor above 1 up to 4: 2, 3 and 4 run a model as it "
                "is, others the next model up and a Lanczos downscale (default: the model's "
                "scale; without --model, 2).", show_default=False)] = None,
            width: Annotated[Optional[int], typer.Option(
                help="Output width instead of --scale (alone: the height keeps the aspect).",
                show_default=False)] = None,
            height: Annotated[Optional[int], typer.Option(
                help="Output height instead of --scale (alone: the width keeps the aspect).",
                show_default=False)] = None,
            model: ModelOpt = None, suffix: Annotated[Optional[str], typer.Option(
                help="Output name suffix (default _x<scale>, _<W>w, _<H>h or _<W>x<H>).")] = None,
            ext: Ext = "same", recursive: Recursive = False, overwrite: Overwrite = False,
            skip_existing: SkipExisting = False,
            tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
            device: Device = "auto", threads: Threads = None, quality: Quality = 95,
            max_pixels: MaxPixels = None, quiet: Quiet = False, json_path: JsonSummary = None):
    """Upscale images by any factor up to 4, or to a width or height.

    The default models are made for photos as they are, JPEG and noise included; -m x2, x3 or x4
    selects the benchmark-protocol ones (clean bicubic LR)."""
    from ..tasks import upscale_task

    task = upscale_task(scale, width, height, model, runtime(device, threads),
                        inference_options(tile, tile_overlap, self_ensemble))
    _run(inputs, output, suffix if suffix is not None else task.suffix, ext, recursive,
         task.work_for, overwrite=overwrite, skip_existing=skip_existing, quality=quality,
         max_pixels=max_pixels, quiet=quiet, json_path=json_path)


@command()
def denoise(inputs: Inputs, output: Output = None,
            sigma: Annotated[str, typer.Option(
                help="Noise std in 0-255 units (0 to 255), or auto: the model's own estimate "
                     "per image (the shipped model: per pixel, JPEG artefacts included).")] = "auto",
            model: ModelOpt = None, suffix: Annotated[str, typer.Option(
                help="Output name suffix.")] = "_dn",
            ext: Ext = "same", recursive: Recursive = False, overwrite: Overwrite = False,
            skip_existing: SkipExisting = False,
            tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
            device: Device = "auto", threads: Threads = None, quality: Quality = 95,
            max_pixels: MaxPixels = None, quiet: Quiet = False, json_path: JsonSummary = None):
    """Remove noise and JPEG artefacts; the level used for each image is in the summary."""
    from ..tasks import denoise_task

    task = denoise_task(sigma, model, runtime(device, threads),
                        inference_options(tile, tile_overlap, self_ensemble))
    _run(inputs, output, suffix, ext, recursive, task.work_for, overwrite=overwrite,
         skip_existing=skip_existing, quality=quality, max_pixels=max_pixels, quiet=quiet,
         json_path=json_path)
