"""Non-local attention (Wang et al. 2018) whose memory stays linear in the pixel count.

Queries live on features downsampled by `down`; keys and values are pooled by a further
`pool`. Softmax runs over keys. Attention goes through `scaled_dot_product_attention` with
contiguous (B, heads, N, dim) tensors, the only layout for which the CPU kernel takes its fused
path instead of materialising the N x M similarity map. The output projection starts at zero,
so a freshly inserted module is the identity.
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
                 pool: int = 2, shared_qk: bool = False):
        super().__init__()
        self.heads, self.down, self.pool = heads, down, pool
        inner = dim * heads
        self.to_q = wn_conv(features, inner, 1)
        self.to_k = self.to_q if shared_qk else wn_conv(features, inner, 1)
        self.to_v = wn_conv(features, inner, 1)
        self.to_out = wn_conv(inner, features, 1, zero=True)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # Pooling commutes with the 1x1 embeddings, so pool first: fewer pixels to embed.
        small = F.avg_pool2d(x, self.down, ceil_mode=True) if self.down > 1 else x
        context = F.avg_pool2d(small, self.pool, ceil_mode=True) if self.pool > 1 else small
        q = _to_tokens(self.to_q(small), self.heads)
        k = _to_tokens(self.to_k(context), self.heads)
        v = _to_tokens(self.to_v(context), self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        out = self.to_out(_from_tokens(out, *small.shape[-2:]))
        if self.down > 1:
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return x + out
