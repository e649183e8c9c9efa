"""PSNR/SSIM by the field's protocol (field guide section 1): quantised output, Y of BT.601 YCbCr
in [16, 235] for SR with shave = scale, RGB for denoising; SSIM is scikit-image's with the settings
that match Wang et al.'s MATLAB reference."""
from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity


def quantise(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> what a saved 8-bit image holds: clamp, scale, round."""
    return np.clip(np.rint(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) in [0, 255] -> (H, W) float64 luma in [16, 235]; greyscale passes through as Y."""
    img = np.asarray(img, np.float64)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def shave(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border > 0 else img


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=data_range,
                                       channel_axis=-1 if a.ndim == 3 else None))


def sr_scores(output: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """Y-PSNR and Y-SSIM, shave = scale; images in [0, 255] (output already quantised)."""
    y_out, y_hr = shave(rgb_to_y(output), scale), shave(rgb_to_y(hr), scale)
    return psnr(y_out, y_hr), ssim(y_out, y_hr)


def rgb_scores(output: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """RGB PSNR and SSIM, no shave; images in [0, 255]."""
    return psnr(output, clean), ssim(output, clean)
