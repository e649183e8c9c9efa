"""The degradations of the field's protocols: modcrop + Pillow bicubic for SR (within a few
hundredths of a dB of MATLAB's imresize), seeded unclipped Gaussian noise for denoising."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import SrnlError


def modcrop(hr: np.ndarray, scale: int) -> np.ndarray:
    h, w = hr.shape[:2]
    return hr[: h - h % scale, : w - w % scale]


def bicubic_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W[, C]) -> uint8 of `size` = (width, height), Pillow bicubic (a = -0.5, antialiased)."""
    return np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """uint8 HR (already modcropped) -> uint8 LR."""
    h, w = hr.shape[:2]
    return bicubic_resize(hr, (w // scale, h // scale))


def add_noise(clean: np.ndarray, sigma: float, seed: int | tuple[int, ...],
              clip: bool = False) -> np.ndarray:
    """clean in [0, 255] -> float64 clean + N(0, sigma^2), from a generator seeded per image."""
    noisy = clean.astype(np.float64) + np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(noisy, 0, 255) if clip else noisy


def estimate_noise(img: np.ndarray) -> float:
    """Gaussian noise std of an (H, W) or (H, W, 3) image, in its own units (scikit-image's
    wavelet estimate, averaged over channels)."""
    from skimage.restoration import estimate_sigma

    img = np.asarray(img, np.float64)
    return float(estimate_sigma(img, channel_axis=-1 if img.ndim == 3 else None,
                                average_sigmas=True))


def check_sigma(sigma) -> float:
    """A noise level in 0-255 units, refused unless a finite number in [0, 255]."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 255):
        raise SrnlError(f"sigma must be a finite number from 0 to 255, got {sigma!r}")
    return value
