"""`srnl upscale` and `srnl denoise`: files and folders in, files out."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console

from ..errors import SrnlError
from .common import (folding_table, Device, Ensemble, Ext, Inputs, JsonSummary, MaxPixels, ModelOpt, Output,
                     Overwrite, Quality, Quiet, Recursive, SkipExisting, Threads, Tile,
                     TileOverlap, command, console, error_text, inference_options, progress, runtime,
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
                console.print(f"[red]error:[/] {error_text(result.error, result.option)}",
                              soft_wrap=True, highlight=False)
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


def _size_suffix(scale: float | None, width: int | None, height: int | None,
                 model_scale: int) -> str:
    if width and height:
        return f"_{width}x{height}"
    if width or height:
        return f"_{width}w" if width else f"_{height}h"
    return f"_x{scale:g}" if scale is not None else f"_x{model_scale}"


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
    from ..api import check_reach, upscale_picture
    from ..models.registry import model_label, resolve_model
    from ..sizing import check_request, model_scale_for

    options = inference_options(tile, tile_overlap, self_ensemble)
    device = runtime(device, threads)
    check_request(scale, width, height)
    needed = model_scale_for(scale) if scale is not None else None
    # Resolved once here when one model serves every image (a missing one fails before any
    # work); a width or height picks the model per image.
    net = (resolve_model(model, "sr", None, device) if model is not None else
           resolve_model(None, "sr", needed, device) if needed else None)
    if net is not None and scale is not None:
        check_reach(net, scale)

    def work_for(on_tile):
        def work(pic):
            out, ran = upscale_picture(pic, net, scale, width, height, device, options, on_tile)
            resized = out.size != tuple(s * ran for s in pic.size)
            name = model_label(model, "sr", ran)
            return out, name, f"Lanczos to {out.size[0]}x{out.size[1]}" if resized else None
        return work

    default_suffix = _size_suffix(scale, width, height, net.config.scale if net else 2)
    _run(inputs, output, suffix if suffix is not None else default_suffix, ext, recursive,
         work_for, overwrite=overwrite, skip_existing=skip_existing, quality=quality,
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
    from ..api import denoise_picture
    from ..degrade import check_sigma
    from ..models.registry import model_label, resolve_model

    try:
        fixed = None if sigma == "auto" else check_sigma(float(sigma))
    except ValueError:
        raise SrnlError(f"--sigma must be auto or a number, got {sigma!r}") from None
    options = inference_options(tile, tile_overlap, self_ensemble)
    net = resolve_model(model, "denoise", 1, runtime(device, threads))

    def work_for(on_tile):
        def work(pic):
            out, level = denoise_picture(net, pic, fixed, options, on_tile)
            return out, model_label(model, "denoise", 1), None if level is None else str(level)
        return work

    _run(inputs, output, suffix, ext, recursive, work_for, overwrite=overwrite,
         skip_existing=skip_existing, quality=quality, max_pixels=max_pixels, quiet=quiet,
         json_path=json_path)
