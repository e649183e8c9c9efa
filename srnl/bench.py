"""`srnl bench`: speed and memory on this machine, in one run so that ratios are meaningful.

Peak memory is the growth of the process's peak resident set (Linux VmHWM, reset through
/proc/self/clear_refs) while one call runs: what the operating system really had to give."""
from __future__ import annotations

import copy
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .api import upscale, denoise
from .infer import InferenceOptions, tile_spans
from .models.aliasing import aliasing_logit
from .models.attention import NonLocalAttention
from .models.catalog import count_flops
from .models.config import ModelConfig
from .models.network import build_model
from .models.registry import PRETRAINED, shared_model
from .runtime import exact_memory_accounting

CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory(fn: Callable[[], object]) -> tuple[object, int | None]:
    """Run fn; return its result and the growth of peak RSS in bytes (None where unsupported)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return fn(), None
    base = _status_kb("VmRSS")
    result = fn()
    peak = _status_kb("VmHWM")
    return result, None if base is None or peak is None else max(0, peak - base) * 1024


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    return 2 * n**3 / median_seconds(lambda: a @ b, repeats) / 1e9


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def dense_nonlocal(x: torch.Tensor, theta, phi, g) -> torch.Tensor:
    """The seed's non-local block: full-resolution embeddings and the N x N map materialised."""
    b, c, h, w = x.shape
    q = theta(x).flatten(2).transpose(1, 2)
    k = phi(x).flatten(2)
    v = g(x).flatten(2).transpose(1, 2)
    attn = torch.softmax(q @ k / q.shape[-1] ** 0.5, dim=-1)
    return (attn @ v).transpose(1, 2).reshape(b, -1, h, w)


ATTENTION = {"srnl non-local (down 4, pool 2)": dict(down=4, pool=2),
             "srnl non-local, no pooling (fused)": dict(down=1, pool=1),
             "dense non-local (seed)": None}


