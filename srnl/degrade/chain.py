"""The damage real image files carry, as a seeded chain in the spirit of BSRGAN and Real-ESRGAN but
aimed at faithful restoration: lens blur, resampling by some program, sensor noise, JPEG, and 8 bits
after every stage, as every file is.

Drawing and applying are separate: `draw_plan` turns a `Degradation` (ranges and probabilities) and
a generator into a `Plan`, a list of stages with concrete parameters, and `apply_plan` runs it. The
same degradation and generator state always give the same plan and the same pixels. Pillow does the
resampling and the JPEG coding, torch the convolutions, numpy the random numbers."""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import SrnlError
from .camera import draw_camera
from .spec import RESAMPLING, Degradation, load_preset, preset_names, presets

# BT.601 YCbCr -> RGB for zero-mean differences (noise), as JPEG and cameras define chroma.
YCBCR_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])


def to_uint8(img: np.ndarray) -> np.ndarray:
    """What a saved 8-bit file holds: round, clip."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _blur_channels(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """(H, W, C) float, one 2-D kernel for every channel, edges mirrored."""
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), np.float32))[:, None]
    r = kernel.shape[0] // 2
    mode = "reflect" if r < min(x.shape[:2]) else "replicate"
    t = F.conv2d(F.pad(t, (r, r, r, r), mode=mode), torch.from_numpy(kernel.astype(np.float32))[None, None])
    return t[:, 0].numpy().transpose(1, 2, 0)


def blur_kernel(sigma_x: float, sigma_y: float, theta: float = 0.0, beta: float = 1.0,
                plateau: bool = False) -> np.ndarray:
    """A normalised (2r+1)^2 kernel: Gaussian (beta 1), generalised Gaussian exp(-q^beta / 2) or
    plateau 1 / (1 + q^beta), q the squared distance in units of the widths along the rotated axes."""
    radius = max(1, math.ceil(3 * max(sigma_x, sigma_y)))
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    u = math.cos(theta) * x + math.sin(theta) * y
    v = -math.sin(theta) * x + math.cos(theta) * y
    q = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    k = 1 / (1 + q**beta) if plateau else np.exp(-0.5 * q**beta)
    return k / k.sum()


@dataclass(frozen=True, eq=False)
class Blur:
    kernel: np.ndarray

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return to_uint8(_blur_channels(img.astype(np.float32), self.kernel))


@dataclass(frozen=True)
class Resize:
    size: tuple[int, int]  # (width, height)
    method: str = "bicubic"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(img).resize(self.size, RESAMPLING[self.method]))


@dataclass(frozen=True)
class Subsample:
    """A downscale with no prefilter, each output pixel sampled at `offset` (a fraction of one
    input step, 0-1) within its footprint: the nearest input pixel, or with `linear` the bilinear
    mix of its two neighbours along each axis."""
    size: tuple[int, int]  # (width, height)
    offset: tuple[float, float] = (0.0, 0.0)  # (x, y)
    linear: bool = False

    def __call__(self, img: np.ndarray) -> np.ndarray:
        out = img.astype(np.float32)
        for axis, (n_out, offset) in enumerate(zip(self.size[::-1], self.offset[::-1])):
            n_in = out.shape[axis]
            where = (np.arange(n_out) + offset) * (n_in / n_out)
            if not self.linear:
                out = np.take(out, np.minimum(where.astype(int), n_in - 1), axis=axis)
                continue
            where = np.clip(where - 0.5, 0, n_in - 1)
            lo = where.astype(int)
            hi = np.minimum(lo + 1, n_in - 1)
            w = (where - lo).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
            out = np.take(out, lo, axis=axis) * (1 - w) + np.take(out, hi, axis=axis) * w
        return to_uint8(out)


# Aliased downscales at the sampling phase the common tools use, also evaluation classes in place of
# the protocol's bicubic downscale. "nearest" takes every n-th pixel from the first (numpy slicing,
# OpenCV, torch); "nearest-centre" the pixel at each block's centre (Pillow's NEAREST);
# "bilinear-aliased" the bilinear mix at each output pixel's centre (OpenCV's and torch's default).
ALIASED_CLASSES = {"nearest": Subsample,
                   "nearest-centre": partial(Subsample, offset=(0.5, 0.5)),
                   "bilinear-aliased": partial(Subsample, offset=(0.5, 0.5), linear=True)}


def resampler(size: tuple[int, int], method: str, rng: np.random.Generator,
              tool_phase_prob: float = 0.0):
    """The stage that shrinks to `size` by `method`; an aliased one at the sampling phase of the
    common tools (the evaluation class of that name) with `tool_phase_prob`, else at a random one."""
    if method in RESAMPLING:
        return Resize(size, method)
    # Drawn only where enabled, so recipes without it (photo-x2-8, photo-x4-4) keep their draws.
    if tool_phase_prob and rng.random() < tool_phase_prob:
        return ALIASED_CLASSES[method](size)
    return Subsample(size, (float(rng.random()), float(rng.random())), method != "nearest")


@dataclass(frozen=True)
class GaussianNoise:
    sigma: float
    grey: bool
    seed: int

    def __call__(self, img: np.ndarray) -> np.ndarray:
        shape = img.shape[:2] + ((1,) if self.grey else img.shape[2:])
        noise = np.random.default_rng(self.seed).standard_normal(shape) * self.sigma
        return to_uint8(img + noise)


@dataclass(frozen=True)
class PoissonNoise:
    peak: float  # expected photon count of a full-scale value
    seed: int

    def __call__(self, img: np.ndarray) -> np.ndarray:
        photons = np.random.default_rng(self.seed).poisson(img / 255.0 * self.peak)
        return to_uint8(photons / self.peak * 255.0)


@dataclass(frozen=True)
class CameraNoise:
    """Luma and chroma noise, each blurred (spatially correlated, as demosaicing and in-camera noise
    reduction leave it) and rescaled to its std, then mixed into RGB."""
    sigma: float   # luma std, 0-255 units
    chroma: float  # chroma std relative to luma
    width: float   # correlation width, pixels
    seed: int

    def __call__(self, img: np.ndarray) -> np.ndarray:
        fields_ = np.random.default_rng(self.seed).standard_normal(img.shape[:2] + (3,))
        k = blur_kernel(self.width, self.width)
        # A blur with kernel k shrinks white noise's std by |k|_2; undo that.
        fields_ = _blur_channels(fields_, k) / math.sqrt((k**2).sum())
        ycc = fields_ * np.array([self.sigma, self.sigma * self.chroma, self.sigma * self.chroma])
        return to_uint8(img + ycc @ YCBCR_TO_RGB.T)


@dataclass(frozen=True)
class Jpeg:
    quality: int

    def encode(self, img: np.ndarray) -> bytes:
        buf = io.BytesIO()
        # subsampling=2 is 4:2:0, what cameras and the web use.
        Image.fromarray(img).save(buf, format="JPEG", quality=self.quality, subsampling=2)
        return buf.getvalue()

    def __call__(self, img: np.ndarray) -> np.ndarray:
        with Image.open(io.BytesIO(self.encode(img))) as im:
            return np.asarray(im)


Stage = Callable[[np.ndarray], np.ndarray]
Plan = list[Stage]


def apply_plan(plan: Plan, img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) through every stage; uint8 out."""
    for stage in plan:
        img = stage(img)
    return img


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**63))


