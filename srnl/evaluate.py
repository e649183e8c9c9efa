"""Scoring restorers by the field's protocols (field guide section 1): shared by validation during
training and `srnl eval`.

SR: modcrop, the provided LR or Pillow bicubic, quantised output, Y-PSNR/SSIM with shave = scale.
Denoising: seeded AWGN (unclipped unless asked), RGB PSNR/SSIM, no shave. Nothing is random
between runs: the noise of image i at sigma s always comes from the same seed."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
# Imported here, not on first use: scikit-image's restoration module pulls in scipy.stats (a
# second), which would otherwise land in the timing of the first image.
from skimage.restoration import denoise_nl_means

from .atomic import atomic_path
from .datasets import Pair, discover, load_rgb, load_sr_pair
from .degrade import add_noise, apply_plan, bicubic_resize, estimate_noise, modcrop, named_plan
from .errors import SrnlError
from .infer import DEFAULT_OVERLAP, auto_tile, restore_image
from .metrics import quantise, rgb_scores, sr_scores
from .models.network import RestorationNet
from .models.registry import shared_model

# The classical methods and the task each belongs to.
BASELINES = {"bicubic": "sr", "nlm": "denoise", "nlm-auto": "denoise", "noisy": "denoise"}
# What each task's restorers are measured against, and shown beside them in comparisons.
REFERENCE_BASELINE = {"sr": "bicubic", "denoise": "noisy"}
# scikit-image's SSIM with a Gaussian window of sigma 1.5 looks at 11 x 11 pixels.
SSIM_WINDOW = 11


def run_network(net: RestorationNet, img: np.ndarray, sigma: float | None = None,
                **options) -> np.ndarray:
    """img in [0, 255] (H, W, 3), any float or uint8 -> quantised uint8 output."""
    return quantise(restore_image(net, np.asarray(img, np.float32) / 255.0, sigma, **options))


def noisy_version(clean: np.ndarray, sigma: float, index: int, clip: bool = False) -> np.ndarray:
    """The seeded noisy input for image `index` at `sigma`: the same for every method and run."""
    # Seeded by (index, sigma in thousandths): distinct for every image and every noise level.
    return add_noise(clean, sigma, seed=(index, round(sigma * 1000)), clip=clip)


def score_sr(net: RestorationNet, hr: np.ndarray, lr: np.ndarray, **options) -> tuple[float, float]:
    return sr_scores(run_network(net, lr, **options), hr, net.config.scale)


def score_denoise(net: RestorationNet, clean: np.ndarray, sigma: float, index: int,
                  **options) -> tuple[float, float]:
    noisy = noisy_version(clean, sigma, index)
    return rgb_scores(run_network(net, noisy, sigma=sigma, **options), clean)


def nlm(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Non-Local Means with scikit-image's example settings; sigma None estimates it from the
    image. noisy in [0, 255] (H, W, 3) -> quantised uint8."""
    noisy = np.asarray(noisy, np.float64)
    if sigma is None:
        sigma = estimate_noise(noisy)
    out = denoise_nl_means(noisy, patch_size=5, patch_distance=6, h=0.8 * sigma, sigma=sigma,
                           fast_mode=True, preserve_range=True, channel_axis=-1)
    return quantise(out / 255.0)


@dataclass(frozen=True)
class Setting:
    """One degradation: x`scale` SR, or noise of `sigma` (0-255 units) for denoising; with
    `degradation` (a `named_plan` spec such as jpeg75 or photo), the input is the clean image
    through that seeded chain instead of the protocol's bicubic LR or Gaussian noise."""
    task: str
    scale: int = 1
    sigma: float | None = None
    clip: bool = False
    degradation: str | None = None

    @property
    def label(self) -> str:
        base = f"x{self.scale}" if self.task == "sr" else (
            f"σ{self.sigma:g}" if self.sigma is not None else "")
        return " ".join(filter(None, [base, self.degradation]))

    @property
    def slug(self) -> str:
        base = f"x{self.scale}" if self.task == "sr" else (
            f"sigma{self.sigma:g}" if self.sigma is not None else "")
        return "_".join(filter(None, [base, self.degradation]))

    @property
    def shave(self) -> int:
        return self.scale if self.task == "sr" else 0


@dataclass(frozen=True)
class NetOptions:
    """How networks run (the inference layer's options); baselines ignore them."""
    tile: int | str = "auto"
    overlap: int = DEFAULT_OVERLAP
    self_ensemble: bool = False


@dataclass(frozen=True, eq=False)
class Method:
    """A restorer: a classical baseline (`net` None) or a network, named as the user gave it."""
    name: str
    net: RestorationNet | None = None

    @property
    def task(self) -> str:
        return self.net.config.task if self.net is not None else BASELINES[self.name]

    def tile_for(self, degraded: np.ndarray, tile: int | str) -> int:
        """The tile side the network uses on this input (0: whole image); 0 for baselines."""
        if self.net is None:
            return 0
        return auto_tile(self.net, *degraded.shape[:2]) if tile == "auto" else int(tile)

    def run(self, degraded: np.ndarray, setting: Setting,
            options: NetOptions = NetOptions()) -> np.ndarray:
        """The restored image in [0, 255]: uint8, except `noisy`, which is the float input."""
        if self.name == "bicubic":
            h, w = degraded.shape[:2]
            return bicubic_resize(degraded, (w * setting.scale, h * setting.scale))
        if self.name == "noisy":
            return degraded
        if self.name == "nlm":
            return nlm(degraded, setting.sigma)
        if self.name == "nlm-auto":
            return nlm(degraded)
        sigma = None
        if setting.task == "denoise":
            sigma = setting.sigma
            if sigma is None and not self.net.config.blind:
                sigma = estimate_noise(degraded)
        return run_network(self.net, degraded, sigma=sigma,
                           tile=self.tile_for(degraded, options.tile), overlap=options.overlap,
                           self_ensemble=options.self_ensemble)