def build_case(spec: tuple) -> Callable[[], object]:
    """A measured call from a picklable spec, so that the memory pass can rebuild it in a process
    of its own: ("model", name, h, w), ("attention", variant, side, features), ("nlm", h, w)."""
    kind = spec[0]
    if kind == "model":
        _, name, h, w = spec
        net, img = shared_model(name), _image(h, w)
        if net.config.task == "denoise":
            # As `srnl denoise` runs it by default: a blind model estimates its own level.
            return lambda: denoise(img, None if net.config.blind else 25, net)
        return lambda: upscale(img, net.config.scale, net)
    if kind == "attention":
        _, variant, side, features = spec
        torch.manual_seed(0)
        x = torch.rand(1, features, side, side)
        if ATTENTION[variant] is None:
            convs = [torch.nn.Conv2d(features, features // 2, 1) for _ in range(3)]
            fn = lambda: dense_nonlocal(x, *convs)
        else:
            fn = NonLocalAttention(features, **ATTENTION[variant]).eval()
            fn = partial(fn, x)
        return lambda: _no_grad(fn)
    if kind == "nlm":
        from .eval.restorers import nlm

        _, h, w = spec
        noisy = _image(h, w).astype(np.float64)
        return lambda: nlm(noisy, 25.0)  # the very call `srnl eval -m nlm` scores
    raise ValueError(f"unknown case {spec!r}")


def _no_grad(fn):
    with torch.inference_mode():
        return fn()


def _peaks(specs: list[tuple], threads: int) -> list[int | None]:
    torch.set_num_threads(threads)
    exact_memory_accounting()
    return [peak_memory(build_case(spec))[1] for spec in specs]


def measure_peaks(specs: list[tuple]) -> list[int | None]:
    """Peak memory of each case, measured in a fresh process: exact accounting slows large
    allocations (each one maps fresh pages), so it must not touch the timed process."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_peaks, (specs, torch.get_num_threads()))


def executed_flops(net, h: int, w: int) -> float:
    """FLOPs of the calls that default flags make: one per tile where the image is tiled (each
    tile's attention sees only that tile, so this is less than one whole-image count)."""
    options = InferenceOptions()
    tile = options.tile_for(net, h, w)
    if not tile:
        return count_flops(net, h, w)
    rows, cols = tile_spans(h, w, tile, options.overlap)
    sizes = Counter((th, tw) for _, th in rows for _, tw in cols)
    return sum(n * count_flops(net, th, tw) for (th, tw), n in sizes.items())


def bench_models(sizes: dict[str, list[tuple[int, int]]], repeats: int, ceiling: float,
                 extra: tuple[str, ...] = ()) -> list[dict]:
    """Each shipped model, then each of `extra` (names or files), through the public API
    (default flags: auto tiling) at each size."""
    rows = []
    for name in [*PRETRAINED, *extra]:
        net = shared_model(name)
        for h, w in sizes[str(net.config.task)]:
            case = ("model", name, h, w)
            seconds = median_seconds(build_case(case), repeats)
            flops = executed_flops(net, h, w)
            rows.append(dict(what=f"model {name}", size=f"{w}x{h}", seconds=seconds,
                             mpix_per_s=h * w / seconds / 1e6, gflop=flops / 1e9,
                             gflops=flops / seconds / 1e9,
                             ceiling_share=flops / seconds / 1e9 / ceiling, case=case))
    return rows


def bench_attention(sides: list[int], features: int, budget: float, repeats: int) -> list[dict]:
    """srnl's module (default factors, and with no pooling at all) against the dense block on the
    same feature maps; the dense block is refused where its map alone exceeds `budget` bytes."""
    rows = []
    for side in sides:
        n = side * side
        for variant, factors in ATTENTION.items():
            row = dict(what=variant, size=f"{side}x{side}x{features}", map_mb=n * n * 4 / 2**20)
            if factors is None and n * n * 4 > budget:
                row.update(note="refused: map over budget")
            else:
                case = ("attention", variant, side, features)
                row.update(seconds=median_seconds(build_case(case), repeats), case=case)
            rows.append(row)
    return rows


def bench_classical(sr_sizes: list[tuple[int, int]], dn_size: tuple[int, int],
                    repeats: int) -> list[dict]:
    from PIL import Image

    rows = []
    for h, w in sr_sizes:
        im = Image.fromarray(_image(h, w))
        seconds = median_seconds(lambda: im.resize((2 * w, 2 * h), Image.BICUBIC), repeats)
        rows.append(dict(what="Pillow bicubic x2", size=f"{w}x{h}", seconds=seconds,
                         mpix_per_s=h * w / seconds / 1e6))
    h, w = dn_size
    case = ("nlm", h, w)
    seconds = median_seconds(build_case(case), repeats)
    rows.append(dict(what="scikit-image NLM (fast)", size=f"{w}x{h}", seconds=seconds,
                     mpix_per_s=h * w / seconds / 1e6, case=case))
    return rows


def bench_training(config: ModelConfig, batch: int, patch: int, steps: int) -> list[dict]:
    """Optimiser steps per second on random patches, with and without channels_last."""
    rows = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = build_model(config).to(memory_format=fmt)
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        s = config.scale
        x = torch.rand(batch, 3, patch, patch).contiguous(memory_format=fmt)
        y = torch.rand(batch, 3, patch * s, patch * s).contiguous(memory_format=fmt)

        def step():
            opt.zero_grad(set_to_none=True)
            F.l1_loss(model(x), y).backward()
            opt.step()

        seconds = median_seconds(step, steps, warmup=2)
        rows.append(dict(what=f"train step x{s} (batch {batch}, {patch}px)",
                         size="channels_last" if channels_last else "NCHW",
                         seconds=seconds, steps_per_s=1 / seconds))
    return rows


def bench_seams(side: int, tile: int) -> list[dict]:
    """PSNR between tiled and whole-image output of each SR model, where both fit."""
    from .metrics import psnr

    rows = []
    for spec in PRETRAINED.values():
        if spec.task != "sr":
            continue
        net = shared_model(spec.name)
        img = _image(side, side, seed=1)
        whole = upscale(img, spec.scale, net, tile=0)
        tiled = upscale(img, spec.scale, net, tile=tile)
        rows.append(dict(what=f"model {spec.name}: tiled ({tile}) vs whole", size=f"{side}x{side}",
                         psnr_db=psnr(tiled, whole)))
    return rows


def _forward_case(net, x: torch.Tensor, mode: str) -> Callable[[], object]:
    grad = {"inference_mode": torch.inference_mode, "no_grad": torch.no_grad,
            "autograd": torch.enable_grad}[mode]

    def run():
        with grad():
            return net(x)

    return run


def _default_allocator_seconds(name: str, side: int, repeats: int, threads: int) -> float:
    torch.set_num_threads(threads)
    return median_seconds(build_case(("model", name, side, side)), repeats)


def bench_mechanisms(name: str, side: int, repeats: int) -> list[dict]:
    """What each inference mechanism is worth: the same network and input with one of them
    switched off. The first row is everything on (the network's bare forward pass)."""
    from .models.checkpoint import load_checkpoint, model_from_checkpoint
    from .models.registry import resolve_model_path

    net = shared_model(name)
    x = torch.rand(1, 3, side, side)
    cl = x.contiguous(memory_format=torch.channels_last)
    unfolded = model_from_checkpoint(load_checkpoint(resolve_model_path(name)))
    unfolded = unfolded.eval().to(memory_format=torch.channels_last)
    nchw = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    threads = torch.get_num_threads()
    all_on_fn = _forward_case(net, cl, "inference_mode")
    switched_off = {
        "weight norm not folded": _forward_case(unfolded, cl, "inference_mode"),
        "NCHW instead of channels_last": _forward_case(nchw, x, "inference_mode"),
        "no_grad instead of inference_mode": _forward_case(net, cl, "no_grad"),
        "autograd on (parameters require grad)": _forward_case(
            copy.deepcopy(net).requires_grad_(True), cl, "autograd"),
    }

    def row(label: str, seconds: float, against: float | None = None) -> dict:
        r = dict(what=f"{name} {label}", size=f"{side}x{side}", seconds=seconds)
        if against is not None:
            r["slowdown"] = seconds / against
        return r

    all_on = median_seconds(all_on_fn, repeats)
    rows = [row("all on", all_on)]
    rows += [row(label, median_seconds(fn, repeats), all_on) for label, fn in switched_off.items()]
    torch.set_num_threads(1)
    rows.append(row("1 thread", median_seconds(all_on_fn, repeats), all_on))
    torch.set_num_threads(threads)
    # A spawned process keeps glibc's default allocator (`srnl` switches it at start-up).
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        default = pool.apply(_default_allocator_seconds, (name, side, repeats, threads))
    ours = median_seconds(build_case(("model", name, side, side)), repeats)
    rows.append(row("default glibc allocator (whole upscale call)", default, ours))
    rows.append(row("srnl allocator setting (whole upscale call)", ours))
    if PRETRAINED.get(name) and PRETRAINED[name].aliased:
        # Runs before the network when the model is asked for by name; its share of all on.
        rgb = _image(side, side).astype(np.float32) / 255
        rows.append(row("aliasing detector alone (runs first when named)",
                        median_seconds(lambda: aliasing_logit(rgb), repeats), all_on))
    return rows


# Run in the measured process: its own peak resident set (VmHWM), written when it exits. The
# rusage of a child forked from this process would count the pages it shared with us before exec.
_REPORT_PEAK = """
import atexit, os, sys
from pathlib import Path
def report():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            Path(os.environ["SRNL_PEAK_FILE"]).write_text(line.split()[1])
atexit.register(report)
sys.argv[0] = "srnl"
from srnl.cli import main
main()
"""


def command_peak(args: list[str]) -> tuple[float, int]:
    """(seconds, peak resident set of the whole process in bytes) of one `srnl` command run in a
    fresh process: what `/usr/bin/time -v` reports, the interpreter and torch included."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _REPORT_PEAK, *args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "SRNL_PEAK_FILE": str(peak_file)})
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"srnl {' '.join(args)} failed: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        return seconds, int(peak_file.read_text()) * 1024


def bench_big_images(cases: list[tuple[int, int, int, str]], threads: int) -> list[dict]:
    """Whole `srnl upscale` runs on photo-like images of (width, height) at a scale and --tile:
    time and peak memory of the process, the input's decoding and the output's encoding
    included."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w, h, scale, tile in cases:
            src = Path(tmp) / f"in_{w}x{h}.png"
            if not src.exists():
                # Smooth structure plus fine noise: the network does the same work on any content.
                Image.fromarray(_image(h // 8, w // 8)).resize((w, h), Image.BICUBIC).save(src)
            out = Path(tmp) / "out.png"
            seconds, peak = command_peak(["upscale", str(src), "-s", str(scale), "--tile", tile,
                                          "-o", str(out), "--overwrite", "-q",
                                          "--threads", str(threads)])
            rows.append({"what": f"srnl upscale x{scale}, --tile {tile}", "size": f"{w}x{h}",
                         "seconds": seconds, "peak_mb": _mb(peak),
                         "note": "whole process (/usr/bin/time's maximum resident set)"})
    return rows


def _ratio(rows: list[dict], what: str, small: str, big: str) -> float | None:
    by_size = {r["size"]: r.get("peak_mb") for r in rows if r["what"] == what}
    a, b = by_size.get(small), by_size.get(big)
    return b / a if a and b else None


def _mb(memory: int | None) -> float | None:
    return None if memory is None else memory / 2**20


def run_bench(train_model: ModelConfig, train_batch: int, train_patch: int,
              quick: bool = False, extra_models: tuple[str, ...] = ()) -> dict:
    """Every measurement; the training rows time `train_model` at that batch and patch (a
    recipe's, which the caller reads); `extra_models` (names or files) join the models table,
    timed in the same run as the shipped ones."""
    repeats = 1 if quick else 3
    sizes = {"sr": [(256, 256), (512, 512)] + ([] if quick else [(1080, 1920)]),
             "denoise": [(512, 512)]}
    ceiling = matmul_gflops(repeats=repeats + 2)
    sides = [48, 96] if quick else [64, 128, 256]
    models = bench_models(sizes, repeats, ceiling, extra_models)
    attention = bench_attention(sides, 32, 2**31, repeats)
    first = PRETRAINED[next(iter(PRETRAINED))].name
    size = lambda side: f"{side}x{side}x32"
    classical = bench_classical(sizes["sr"][:2], sizes["denoise"][0], repeats)
    measured = [r for r in models + attention + classical if "case" in r]
    for row, peak in zip(measured, measure_peaks([r.pop("case") for r in measured])):
        row["peak_mb"] = _mb(peak)
    return {
        "threads": torch.get_num_threads(),
        "matmul_gflops": ceiling,
        "models": models,
        "attention": attention,
        "mechanisms": bench_mechanisms(first, 256 if quick else 512, repeats),
        "seams": bench_seams(256 if quick else 512, 128 if quick else 256),
        "classical": classical,
        "training": bench_training(train_model, train_batch, train_patch, 3 if quick else 10),
        "big images": bench_big_images(
            [(1000, 750, 4, "auto"), (1000, 750, 4, "0")] if quick else
            [(4000, 3000, 4, "auto"), (4000, 3000, 2, "auto"), (4000, 3000, 2, "0"),
             (1920, 1080, 2, "auto")], torch.get_num_threads()),
        "memory_growth_4x_pixels": {
            f"model {first}": _ratio(models, f"model {first}", "256x256", "512x512"),
            # srnl's block at the largest sizes, where its memory is more than fixed overhead;
            # the dense block at the two sizes where it still fits.
            "srnl non-local": _ratio(attention, "srnl non-local, no pooling (fused)",
                                     size(sides[-2]), size(sides[-1])),
            "dense non-local": _ratio(attention, "dense non-local (seed)",
                                      size(sides[0]), size(sides[1])),
        },
    }
