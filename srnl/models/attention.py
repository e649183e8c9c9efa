"""Non-local attention (Wang et al. 2018) whose memory stays linear in the pixel count.

Queries live on features downsampled by `down`; keys and values are pooled by a further
`pool`. Softmax runs over keys. Attention goes through `scaled_dot_product_attention` with
contiguous (B, heads, N, dim) tensors, the only layout for which the CPU kernel takes its fused
path instead of materialising the N x M similarity map. The output projection starts at zero,
so a freshly inserted module is the identity.

Pooled values can only return low-frequency context. With `cross_scale` (CSNLN's self-exemplars)
a key still describes a `pool` x `pool` block of query cells, but its value is that whole block
at query resolution: a query that looks like a larger copy of itself elsewhere receives that
copy's finer detail, `pool` times finer than the query grid.

With `patch` > 1 queries and keys are embedded from `patch` x `patch` neighbourhoods of their
grids, so that texture is matched against texture rather than one pooled colour against another.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import wn_conv


def _to_tokens(x: Tensor, heads: int) -> Tensor:
    """(B, heads*d, H, W) -> contiguous (B, heads, H*W, d), keeping channels apart from positions."""
    b, c, h, w = x.shape
    return x.reshape(b, heads, c // heads, h * w).transpose(-1, -2).contiguous()


def _from_tokens(t: Tensor, h: int, w: int) -> Tensor:
    b, heads, n, d = t.shape
    return t.transpose(-1, -2).reshape(b, heads * d, h, w)


class NonLocalAttention(nn.Module):
    def __init__(self, features: int, dim: int = 16, heads: int = 1, down: int = 4,
                 pool: int = 2, shared_qk: bool = False, cross_scale: bool = False,
                 patch: int = 1):
        super().__init__()
        self.heads, self.down, self.pool, self.cross_scale = heads, down, pool, cross_scale
        inner = dim * heads
        self.to_q = wn_conv(features, inner, patch)
        self.to_k = self.to_q if shared_qk else wn_conv(features, inner, patch)
        # Cross-scale values carry pool^2 cells each in the same `inner` channels: the value width
        # must equal the key width for the CPU's fused kernel (4x slower otherwise).
        if cross_scale and inner % pool**2:
            raise ValueError(f"cross-scale attention needs dim * heads ({inner}) divisible by "
                             f"pool^2 ({pool**2})")
        cell = inner // pool**2 if cross_scale else inner
        self.to_v = wn_conv(features, cell, 1)
        self.to_out = wn_conv(cell, features, 1, zero=True)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # Embedding the pooled grids (not pooling embedded pixels) keeps the pixels to embed few.
        small = F.avg_pool2d(x, self.down, ceil_mode=True) if self.down > 1 else x
        context = F.avg_pool2d(small, self.pool, ceil_mode=True) if self.pool > 1 else small
        q = _to_tokens(self.to_q(small), self.heads)
        k = _to_tokens(self.to_k(context), self.heads)
        v = _to_tokens(self._values(small, context), self.heads)
        out = _from_tokens(F.scaled_dot_product_attention(q, k, v), *small.shape[-2:])
        if self.cross_scale:
            out = F.pixel_shuffle(out, self.pool)
        out = self.to_out(out)
        if out.shape[-2:] != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return x + out

    def _values(self, small: Tensor, context: Tensor) -> Tensor:
        if not self.cross_scale:
            return self.to_v(context)
        # Each key's block of query cells, padded (as ceil_mode pooled it) and stacked into channels.
        pad_h, pad_w = (-s % self.pool for s in small.shape[-2:])
        blocks = F.pad(self.to_v(small), (0, pad_w, 0, pad_h), mode="replicate")
        return F.pixel_unshuffle(blocks, self.pool)