def load_method(name: str, device: str = "cpu") -> Method:
    """A baseline name, a shipped model name or a checkpoint file."""
    if name in BASELINES:
        return Method(name)
    return Method(name, shared_model(name, device))


def scores(output: np.ndarray, clean: np.ndarray, setting: Setting) -> tuple[float, float]:
    if setting.task == "sr":
        return sr_scores(output, clean, setting.scale)
    return rgb_scores(output, clean)


def load_sample(pair: Pair, setting: Setting, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean uint8, degraded input): the LR image for SR (provided or Pillow bicubic), the
    seeded noisy float image for denoising, or the setting's degradation chain. `index` seeds
    the noise and the chain."""
    if setting.degradation is not None:
        clean = modcrop(load_rgb(pair.hr), setting.scale)
        if min(clean.shape[:2]) < setting.scale:
            raise SrnlError(f"{pair.hr}: too small for x{setting.scale}")
        plan = named_plan(setting.degradation, (clean.shape[1], clean.shape[0]), setting.scale,
                          seed=index)
        degraded = apply_plan(plan, clean)
    elif setting.task == "sr":
        try:
            clean, degraded = load_sr_pair(pair, setting.scale)
        except ValueError:  # Pillow refuses a zero-sized LR
            raise SrnlError(f"{pair.hr}: too small for x{setting.scale}") from None
    else:
        clean = load_rgb(pair.hr)
        degraded = noisy_version(clean, setting.sigma, index, setting.clip)
    if min(clean.shape[:2]) - 2 * setting.shave < SSIM_WINDOW:
        raise SrnlError(f"{pair.hr}: {clean.shape[1]}x{clean.shape[0]} is too small to score "
                        f"(SSIM needs {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the shave)")
    return clean, degraded


def settings(methods: list[Method], scales: list[int] | None, sigmas: list[float],
             clip: bool = False, degradations: list[str | None] | None = None
             ) -> list[tuple[Method, Setting]]:
    """Every (method, setting) to run: SR methods at each scale (a network only at its own) and
    degradation, denoisers at each sigma (or, given degradations, at each of those with the
    level left to the method). Without `scales`, the SR networks' scales, else x2."""
    kinds = [None if d == "bicubic" else d for d in degradations or [None]]
    if scales is None:
        scales = sorted({m.net.config.scale for m in methods
                         if m.net is not None and m.task == "sr"}) or [2]
    if any(s < 2 for s in scales):
        raise SrnlError(f"scales must be 2 or more, got {min(scales)}")
    if any(not s > 0 for s in sigmas):
        raise SrnlError(f"sigmas must be positive, got {min(sigmas):g}")
    planned = []
    for m in methods:
        if m.task == "denoise" and degradations:
            planned += [(m, Setting("denoise", 1, None, degradation=k)) for k in kinds]
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


def dataset_images(root: str | Path, setting: Setting,
                   limit: int | None = None) -> tuple[list[Pair], list[str]]:
    """The dataset's images (with provided LR for SR) and their names relative to the dataset."""
    root = Path(root)
    pairs = discover(root, setting.scale if setting.task == "sr" else None, split="valid")
    if not pairs:
        raise SrnlError(f"{root}: no images found")
    pairs = pairs[:limit]
    common = Path(os.path.commonpath([p.hr.parent for p in pairs]))
    return pairs, [p.hr.relative_to(common).with_suffix("").as_posix() for p in pairs]


def plan(methods: list[Method], roots: list[str | Path], scales: list[int] | None,
         sigmas: list[float], clip: bool = False, limit: int | None = None,
         degradations: list[str] | None = None) -> list[Job]:
    if limit is not None and limit < 1:
        raise SrnlError(f"--limit must be 1 or more, got {limit}")
    for spec in degradations or []:
        named_plan(spec, (64, 64), 2, seed=0)  # an unknown name fails here, before any work
    runs = settings(methods, scales, sigmas, clip, degradations)
    jobs = []
    for root in map(Path, roots):
        name = root.resolve().name
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


def run_job(job: Job, options: NetOptions = NetOptions(), save_dir: Path | None = None,
            on_image: Callable[[], None] | None = None) -> Record:
    setting, method = job.setting, job.method
    per_image, tiles = [], []
    for index, (pair, name) in enumerate(zip(job.pairs, job.names)):
        clean, degraded = load_sample(pair, setting, index)
        tiles.append(method.tile_for(degraded, options.tile))
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


def protocol(task: str, clip: bool = False) -> str:
    """How a task's numbers were measured, in one line, for every report that shows them."""
    if task == "sr":
        return ("SR: Y-PSNR/SSIM (ITU-R BT.601 Y in [16, 235]), shave = scale, output rounded "
                "to 8 bits; LR provided by the dataset or Pillow bicubic of the modcropped HR")
    return ("denoising: RGB PSNR/SSIM, no shave, seeded Gaussian noise "
            + ("clipped to [0, 255]" if clip else "not clipped")
            + "; outputs rounded to 8 bits, the noisy input scored as is")
