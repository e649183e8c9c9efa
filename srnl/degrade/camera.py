"""Sensor noise as a camera's own processing leaves it, after "Unprocessing Images for Learned Raw
Denoising" (Brooks et al. 2019) and CBDNet: the sRGB image is taken back to a linear Bayer mosaic,
shot and read noise are added there, and the camera's steps run forward again (bilinear
demosaicing, white balance, gamma, a mild noise reduction or sharpening). What comes out is
signal-dependent, spatially correlated and chroma-heavy, like the noise in a phone's photo."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

GAMMA = 2.2
# Bilinear demosaicing of an RGGB mosaic: each channel's samples, zeros elsewhere, convolved.
_GREEN = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
_RED_BLUE = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4


def bayer_masks(h: int, w: int) -> np.ndarray:
    """(3, h, w) 0/1 masks of an RGGB mosaic."""
    masks = np.zeros((3, h, w), np.float32)
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = 1
    masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    return masks


def demosaic(raw: np.ndarray) -> np.ndarray:
    """(h, w) RGGB mosaic -> (h, w, 3), bilinear."""
    h, w = raw.shape
    planes = torch.from_numpy(bayer_masks(h, w) * raw[None])[:, None]
    kernels = torch.from_numpy(np.stack([_RED_BLUE, _GREEN, _RED_BLUE]))[:, None]
    out = F.conv2d(F.pad(planes.transpose(0, 1), (1, 1, 1, 1), mode="reflect"), kernels, groups=3)
    return out[0].numpy().transpose(1, 2, 0)


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    r = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = torch.from_numpy((k / k.sum()).astype(np.float32))
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[:, None]
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="replicate"), k[None, None, None, :])
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="replicate"), k[None, None, :, None])
    return t[:, 0].numpy().transpose(1, 2, 0)


@dataclass(frozen=True)
class CameraPipeline:
    """One exposure: shot noise variance `shot` x signal plus read noise variance `read` (linear
    units, full scale 1), white-balance gains, then `detail` > 0 sharpens (unsharp mask of that
    amount) and < 0 smooths (a blend of that much of a Gaussian blur), as in-camera processing does."""
    shot: float
    read: float
    red_gain: float
    blue_gain: float
    detail: float
    seed: int

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """The noise this camera would leave, added to `img`: the pipeline runs once with and once
        without it, so that demosaicing and sharpening change the noise but not the image, which
        stays a fair target."""
        gains = np.array([self.red_gain, 1.0, self.blue_gain], np.float32)
        h, w = img.shape[:2]
        linear = (img.astype(np.float32) / 255.0) ** GAMMA / gains
        raw = (linear.transpose(2, 0, 1) * bayer_masks(h, w)).sum(0)
        std = np.sqrt(raw * self.shot + self.read)
        noise = std * np.random.default_rng(self.seed).standard_normal(raw.shape)
        noisy_raw = np.clip(raw + noise, 0, 1).astype(np.float32)
        residual = self._develop(noisy_raw, gains) - self._develop(raw, gains)
        return np.clip(np.rint(img + residual * 255.0), 0, 255).astype(np.uint8)

    def _develop(self, raw: np.ndarray, gains: np.ndarray) -> np.ndarray:
        rgb = np.clip(demosaic(raw) * gains, 0, 1) ** (1 / GAMMA)
        if self.detail > 0:
            return rgb + self.detail * (rgb - _gaussian(rgb, 1.0))
        return rgb + -self.detail * (_gaussian(rgb, 0.8) - rgb)


def draw_camera(rng: np.random.Generator, shot_range: tuple[float, float]) -> CameraPipeline:
    """Brooks et al.'s noise model: log shot uniform, log read a linear function of it plus a little
    spread; white-balance gains of daylight to tungsten; mild sharpening or noise reduction."""
    log_shot = rng.uniform(math.log(shot_range[0]), math.log(shot_range[1]))
    log_read = 2.18 * log_shot + 1.2 + rng.normal(0, 0.26)
    return CameraPipeline(shot=math.exp(log_shot), read=math.exp(log_read),
                          red_gain=rng.uniform(1.9, 2.4), blue_gain=rng.uniform(1.5, 1.9),
                          detail=rng.uniform(-0.6, 0.6), seed=int(rng.integers(2**63)))
