"""`srnl train` and `srnl export`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..errors import SrnlError
from .common import app, command, console, folding_table, stdout

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
        from ..train.config import TrainConfig

        cfg = TrainConfig()
        defaults = {**cfg.model.to_dict(), **cfg.to_dict()}
        for param in self.params:
            if param.name in defaults and "(default:" not in (param.help or ""):
                param.help = f"{param.help} (default: {_default_text(defaults[param.name])})"
        super().format_help(ctx, formatter)


# Options that choose where the configuration comes from, not what it says.
SOURCES = ("recipe", "config", "resume")


@app.command(cls=_TrainCommand)
def train(
    ctx: typer.Context,
    recipe: Annotated[Optional[str], typer.Option(help="A shipped model's name (photo-x2, x4, denoise...: all its phases, in order, in one run directory) or one phase's recipe (srnl/recipes/*.toml).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="A TOML file of training options.")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory.")] = None,
    task: Annotated[Optional[str], Opt("sr or denoise.")] = None,
    scale: Annotated[Optional[int], Opt("2, 3 or 4 (sr).")] = None,
    data: Annotated[Optional[list[str]], Opt("Training image folder or .txt list (repeatable).")] = None,
    val: Annotated[Optional[str], Opt("Validation folder or .txt list.")] = None,
    val_holdout: Annotated[Optional[int], Opt("Hold this many training images out for validation.")] = None,
    steps: Annotated[Optional[int], Opt("Training steps.")] = None,
    batch: Annotated[Optional[int], Opt("Patches per step per process.")] = None,
    patch: Annotated[Optional[int], Opt("LR patch side.")] = None,
    sampling: Annotated[Optional[str], Opt("image or area: how patches pick their image.")] = None,
    lr: Annotated[Optional[float], Opt("Peak learning rate.")] = None,
    schedule: Annotated[Optional[str], Opt("cosine or multistep.")] = None,
    warmup: Annotated[Optional[int], Opt("Warm-up steps (cosine).")] = None,
    milestones: Annotated[Optional[list[int]], Opt("Multistep milestones (repeatable).")] = None,
    loss: Annotated[Optional[str], Opt("l1, l2 or charbonnier.")] = None,
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
    time_limit: Annotated[Optional[float], Opt("End the run (validated, saved) after this many seconds of training; the cosine follows the clock (0: none; one process).")] = None,
    cache_dir: Annotated[Optional[str], Opt("Cache decoded images here (memory-mapped).")] = None,
    features: Annotated[Optional[int], Opt("Network width.")] = None,
    blocks: Annotated[Optional[int], Opt("Residual blocks.")] = None,
    nonlocal_after: Annotated[Optional[list[int]], Opt("Non-local module after block N (repeatable; -1: none).")] = None,
    nonlocal_down: Annotated[Optional[int], Opt("Non-local query downsampling.")] = None,
    nonlocal_pool: Annotated[Optional[int], Opt("Non-local key/value pooling.")] = None,
    nonlocal_heads: Annotated[Optional[int], Opt("Non-local heads.")] = None,
    nonlocal_cross_scale: Annotated[Optional[bool], Opt("Non-local values: each key's block at query resolution.")] = None,
    nonlocal_patch: Annotated[Optional[int], Opt("Non-local query/key embeddings from k x k neighbourhoods.")] = None,
    rep_branches: Annotated[Optional[bool], Opt("Train convs as 3x3 + 1x1 + identity branches.")] = None,
):
    """Train a model (single process, or several under torchrun).

    An option not given comes from --resume's run, else --config or --recipe, else the trainer's
    defaults shown below, which are not any recipe's: the recipes (srnl/recipes/*.toml) set their
    own steps, learning rate, schedule, network and degradation."""
    from ..atomic import check_writable_folder
    from ..runtime import resolve_device
    from ..train.config import build_config
    from ..train.loop import train as run_training
    from ..train.pipeline import PIPELINE_FILE, is_pipeline, resume_pipeline, run_pipeline

    # Click reports a repeatable option that was not given as (), not None.
    given = {k: v for k, v in ctx.params.items() if k not in SOURCES and v not in (None, ())}
    fit = lambda cfg, resume: run_training(cfg, resume=resume, progress=_train_progress(),
                                           echo=console.print)
    if resume is not None and (resume / PIPELINE_FILE).exists():
        run_dir = resume_pipeline(resume, fit, console.print)
    elif is_pipeline(recipe) and config is None:
        out = given.get("out") or f"runs/{recipe}"
        check_writable_folder(out)
        run_dir = run_pipeline(recipe, given, out, False, fit, console.print)
    else:
        cfg = build_config(given, recipe, config and str(config), resume and str(resume))
        resolve_device(cfg.device)
        check_writable_folder(cfg.out)
        run_dir = fit(cfg, resume is not None)
    stdout.print(f"run directory: {run_dir}")


def _train_progress():
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


@command()
def export(checkpoint: Annotated[str, typer.Argument(
               metavar="CHECKPOINT", help="A training checkpoint (last.pt, best.pt); for ONNX "
                                          "also a model file or a shipped model's name.")],
           output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                                help="The model file to write.")],
           format: Annotated[str, typer.Option(
               "--format", help="pt (an srnl model file for --model) or onnx; default: from "
                                "the output's extension.")] = "auto",
           weights: Annotated[str, typer.Option(help="auto (EMA if present), ema or model.")] = "auto",
           overwrite: Annotated[bool, typer.Option("--overwrite",
                                                   help="Replace an existing model file.")] = False):
    """Strip a training checkpoint down to a model file for --model / load_model, or write a
    model as ONNX (any height and width; names, value range and scale in its metadata)."""
    from ..atomic import check_writable_file

    if format == "auto":
        format = "onnx" if output.suffix.lower() == ".onnx" else "pt"
    if format not in ("pt", "onnx"):
        raise SrnlError(f"must be pt or onnx, got {format!r}", option="format")
    if output.exists() and output.resolve() == Path(checkpoint).resolve():
        raise SrnlError(f"{output}: the model file would overwrite its checkpoint; refused")
    check_writable_file(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        try:
            from ..models.onnx_export import OPSET, export_model_onnx
        except ImportError:
            raise SrnlError("ONNX export needs the onnx extra: pip install \"srnl[onnx]\"") from None
        meta = export_model_onnx(checkpoint, output)
        stdout.print(f"wrote {output} (ONNX opset {OPSET}, {meta['task']} x{meta['scale']})")
        return
    from ..models.checkpoint import export_model

    meta = export_model(checkpoint, output, weights=weights)
    stdout.print(f"wrote {output} (step {meta.get('steps', '?')})")


@command(name="train-detector")
def train_detector(
    data: Annotated[list[str], typer.Argument(
        metavar="DATA...", help="Training image folders or .txt lists.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                         help="The detector file to write.")],
    patches: Annotated[int, typer.Option(help="Training patches, made once.")] = 24000,
    epochs: Annotated[int, typer.Option(help="Passes over the patches.")] = 6,
    threads: Annotated[Optional[int], typer.Option(show_default=False,
                                                   help="CPU threads.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite",
                                            help="Replace an existing file.")] = False):
    """Train the detector that sends aliased input (every n-th pixel, bilinear without
    prefilter) to a shipped upscaler's model for it; the shipped one is srnl/models/weights/
    aliasing.pt, made by this command on the recipes' training data."""
    import torch

    from ..atomic import check_writable_file
    from ..train.detector import train_detector as run

    if patches < 100:
        raise SrnlError("needs at least 100 patches", option="patches")
    if epochs < 1:
        raise SrnlError("needs at least 1 epoch", option="epochs")
    check_writable_file(output, overwrite)
    if threads:
        torch.set_num_threads(threads)
    meta = run(data, output, patches, epochs=epochs,
               on_epoch=lambda e, acc: console.print(f"epoch {e}/{epochs}: held-out patches "
                                                     f"{acc:.1%} right"))
    stdout.print(f"wrote {output} ({meta['patches']} patches, accuracy {meta['val_accuracy']:.1%})")


