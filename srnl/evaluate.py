"""Scoring a restorer on one image by the field's protocol; shared by validation and `srnl eval`."""
from __future__ import annotations

import numpy as np
import torch

from .degrade import add_noise
from .infer import restore
from .metrics import quantise, rgb_scores, sr_scores
from .models.network import RestorationNet


def _tensor(img: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img, np.float32)).permute(2, 0, 1)[None].to(device)


def run_network(net: RestorationNet, img: np.ndarray, sigma: float | None = None,
                **options) -> np.ndarray:
    """img in [0, 255] (H, W, 3), any float or uint8 -> quantised uint8 output."""
    device = next(net.parameters()).device
    x = _tensor(np.asarray(img, np.float32) / 255.0, device)
    if sigma is not None:
        x = torch.cat([x, torch.full_like(x[:, :1], sigma / 255.0)], 1)
    y = restore(net, x, **options)
    return quantise(y[0].permute(1, 2, 0).cpu().numpy())


def noisy_version(clean: np.ndarray, sigma: float, index: int, clip: bool = False) -> np.ndarray:
    """The seeded noisy input for image `index` at `sigma`: the same for every method and run."""
    return add_noise(clean, sigma, seed=1000 * int(sigma) + index, clip=clip)


def score_sr(net: RestorationNet, hr: np.ndarray, lr: np.ndarray, **options) -> tuple[float, float]:
    return sr_scores(run_network(net, lr, **options), hr, net.config.scale)


def score_denoise(net: RestorationNet, clean: np.ndarray, sigma: float, index: int,
                  **options) -> tuple[float, float]:
    noisy = noisy_version(clean, sigma, index)
    return rgb_scores(run_network(net, noisy, sigma=sigma, **options), clean)
