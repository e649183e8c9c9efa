"""A noise-level map from the noisy image alone, as CBDNet's estimation sub-network, made cheap:
the image is pixel-unshuffled by 2, a few weight-normalised convs read it, and their features are
averaged over `pool` x `pool` cells before the last conv, because a noise level belongs to a
neighbourhood, not to a pixel. The map is in the denoiser's sigma units (noise std / 255)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import wn_conv

# softplus(-4) is 0.018 (about 4.6 / 255): a fresh estimator starts by guessing mild noise.
START_BIAS = -4.0


class NoiseLevelEstimator(nn.Module):
    def __init__(self, channels: int = 3, features: int = 24, layers: int = 4, pool: int = 4):
        super().__init__()
        convs: list[nn.Module] = [wn_conv(channels * 4, features), nn.ReLU(inplace=True)]
        for _ in range(layers - 2):
            convs += [wn_conv(features, features), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*convs)
        self.to_level = wn_conv(features, 1, 1)
        nn.init.constant_(self.to_level.bias, START_BIAS)
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) in [0, 1], H and W even -> (B, 1, H, W) noise std in [0, 1] units."""
        cells = F.avg_pool2d(self.features(F.pixel_unshuffle(x - 0.5, 2)), self.pool,
                             ceil_mode=True)
        level = F.softplus(self.to_level(cells))
        return F.interpolate(level, size=x.shape[-2:], mode="bilinear", align_corners=False)
