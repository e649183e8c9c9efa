"""`srnl eval` and `srnl compare`: parse, call srnl.eval, print."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import SrnlError
from .common import (folding_table, Device, Ensemble, Threads, Tile, TileOverlap, app, command, console,
                     inference_options, numbers, progress, runtime, stdout)


def _sigmas(text: str) -> list[float | None]:
    """--sigma: comma-separated numbers; auto leaves the level to each method."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise SrnlError(f"--sigma must be comma-separated numbers or auto, got {text!r}")
    return [None if p == "auto" else numbers(p, float, "--sigma")[0] for p in parts]


def _box(text: str) -> tuple[int, int, int, int]:
    values = numbers(text, int, "--box")
    if len(values) != 4:
        raise SrnlError(f"--box must be x,y,width,height, got {text!r}")
    return tuple(values)


def _results_table(records) -> Table:
    from ..eval.report import psnr_text, seconds_text, setting_of

    table = folding_table("dataset", "method", "setting", "PSNR", "SSIM", "images", "s/image")
    table.add_column("tiled", no_wrap=True)
    for r in records:
        table.add_row(r.dataset, r.method, setting_of(r).label, psnr_text(r.psnr), f"{r.ssim:.4f}",
                      str(r.images), seconds_text(r.seconds),
                      f"{r.tiled}/{r.images} at {r.tile}" if r.tiled else "-")
    return table


def _per_image_table(records) -> Table:
    from ..eval.report import psnr_text, seconds_text, setting_of

    table = folding_table("dataset", "method", "setting", "image", "PSNR", "SSIM", "seconds")
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
             "noisy (denoising: the degraded input itself). Repeatable.")],
    sets: Annotated[Optional[list[Path]], typer.Argument(
        metavar="SET", show_default=False, help="Benchmark folders: plain, EDSR-style (HR/, LR_bicubic/X2/), "
                                 "DIV2K (valid split), or a .txt list of images.")] = None,
    data: Annotated[Optional[list[Path]], typer.Option(
        show_default=False, help="A benchmark folder, as an option (repeatable).")] = None,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", "-s", help="SR scales, e.g. 2 or 2,3,4 (default: the SR models' scale, else 2).",
        show_default=False)] = None,
    sigma: Annotated[Optional[str], typer.Option(
        help="Denoising noise levels, 0-255 units: of the protocol's Gaussian noise, or, with "
             "--degradation, the level the denoisers are told; auto leaves it to each method "
             "(default: 15,25,50; with --degradation, auto).", show_default=False)] = None,
    clip: Annotated[bool, typer.Option(
        help="Clip the noisy input to [0, 255] (the uint8 protocol; default unclipped).")] = False,
    degradation: Annotated[Optional[str], typer.Option(
        "--degradation", "-d",
        help="Make the inputs with these seeded degradations instead of the protocol's, "
             "comma-separated: bicubic, jpegQ, noiseS, blurS (S in LR pixels), joined by + "
             "(blur0.5+jpeg75); nearest (every n-th pixel from the first, as numpy, OpenCV "
             "and torch take it), nearest-centre (Pillow's), bilinear-aliased (OpenCV's and "
             "torch's) in place of the bicubic downscale; or a preset (photo, camera, "
             "poisson-gauss).",
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
    """Score models and baselines on benchmark sets by the papers' protocols.

    With --degradation the inputs are made by that seeded chain instead (JPEG, noise, blur...)."""
    from ..atomic import check_writable_file, check_writable_folder
    from ..eval.compare import dataset_panels
    from ..eval.report import protocols, write_csv, write_json, write_markdown
    from ..eval.restorers import load_method
    from ..eval.runner import plan, run_job

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
    kinds = [d.strip() for d in degradation.split(",") if d.strip()] if degradation else None
    sigmas = _sigmas(sigma or ("auto" if kinds else "15,25,50"))
    options = inference_options(tile, tile_overlap, self_ensemble)
    device = runtime(device, threads)
    methods = [load_method(m, device) for m in model]
    jobs = plan(methods, folders, numbers(scale, int, "--scale") if scale else None, sigmas,
                clip, limit, kinds)
    records = []
    with progress() as bar:
        images = bar.add_task("images", total=sum(len(j.pairs) for j in jobs))
        for job in jobs:
            bar.update(images, description=f"{job.dataset} {job.method.name} {job.setting.label}")
            records.append(run_job(job, options, save_images, lambda: bar.advance(images)))
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


@command()
def compare(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="A clean image (or, with --no-reference, a "
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
        help="Denoising noise level (default 25 for a Gaussian-only model; the model's own "
             "estimate with --no-reference, --degradation or a blind model).")] = None,
    degradation: Annotated[Optional[str], typer.Option(
        "--degradation", "-d", help="Degrade the clean image this way instead of the "
                                    "protocol's (as srnl eval --degradation).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing panel.")] = False,
    tile: Tile = "auto", tile_overlap: TileOverlap = 32, self_ensemble: Ensemble = False,
    device: Device = "auto", threads: Threads = None,
):
    """Side-by-side crops of the ground truth, the baselines and a model, with their scores."""
    from ..eval.compare import compare_image, comparison, panel_path, write_panel

    options = inference_options(tile, tile_overlap, self_ensemble)
    method, setting = comparison(model, scale=scale, sigma=sigma, degradation=degradation,
                                 reference=reference, device=runtime(device, threads))
    output = panel_path(image, output, overwrite)
    panel, columns, (x, y, w, h) = compare_image(
        image, method, setting, reference=reference, box=_box(box) if box else None,
        options=options)
    write_panel(panel, output)
    table = folding_table("column", "scores")
    for c in columns:
        table.add_row(c.label, c.subtitle or "-")
    stdout.print(table)
    stdout.print(f"panel: {output} (crop {x},{y} {w}x{h})", highlight=False)
