"""EDSR-style restoration network: residual blocks without batch norm, weight-normalised convs,
non-local modules in the body, a pixel-shuffle upsampler and a skip from the interpolated input."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import NonLocalAttention
from .config import ModelConfig
from .estimator import NoiseLevelEstimator
from .layers import fold_weight_norm, wn_conv
from .rep import RepConv3x3, fold_branches


class ResBlock(nn.Module):
    def __init__(self, features: int, res_scale: float, rep_branches: bool = False):
        super().__init__()
        conv = (lambda: RepConv3x3(features)) if rep_branches else (lambda: wn_conv(features, features))
        self.body = nn.Sequential(conv(), nn.ReLU(inplace=True), conv())
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        # One fused kernel for scale-and-add: these element-wise passes are memory-bound.
        return torch.add(x, self.body(x), alpha=self.res_scale)


def _upsampler(features: int, out_features: int, scale: int, two_stages: bool) -> nn.Sequential:
    factors = [2, 2] if scale == 4 and two_stages else [scale]
    layers = []
    for f in factors:
        layers += [wn_conv(features, out_features * f * f), nn.PixelShuffle(f)]
        features = out_features
    return nn.Sequential(*layers)


def body_layout(config: ModelConfig) -> list[str]:
    """What each index of `RestorationNet.body` holds, by name: residual blocks, a non-local
    module after each block listed in `nonlocal_after`, and the closing conv."""
    layout = []
    for i in range(config.blocks):
        layout.append(f"block{i}")
        if i in config.nonlocal_after:
            layout.append(f"nonlocal{i}")
    return layout + ["conv"]


class RestorationNet(nn.Module):
    """Super-resolution (`task="sr"`): forward(x) with x in [0, 1], (B, C, H, W) -> (B, C, sH, sW).
    Denoising (`task="denoise"`): forward(x, sigma) with sigma in [0, 1] units (noise std / 255 for
    8-bit images), a scalar, a (B,) tensor or a (B, 1, H, W) noise-level map; returns the clean
    estimate. A blind denoiser (`config.blind`) estimates the level where sigma is None or NaN;
    `return_level=True` also returns its estimated map. H and W must be multiples of
    `config.pad_multiple`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c, f = config.channels, config.features
        self.unshuffle = config.denoise_unshuffle if config.task == "denoise" else 1
        u2 = self.unshuffle ** 2
        in_channels = (c + 1) * u2 if config.task == "denoise" else c
        self.head = wn_conv(in_channels, f)
        self.body = nn.Sequential(*map(self._body_part, body_layout(config)))
        if config.task == "sr":
            up = config.upsample_features or f
            self.tail = nn.Sequential(_upsampler(f, up, config.scale, config.x4_two_stages),
                                      wn_conv(up, c))
        else:
            self.tail = wn_conv(f, c * u2)
        self.estimator = (NoiseLevelEstimator(c, config.estimator_features) if config.blind
                          else None)

    def _body_part(self, name: str) -> nn.Module:
        c, f = self.config, self.config.features
        if name.startswith("block"):
            return ResBlock(f, c.res_scale, c.rep_branches)
        if name.startswith("nonlocal"):
            return NonLocalAttention(f, c.nonlocal_dim, c.nonlocal_heads, c.nonlocal_down,
                                     c.nonlocal_pool, c.nonlocal_shared_qk, c.nonlocal_cross_scale,
                                     c.nonlocal_patch)
        return wn_conv(f, f)

    def forward(self, x: Tensor, sigma: Tensor | float | None = None,
                return_level: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if self.config.task == "denoise":
            return self._denoise(x, sigma, return_level)
        feat = self.head(x - 0.5)
        out = self.tail(feat + self.body(feat))
        skip = F.interpolate(x, scale_factor=self.config.scale, mode="bicubic", align_corners=False)
        return out + skip

    def _denoise(self, x: Tensor, sigma: Tensor | float | None,
                 return_level: bool) -> Tensor | tuple[Tensor, Tensor]:
        if sigma is None and self.estimator is None:
            raise ValueError("a denoiser needs the noise level sigma")
        noise_map = noise_level_map(float("nan") if sigma is None else sigma, x)
        level = None
        if self.estimator is not None and (return_level or bool(torch.isnan(noise_map).any())):
            level = self.estimator(x)
            noise_map = torch.where(torch.isnan(noise_map), level, noise_map)
        inp = F.pixel_unshuffle(torch.cat([x - 0.5, noise_map], 1), self.unshuffle)
        feat = self.head(inp)
        clean = x - F.pixel_shuffle(self.tail(feat + self.body(feat)), self.unshuffle)
        return (clean, level) if return_level else clean

    def estimate_level(self, x: Tensor) -> Tensor:
        """A blind denoiser's noise-level map of x, (B, 1, H, W) in [0, 1] units."""
        if self.estimator is None:
            raise ValueError("this denoiser is not blind: it has no noise-level estimator")
        return self.estimator(x)


def noise_level_map(sigma: Tensor | float, like: Tensor) -> Tensor:
    """Broadcast a noise level (scalar, per-image or per-pixel) to a (B, 1, H, W) map."""
    b, _, h, w = like.shape
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    if sigma.dim() <= 1:
        sigma = sigma.reshape(-1, 1, 1, 1)
    return sigma.expand(b, 1, h, w)


def build_model(config: ModelConfig) -> RestorationNet:
    return RestorationNet(config)


def inference_form(model: RestorationNet) -> RestorationNet:
    """The network as it runs: branches folded into single convs, weight norm into plain
    weights (both recompute a sum on every call otherwise). In place; outputs unchanged."""
    return fold_weight_norm(fold_branches(model))
