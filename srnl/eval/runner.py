"""Running `srnl eval`: which (method, setting) pairs run on which datasets, and their records."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..atomic import atomic_path
from ..datasets import Pair
from ..degrade.chain import check_named
from ..errors import SrnlError
from ..infer import InferenceOptions
from ..metrics import quantise
from .protocol import Setting, dataset_images, load_sample, scores
from .restorers import Method


def settings(methods: list[Method], scales: list[int] | None, sigmas: list[float | None],
             clip: bool = False, degradations: list[str] | None = None
             ) -> list[tuple[Method, Setting]]:
    """Every (method, setting) to run: SR methods at each scale (a network only at its own) and
    degradation; denoisers at each sigma, of the protocol's noise or, given degradations, as the
    level they are told (None: left to the method). Without `scales`, the SR networks' scales,
    else x2."""
    # For SR, bicubic is the protocol itself (and its provided LR, where a dataset has one).
    kinds = [None if d == "bicubic" else d for d in degradations or [None]]
    if scales is None:
        scales = sorted({m.net.config.scale for m in methods
                         if m.net is not None and m.task == "sr"}) or [2]
    if any(s < 2 for s in scales):
        raise SrnlError(f"scales must be 2 or more, got {min(scales)}")
    if any(s is not None and not 0 < s <= 255 for s in sigmas):
        raise SrnlError(f"sigmas must be in (0, 255], got {min(s for s in sigmas if s is not None):g}")
    if None in sigmas and not degradations:
        raise SrnlError("a denoiser can only be left to estimate the level of degraded inputs "
                        "(a degradation); the protocol's noise needs its sigma")
    planned = []
    for m in methods:
        if m.task == "denoise" and degradations:
            planned += [(m, Setting("denoise", 1, s, degradation=k))
                        for k in degradations for s in sigmas]
        elif m.task == "denoise":
            planned += [(m, Setting("denoise", 1, s, clip)) for s in sigmas]
        elif m.net is None:
            planned += [(m, Setting("sr", s, degradation=k)) for s in scales for k in kinds]
        elif m.net.config.scale in scales:
            planned += [(m, Setting("sr", m.net.config.scale, degradation=k)) for k in kinds]
        else:
            raise SrnlError(f"{m.name} upscales x{m.net.config.scale}, but only "
                            f"{', '.join(f'x{s}' for s in scales)} was asked for")
    return planned


@dataclass
class Job:
    """One method on one dataset under one setting."""
    dataset: str
    pairs: list[Pair]
    names: list[str]
    method: Method
    setting: Setting


def plan(methods: list[Method], roots: list[str | Path], scales: list[int] | None,
         sigmas: list[float | None], clip: bool = False, limit: int | None = None,
         degradations: list[str] | None = None) -> list[Job]:
    if limit is not None and limit < 1:
        raise SrnlError(f"the image limit must be 1 or more, got {limit}", option="limit")
    for spec in degradations or []:
        check_named(spec)
    runs = settings(methods, scales, sigmas, clip, degradations)
    jobs = []
    for root in map(Path, roots):
        name = root.stem if root.is_file() else root.resolve().name
        found = {}
        for method, setting in runs:
            # The provided LR differs per scale; the images themselves are found once.
            key = setting.scale if setting.task == "sr" else None
            if key not in found:
                found[key] = dataset_images(root, setting, limit)
            jobs.append(Job(name, *found[key], method, setting))
    return jobs


@dataclass
class ImageScore:
    image: str
    psnr: float
    ssim: float
    seconds: float


@dataclass
class Record:
    """Mean scores of one job; `seconds` is the restoration time per image."""
    dataset: str
    method: str
    task: str
    scale: int
    sigma: float | None
    psnr: float
    ssim: float
    images: int
    seconds: float
    clip: bool | None  # denoising: noise clipped to [0, 255]
    lr: str | None  # SR: "provided", "pillow-bicubic" or "mixed"
    degradation: str | None  # the chain that made the input, if not the protocol's
    tile: int  # the largest tile side used, 0 if no image was tiled
    tiled: int  # how many images went through in tiles
    per_image: list[ImageScore] = field(default_factory=list)


def _lr_source(pairs: list[Pair]) -> str:
    provided = sum(p.lr is not None for p in pairs)
    return "provided" if provided == len(pairs) else "pillow-bicubic" if not provided else "mixed"


def as_uint8(img: np.ndarray) -> np.ndarray:
    """A method's output in [0, 255] as an 8-bit image: `noisy` is float, the rest already uint8."""
    return img if img.dtype == np.uint8 else quantise(img / 255.0)


def _save(img: np.ndarray, path: Path) -> None:
    img = as_uint8(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")


def run_job(job: Job, options: InferenceOptions = InferenceOptions(), save_dir: Path | None = None,
            on_image: Callable[[], None] | None = None) -> Record:
    setting, method = job.setting, job.method
    per_image, tiles = [], []
    for index, (pair, name) in enumerate(zip(job.pairs, job.names)):
        clean, degraded = load_sample(pair, setting, index)
        tiles.append(method.tile_for(degraded, options))
        start = time.perf_counter()
        output = method.run(degraded, setting, options)
        seconds = time.perf_counter() - start
        per_image.append(ImageScore(name, *scores(output, clean, setting), seconds))
        if save_dir is not None:
            _save(output, save_dir / job.dataset / Path(method.name).stem / setting.slug
                  / f"{name}.png")
        if on_image:
            on_image()
    mean = lambda key: float(np.mean([getattr(s, key) for s in per_image]))
    sr = setting.task == "sr"
    return Record(job.dataset, method.name, setting.task, setting.scale, setting.sigma,
                  mean("psnr"), mean("ssim"), len(per_image), mean("seconds"),
                  None if sr else setting.clip,
                  _lr_source(job.pairs) if sr and setting.degradation is None else None,
                  setting.degradation,
                  max(tiles), sum(t > 0 for t in tiles), per_image)


