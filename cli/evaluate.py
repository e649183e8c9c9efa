"""`srnl eval` and `srnl compare`: parse, call srnl.evaluate / srnl.compare, print."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.main import (Device, Ensemble, Threads, Tile, TileOverlap, _progress, _setup, _tile, app,
                      console, stdout)
from srnl.errors import SrnlError


def _numbers(text: str, kind: type, option: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise SrnlError(f"{option} must be comma-separated numbers, got {text!r}")
    return values


def _box(text: str) -> tuple[int, int, int, int]:
    values = _numbers(text, int, "--box")
    if len(values) != 4:
        raise SrnlError(f"--box must be x,y,width,height, got {text!r}")
    return tuple(values)


def _results_table(records) -> Table:
    from srnl.report import psnr_text, seconds_text, setting_of

    table = Table("dataset", "method", "setting", "PSNR", "SSIM", "images", "s/image")
    table.add_column("tiled", no_wrap=True)
    for r in records:
        table.add_row(r.dataset, r.method, setting_of(r).label, psnr_text(r.psnr), f"{r.ssim:.4f}",
                      str(r.images), seconds_text(r.seconds),
                      f"{r.tiled}/{r.images} at {r.tile}" if r.tiled else "-")
    return table


def _per_image_table(records) -> Table:
    from srnl.report import psnr_text, seconds_text, setting_of

    table = Table("dataset", "method", "setting", "image", "PSNR", "SSIM", "seconds")
    for r in records:
        for s in r.per_image:
            table.add_row(r.dataset, r.method, setting_of(r).label, s.image, psnr_text(s.psnr),
                          f"{s.ssim:.4f}", seconds_text(s.seconds))
    return table


@app.command("eval")
def evaluate(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", show_default=False,
        help="Shipped model name, checkpoint file, or a baseline: bicubic (SR), nlm, nlm-auto, "
             "noisy (denoising). Repeatable.")],
    sets: Annotated[Optional[list[Path]], typer.Argument(
        show_default=False, help="Benchmark folders: plain, EDSR-style (HR/, LR_bicubic/X2/) or "
                                 "DIV2K (valid split).")] = None,
    data: Annotated[Optional[list[Path]], typer.Option(
        show_default=False, help="A benchmark folder, as an option (repeatable).")] = None,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", "-s", help="SR scales, e.g. 2 or 2,3,4 (default: the SR models' scale, else 2).",
        show_default=False)] = None,
    sigma: Annotated[str, typer.Option(help="Denoising noise levels, 0-255 units.")] = "15,25,50",
    clip: Annotated[bool, typer.Option(
        help="Clip the noisy input to [0, 255] (the uint8 protocol; default unclipped).")] = False,
    degradation: Annotated[Optional[str], typer.Option(
        "--degradation", "-d",
        help="Make the inputs with these seeded degradations instead of the protocol's, "
             "comma-separated: bicubic, jpegQ, noiseS, blurS (S in LR pixels), joined by + "
             "(blur0.5+jpeg75), or a preset (photo). Denoisers then get no sigma.",
        show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(
        help="Only the first N images of each set.")] = None,
    json_file: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the records as JSON.")] = None,
    csv_file: Annotated[Optional[Path], typer.Option(
        "--csv", help="Write the records as CSV.")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Write a Markdown table.")] = None,
    per_image: Annotated[bool, typer.Option(
        help="Show per-image scores (and put them in the JSON/CSV).")] = False,
    save_images: Annotated[Optional[Path], typer.Option(
        help="Save every output as DIR/dataset/method/setting/image.png.")] = None,
    compare_image: Annotated[Optional[Path], typer.Option(
        help="Write a comparison panel per dataset and setting into this folder.")] = None,
    tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
    device: Device = "auto", threads: Threads = None,
):
    """Score models and baselines on benchmark sets by the papers' protocols."""
    from srnl.atomic import check_writable_file, check_writable_folder
    from srnl.compare import dataset_panels
    from srnl.evaluate import NetOptions, load_method, plan, run_job
    from srnl.report import protocols, write_csv, write_json, write_markdown

    folders = [*(sets or []), *(data or [])]
    if not folders:
        raise SrnlError("no benchmark folder: give one or more folders (or --data DIR)")
    # Where the results go is checked first: a failure there would lose the whole run's work.
    for path in (json_file, csv_file, markdown):
        if path:
            check_writable_file(path)
    for path in (save_images, compare_image):
        if path:
            check_writable_folder(path)
    device, _ = _setup(device, threads, None)
    methods = [load_method(m, device) for m in model]
    jobs = plan(methods, folders, _numbers(scale, int, "--scale") if scale else None,
                _numbers(sigma, float, "--sigma"), clip, limit,
                [d.strip() for d in degradation.split(",") if d.strip()] if degradation else None)
    options = NetOptions(_tile(tile, tile_overlap), tile_overlap, self_ensemble)
    records = []
    with _progress() as progress:
        bar = progress.add_task("images", total=sum(len(j.pairs) for j in jobs))
        for job in jobs:
            progress.update(bar, description=f"{job.dataset} {job.method.name} {job.setting.label}")
            records.append(run_job(job, options, save_images, lambda: progress.advance(bar)))
    if per_image:
        stdout.print(_per_image_table(records))
    stdout.print(_results_table(records))
    for line in protocols(records):
        stdout.print(line, highlight=False)
    if json_file:
        write_json(records, json_file, per_image)
    if csv_file:
        write_csv(records, csv_file, per_image)
    if markdown:
        write_markdown(records, markdown)
    if compare_image:
        for path in dataset_panels(jobs, records, compare_image, options):
            console.print(f"panel: {path}", highlight=False)