@command()
def retrain(
    output: Annotated[Path, typer.Option("--output", "-o", metavar="DIR",
                                         help="Folder for each model's weights (NAME.pt) and "
                                              "the runs' log (retrain.jsonl).")],
    minutes: Annotated[float, typer.Option(help="The whole slot, set-up included.")] = 9.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", show_default=False,
        help="Retrain only these (repeatable; default: every shipped model but "
             "denoise-gaussian).")] = None,
    data: Annotated[Optional[list[str]], typer.Option(
        show_default=False, help="Training images instead of the recipes' (repeatable).")] = None,
    val_holdout: Annotated[Optional[int], typer.Option(
        show_default=False, help="With --data: hold this many images out for validation.")] = None,
    steps: Annotated[Optional[int], typer.Option(
        show_default=False, help="At most this many steps (a smoke run).")] = None,
    batch: Annotated[Optional[int], typer.Option(show_default=False)] = None,
    patch: Annotated[Optional[int], typer.Option(show_default=False)] = None,
    work: Annotated[Optional[Path], typer.Option(
        show_default=False, help="Keep the run folders here (default: a temporary folder).")] = None,
):
    """Retrain the shipped models at once within a time slot (a lent GPU machine): each from its
    shipped weights on its last phase's mix, GPU-sized batches, bf16 on CUDA."""
    import tempfile

    from ..atomic import check_writable_folder
    from ..runtime import resolve_device
    from ..train.retrain import MODELS, retrain as run_retrain

    check_writable_folder(output)
    options = {"data": data, "val_holdout": val_holdout, "steps": steps, "batch": batch,
               "patch": patch}
    with tempfile.TemporaryDirectory(prefix="srnl-retrain-") as tmp:
        summaries = run_retrain(output, work or tmp, minutes, resolve_device(device),
                                tuple(model or MODELS), options, console.print)
    table = folding_table("model", "steps", "seconds", "best validation PSNR", "file")
    for s in summaries:
        table.add_row(s["model"], str(s["steps"]), f"{s['seconds']:.0f}",
                      "-" if s["best_val_psnr"] is None else f"{s['best_val_psnr']:.3f}",
                      s["file"])
    stdout.print(table)
