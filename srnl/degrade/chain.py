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
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import SrnlError
from .camera import draw_camera

PRESETS_FILE = Path(__file__).parent.parent / "recipes" / "degradations.toml"
RESAMPLING = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "area": Image.BOX,
              "lanczos": Image.LANCZOS}
# BT.601 YCbCr -> RGB for zero-mean differences (noise), as JPEG and cameras define chroma.
YCBCR_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])

Range = tuple[float, float]
# The stages a `Degradation` may draw, each with its `<stage>_prob`.
STAGES = ("blur", "jitter", "noise", "poisson", "camera", "isp", "jpeg", "second")


@dataclass(frozen=True)
class Degradation:
    """Ranges and probabilities of every stage. Blur and noise-correlation widths are in LR pixels
    (at HR the kernel is `scale` times wider), noise levels in 0-255 units."""
    name: str = "bicubic"
    clean_prob: float = 0.0          # skip the chain: the protocol's plain bicubic LR
    blur_prob: float = 0.0
    blur_sigma: Range = (0.2, 0.8)
    blur_aniso_prob: float = 0.5     # two widths and a rotation instead of one width
    blur_beta: Range = (1.0, 1.0)    # generalised-Gaussian exponent (1: Gaussian)
    blur_plateau_prob: float = 0.0   # plateau kernel 1 / (1 + r^(2 beta)) instead
    resize: tuple[str, ...] = ("bicubic",)
    jitter_prob: float = 0.0         # resample through an intermediate size first
    jitter: Range = (0.8, 1.25)      # that size relative to the LR
    noise_prob: float = 0.0          # white Gaussian noise
    noise_sigma: Range = (1.0, 15.0)
    noise_grey_prob: float = 0.4     # the same noise on every channel
    poisson_prob: float = 0.0        # shot noise
    poisson_peak: Range = (200.0, 5000.0)  # photons at white, drawn log-uniform
    camera_prob: float = 0.0         # correlated, chroma-heavy noise as demosaicing leaves it
    camera_sigma: Range = (1.0, 8.0)  # its luma std
    camera_chroma: Range = (1.0, 2.0)  # chroma std relative to luma
    camera_width: Range = (0.4, 1.2)  # correlation width
    isp_prob: float = 0.0            # shot and read noise through a camera pipeline (camera.py)
    isp_shot: Range = (1e-4, 1e-2)   # its shot-noise variance per unit signal, log-uniform
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    second_prob: float = 0.0         # a second pass of blur, noise and JPEG at LR size
    # Denoising only: this share of inputs gets the benchmark's unclipped float Gaussian noise
    # instead of the chain, with sigma from the training sigma range.
    awgn_prob: float = 0.0

    def __post_init__(self):
        unknown = sorted(set(self.resize) - set(RESAMPLING))
        if unknown or not self.resize:
            raise SrnlError(f"degradation {self.name!r}: resize methods must be among "
                            f"{', '.join(RESAMPLING)}, got {list(self.resize)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0 <= value <= 1:
                raise SrnlError(f"degradation {self.name!r}: {f.name} must be in [0, 1]")
            if isinstance(value, tuple) and f.name != "resize" and not 0 < value[0] <= value[1]:
                raise SrnlError(f"degradation {self.name!r}: {f.name} must be a range lo <= hi "
                                f"of positive numbers, got {list(value)}")

    @property
    def is_bicubic(self) -> bool:
        """Nothing but the protocol's bicubic downscale."""
        return self.resize == ("bicubic",) and not any(
            getattr(self, f"{stage}_prob") for stage in STAGES)

    def to_dict(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Degradation":
        """A preset's table; `preset = NAME` starts from that preset and overrides its fields."""
        d = dict(d)
        base = load_preset(d.pop("preset")).to_dict() if "preset" in d else {}
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise SrnlError(f"unknown degradation options: {', '.join(unknown)}")
        merged = {**base, **d}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()})


def _presets() -> dict:
    return tomllib.loads(PRESETS_FILE.read_text())


def preset_names() -> list[str]:
    return list(_presets())


def load_preset(name: str) -> Degradation:
    presets = _presets()
    if name not in presets:
        raise SrnlError(f"no degradation preset {name!r} (presets: {', '.join(presets)})")
    return Degradation.from_dict({"name": name, **presets[name]})


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
        plan.append(Resize((max(1, round(lr_size[0] * f)), max(1, round(lr_size[1] * f))), method()))
    plan.append(Resize(lr_size, method()))
    plan += _draw_noise_and_file(d, rng)
    if rng.random() < d.second_prob:
        if rng.random() < d.blur_prob:
            plan.append(_draw_blur(d, 1, rng))
        plan += _draw_noise_and_file(d, rng)
    return plan


def known_sigma(plan: Plan) -> float | None:
    """The noise level a plan leaves, where it is one: 0 for no damage, the std of white colour
    Gaussian noise that is the only damage; None for everything else (JPEG, camera noise...)."""
    damage = [s for s in plan if not isinstance(s, Resize)]
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
    applied in that order), or a preset name, drawn with `seed`."""
    if spec in _presets():
        return draw_plan(load_preset(spec), hr_size, scale, np.random.default_rng(seed))
    lr_size = (hr_size[0] // scale, hr_size[1] // scale)
    before: Plan = []
    after: Plan = []
    for kind, value in _simple_parts(spec):
        if kind == "blur" and value > 0:
            before.append(Blur(blur_kernel(value * scale, value * scale)))
        elif kind == "noise":
            after.append(GaussianNoise(value, False, seed))
        elif kind == "jpeg":
            after.append(Jpeg(int(value)))
    return [*before, Resize(lr_size, "bicubic"), *after]


def _simple_parts(spec: str) -> list[tuple[str, float]]:
    """(kind, value) of each `+`-joined part of a class that is not a preset; bicubic and clean
    add nothing to the protocol's downscale."""
    parts = []
    for part in spec.split("+"):
        if part in ("bicubic", "clean"):
            continue
        m = _SIMPLE.match(part)
        if not m:
            raise SrnlError(f"unknown degradation {spec!r}: use bicubic, jpegQ, noiseS, blurS "
                            f"(joined by +) or a preset ({', '.join(preset_names())})")
        kind, value = m.group(1), float(m.group(2))
        if kind == "jpeg" and not 1 <= value <= 100:
            raise SrnlError(f"JPEG quality must be 1-100, got {value:g}")
        parts.append((kind, value))
    return parts


def check_named(spec: str) -> None:
    """Refuse an unknown evaluation class before any image is read."""
    if spec not in _presets():
        _simple_parts(spec)