@app.command()
def compare(
    image: Annotated[Path, typer.Argument(help="A clean image (or, with --no-reference, a "
                                               "degraded one).", show_default=False)],
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Shipped model name or checkpoint file (default: the shipped one "
                              "for --scale, or for denoising when --sigma is given).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Panel file (default: IMAGE_compare.png beside it).")] = None,
    box: Annotated[Optional[str], typer.Option(
        help="Crop x,y,width,height in output pixels (default: where the model gains "
             "most).")] = None,
    reference: Annotated[bool, typer.Option(
        "--reference/--no-reference",
        help="IMAGE is clean ground truth to degrade, or the degraded input itself.")] = True,
    scale: Annotated[Optional[int], typer.Option("--scale", "-s", help="SR scale.")] = None,
    sigma: Annotated[Optional[float], typer.Option(
        help="Denoising noise level (default 25; estimated with --no-reference).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing panel.")] = False,
    tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
    device: Device = "auto", threads: Threads = None,
):
    """Side-by-side crops of the ground truth, the baselines and a model, with their scores."""
    from srnl.api import check_sigma, resolve_model
    from srnl.atomic import check_writable_file
    from srnl.compare import compare_image, write_panel
    from srnl.evaluate import Method, NetOptions, Setting
    from srnl.models.registry import default_model, shared_model

    if sigma is not None:
        check_sigma(sigma)
    options = NetOptions(_tile(tile, tile_overlap), tile_overlap, self_ensemble)
    device, _ = _setup(device, threads, None)
    if model is None:
        model = (default_model("denoise") if sigma is not None and scale is None
                 else default_model("sr", scale or 2))
    net = shared_model(model, device)
    if scale is not None:
        resolve_model(net, "sr", scale, device)  # refuses a denoiser or another scale
    if net.config.task == "sr":
        setting = Setting("sr", net.config.scale)
    else:
        setting = Setting("denoise", 1, sigma if sigma is not None or not reference else 25.0)
    output = output or image.with_name(f"{image.stem}_compare.png")
    if output.exists() and output.resolve() == image.resolve():
        raise SrnlError(f"{output}: the panel would overwrite its input; refused")
    check_writable_file(output, overwrite)
    panel, columns, (x, y, w, h) = compare_image(
        image, Method(model, net), setting, reference=reference, box=_box(box) if box else None,
        options=options)
    write_panel(panel, output)
    table = Table("column", "scores")
    for c in columns:
        table.add_row(c.label, c.subtitle or "-")
    stdout.print(table)
    stdout.print(f"panel: {output} (crop {x},{y} {w}x{h})", highlight=False)