def _draw_blur(d: Degradation, width: float, rng: np.random.Generator) -> Blur:
    """A kernel for `width` pixels per LR pixel (the scale at HR, 1 at LR)."""
    sx = rng.uniform(*d.blur_sigma) * width
    sy, theta = (rng.uniform(*d.blur_sigma) * width, rng.uniform(0, math.pi)) \
        if rng.random() < d.blur_aniso_prob else (sx, 0.0)
    return Blur(blur_kernel(sx, sy, theta, rng.uniform(*d.blur_beta),
                            rng.random() < d.blur_plateau_prob))


def _draw_noise_and_file(d: Degradation, rng: np.random.Generator) -> Plan:
    plan: Plan = []
    if rng.random() < d.noise_prob:
        plan.append(GaussianNoise(rng.uniform(*d.noise_sigma), rng.random() < d.noise_grey_prob,
                                  _seed(rng)))
    if rng.random() < d.poisson_prob:
        lo, hi = np.log(d.poisson_peak)
        plan.append(PoissonNoise(float(np.exp(rng.uniform(lo, hi))), _seed(rng)))
    if rng.random() < d.camera_prob:
        plan.append(CameraNoise(rng.uniform(*d.camera_sigma), rng.uniform(*d.camera_chroma),
                                rng.uniform(*d.camera_width), _seed(rng)))
    # Drawn only where enabled, so presets without it keep their sequence of draws.
    if d.isp_prob and rng.random() < d.isp_prob:
        plan.append(draw_camera(rng, d.isp_shot))
    if rng.random() < d.jpeg_prob:
        plan.append(Jpeg(int(rng.integers(d.jpeg_quality[0], d.jpeg_quality[1] + 1))))
    return plan


def draw_plan(d: Degradation, hr_size: tuple[int, int], scale: int,
              rng: np.random.Generator) -> Plan:
    """The stages for an HR image of `hr_size` = (width, height), a multiple of `scale`."""
    lr_size = (hr_size[0] // scale, hr_size[1] // scale)
    if rng.random() < d.clean_prob:
        return [Resize(lr_size, "bicubic")]
    plan: Plan = []
    if rng.random() < d.blur_prob:
        plan.append(_draw_blur(d, scale, rng))
    method = lambda: d.resize[int(rng.integers(len(d.resize)))]
    if rng.random() < d.jitter_prob:
        f = rng.uniform(*d.jitter)
        size = (max(1, round(lr_size[0] * f)), max(1, round(lr_size[1] * f)))
        plan.append(resampler(size, method(), rng, d.tool_phase_prob))
    plan.append(resampler(lr_size, method(), rng, d.tool_phase_prob))
    plan += _draw_noise_and_file(d, rng)
    if rng.random() < d.second_prob:
        if rng.random() < d.blur_prob:
            plan.append(_draw_blur(d, 1, rng))
        plan += _draw_noise_and_file(d, rng)
    return plan


def known_sigma(plan: Plan) -> float | None:
    """The noise level a plan leaves, where it is one: 0 for no damage, the std of white colour
    Gaussian noise that is the only damage; None for everything else (JPEG, camera noise...)."""
    damage = [s for s in plan if not isinstance(s, (Resize, Subsample))]
    if not damage:
        return 0.0
    if len(damage) == 1 and isinstance(damage[0], GaussianNoise) and not damage[0].grey:
        return damage[0].sigma
    return None


def degrade(hr: np.ndarray, scale: int, d: Degradation, rng: np.random.Generator) -> np.ndarray:
    """uint8 HR (H, W, 3), sides multiples of `scale` -> uint8 LR (H / scale, W / scale, 3)."""
    return apply_plan(draw_plan(d, (hr.shape[1], hr.shape[0]), scale, rng), hr)


_SIMPLE = re.compile(r"(jpeg|noise|blur)(\d+(?:\.\d+)?)$")


def named_plan(spec: str, hr_size: tuple[int, int], scale: int, seed: int) -> Plan:
    """The plan of an evaluation class: `bicubic` or `clean` (the protocol's plain downscale; at
    scale 1 the image itself), `jpegQ` (the LR saved as JPEG of
    quality Q), `noiseS` (8-bit Gaussian noise of std S on the LR), `blurS` (a Gaussian of S LR
    pixels on the HR before the downscale), several joined by `+` (e.g. `blur0.5+noise5+jpeg75`,
    applied in that order), one of `ALIASED_CLASSES` in place of the bicubic downscale, or a
    preset name, drawn with `seed`."""
    if spec in presets():
        return draw_plan(load_preset(spec), hr_size, scale, np.random.default_rng(seed))
    lr_size = (hr_size[0] // scale, hr_size[1] // scale)
    before: Plan = []
    after: Plan = []
    shrink: Stage = Resize(lr_size, "bicubic")
    for kind, value in _simple_parts(spec):
        if kind in ALIASED_CLASSES:
            shrink = ALIASED_CLASSES[kind](lr_size)
        if kind == "blur" and value > 0:
            before.append(Blur(blur_kernel(value * scale, value * scale)))
        elif kind == "noise":
            after.append(GaussianNoise(value, False, seed))
        elif kind == "jpeg":
            after.append(Jpeg(int(value)))
    return [*before, shrink, *after]


def _simple_parts(spec: str) -> list[tuple[str, float]]:
    """(kind, value) of each `+`-joined part of a class that is not a preset; bicubic and clean
    add nothing to the protocol's downscale."""
    parts = []
    for part in spec.split("+"):
        if part in ("bicubic", "clean"):
            continue
        if part in ALIASED_CLASSES:
            parts.append((part, 0.0))
            continue
        m = _SIMPLE.match(part)
        if not m:
            raise SrnlError(f"unknown degradation {spec!r}: use bicubic, "
                            f"{', '.join(ALIASED_CLASSES)}, jpegQ, noiseS, blurS "
                            f"(joined by +) or a preset ({', '.join(preset_names())})")
        kind, value = m.group(1), float(m.group(2))
        if kind == "jpeg" and not 1 <= value <= 100:
            raise SrnlError(f"JPEG quality must be 1-100, got {value:g}")
        parts.append((kind, value))
    return parts


def check_named(spec: str) -> None:
    """Refuse an unknown evaluation class before any image is read."""
    if spec not in presets():
        _simple_parts(spec)
