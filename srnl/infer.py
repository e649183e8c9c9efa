"""The inference layer every command goes through (as KAIR's `test_mode`): pad to what the network
needs, split into overlapping tiles blended with smooth weights, x8 self-ensemble.

Everything works on one (B, C, H, W) tensor and a function `fn` mapping it to (B, C', sH, sW); the
denoiser's noise map rides along as an extra channel so that padding, flips and tiles treat it
exactly like the image."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import SrnlError
from .models.network import RestorationNet

Fn = Callable[[Tensor], Tensor]
DEFAULT_MEMORY_BUDGET = 0.75 * 2**30
DEFAULT_OVERLAP = 32
# Below this, overlaps and edges take most of a tile's time (auto tiling's smallest tile too).
MIN_TILE = 64


def model_fn(model: RestorationNet) -> Fn:
    """Wrap a network as a single-tensor function; for the denoiser the last channel is sigma."""
    if model.config.takes_level:
        return lambda x: model(x[:, :-1], x[:, -1:])
    return model


def padded(fn: Fn, multiple: int, scale: int, minimum: int = 0) -> Fn:
    """Replicate-pad the bottom/right edges to a multiple of `multiple` (and to at least
    `minimum`), then crop the output."""
    if multiple <= 1 and minimum <= 1:
        return fn

    def run(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (max(-n % multiple, minimum - n) for n in (h, w))
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return fn(x)[..., : h * scale, : w * scale]

    return run


def self_ensembled(fn: Fn) -> Fn:
    """Average over the 8 flips/transposes (EDSR's "+"), each mapped back before averaging."""

    def run(x: Tensor) -> Tensor:
        total = None
        for transpose in (False, True):
            for flips in ((), (-1,), (-2,), (-2, -1)):
                t = x.transpose(-1, -2) if transpose else x
                y = fn(t.flip(flips) if flips else t)
                y = y.flip(flips) if flips else y
                y = y.transpose(-1, -2) if transpose else y
                total = y if total is None else total + y
        return total / 8

    return run


Spans = list[tuple[int, int]]


def _spans(length: int, tile: int, overlap: int) -> Spans:
    """(start, size) of the fewest tiles of at most `tile` pixels overlapping by at least
    `overlap`, all of one size and evenly spread, so no tile is mostly overlap."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)
    return [(round(i * (length - size) / (n - 1)), size) for i in range(n)]


def _usable_overlap(tile: int, overlap: int) -> int:
    """At most half a tile, so each tile still advances past the one before it."""
    return min(overlap, tile // 2)


def tile_spans(h: int, w: int, tile: int, overlap: int) -> tuple[Spans, Spans]:
    """The tiles `tiled` runs on an h x w input: (start, size) spans down and across."""
    overlap = _usable_overlap(tile, overlap)
    return _spans(h, tile, overlap), _spans(w, tile, overlap)


def _ramp(length: int, overlap: int, left: bool, right: bool) -> Tensor:
    """Blend weights along one side of a tile. Inside an overlap the outer quarter, where the tile
    edge disturbs the output, gets weight 0; the middle half rises as sin^2, so the two tiles'
    weights sum to 1 there; the rest is 1."""
    w = torch.ones(length)
    margin = overlap // 4
    width = overlap - 2 * margin
    if width <= 0:
        return w
    rise = torch.sin(0.5 * math.pi * (torch.arange(width) + 0.5) / width) ** 2
    if left:
        w[:margin] = 0
        w[margin:margin + width] = rise
    if right:
        w[length - margin:] = 0
        w[length - margin - width:length - margin] = rise.flip(0) * w[length - margin - width:length - margin]
    return w


def _weight_sum(spans: Spans, length: int, overlap: int, scale: int) -> Tensor:
    """Every tile's ramp along one axis, summed. A tile's 2-D weight is the product of its two
    ramps and every tile of a grid shares the same spans, so the total weight at (r, c) is the
    product of the two axes' sums: no full-size weight map is needed."""
    total = torch.zeros(length * scale)
    for start, size in spans:
        total[start * scale:(start + size) * scale] += _ramp(
            size * scale, overlap * scale, start > 0, start + size < length)
    return total


def tiled_bands(fn: Fn, x: Tensor, tile: int, overlap: int, scale: int,
                on_tile: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, Tensor]]:
    """Run `fn` on overlapping tiles of `tile` x `tile` input pixels and blend them, yielding the
    output as (first row, finished rows) from top to bottom. Only the rows a row of tiles still
    writes are held, so memory is bounded by the tile size and the output's width, not its height;
    the seams vanish into the overlaps."""
    overlap = _usable_overlap(tile, overlap)
    h, w = x.shape[-2:]
    ys, xs = tile_spans(h, w, tile, overlap)
    row_weight = _weight_sum(ys, h, overlap, scale)[:, None]
    col_weight = _weight_sum(xs, w, overlap, scale)
    total, done = len(ys) * len(xs), 0
    # Every row of tiles has the same height and starts where the rows finished before it end,
    # so one buffer of that height holds the blend throughout: no band is allocated twice (on a
    # heap that keeps freed memory, each new band would otherwise grow the process).
    held, held_from = None, 0  # output rows held_from.. being blended
    for k, (y0, th) in enumerate(ys):
        wy = _ramp(th * scale, overlap * scale, y0 > 0, y0 + th < h)
        top = y0 * scale - held_from
        for x0, tw in xs:
            wx = _ramp(tw * scale, overlap * scale, x0 > 0, x0 + tw < w)
            y = fn(x[..., y0:y0 + th, x0:x0 + tw])
            if held is None:
                held = y.new_zeros(*y.shape[:2], th * scale, w * scale)
            held[..., top:top + th * scale, x0 * scale:(x0 + tw) * scale] += (
                y * (wy[:, None] * wx[None, :]).to(y))
            del y
            done += 1
            if on_tile:
                on_tile(done, total)
        # Rows above the next row of tiles get nothing more.
        finished = (ys[k + 1][0] if k + 1 < len(ys) else h) * scale - held_from
        # Divided by each axis's weight in turn: their product would be a band-sized map.
        band = held[..., :finished, :].div_(row_weight[held_from:held_from + finished].to(held))
        yield held_from, band.div_(col_weight.to(held))
        # The overlap with the next row of tiles moves to the top; the rest starts again at 0.
        kept = held.shape[-2] - finished
        held[..., :kept, :] = held[..., finished:, :].clone()
        held[..., kept:, :] = 0
        held_from += finished


def tiled(fn: Fn, tile: int, overlap: int, scale: int,
          on_tile: Callable[[int, int], None] | None = None) -> Fn:
    """`tiled_bands` as a function returning the whole float output."""

    def run(x: Tensor) -> Tensor:
        out = None
        for row, band in tiled_bands(fn, x, tile, overlap, scale, on_tile):
            if out is None:
                out = band.new_empty(*band.shape[:2], x.shape[-2] * scale, x.shape[-1] * scale)
            out[..., row:row + band.shape[-2], :] = band
        return out

    return run


def estimate_bytes(model: RestorationNet, h: int, w: int) -> int:
    """Peak activation memory of one forward pass at h x w input, from the feature maps alive at
    once (a handful in the body, the upsampler's s^2-times-wider map and its shuffle): an upper
    bound, 1.7-2x what a CPU run of the shipped SR models peaks at."""
    c = model.config
    up = c.upsample_features or c.features
    per_pixel = c.features * 6 + (up * c.scale**2 * 3 if c.task == "sr" else 0)
    return 4 * h * w * per_pixel


def band_bytes(model: RestorationNet, w: int) -> int:
    """The float output rows that one input row of a row of tiles holds until it is finished."""
    s = model.config.scale
    return 4 * s * w * s * model.config.channels


def auto_tile(model: RestorationNet, h: int, w: int, budget: float = DEFAULT_MEMORY_BUDGET) -> int:
    """0 (no tiling) when the whole image's activations and float output fit the budget, else the
    largest square tile whose activations and row of blended output (`band_bytes`) do."""
    if estimate_bytes(model, h, w) + band_bytes(model, w) * h <= budget:
        return 0
    a, b = estimate_bytes(model, 1, 1), band_bytes(model, w)
    side = int((math.sqrt(b * b + 4 * a * budget) - b) / (2 * a))
    return max(MIN_TILE, side - side % 8)


@dataclass(frozen=True)
class InferenceOptions:
    """How a network runs on an image; checked once, here, for the API, every command, eval and
    bench. tile: "auto" (tile only when the image would not fit `memory_budget` bytes), 0 (never)
    or the side of square input tiles; overlap: between tiles, in input pixels."""
    tile: int | str = "auto"
    overlap: int = DEFAULT_OVERLAP
    self_ensemble: bool = False
    memory_budget: float = DEFAULT_MEMORY_BUDGET

    def __post_init__(self):
        if self.tile != "auto" and (isinstance(self.tile, bool) or not isinstance(self.tile, int)
                                    or self.tile < 0 or 0 < self.tile < MIN_TILE):
            raise SrnlError(f"the tile must be auto, 0 or a side from {MIN_TILE} up, "
                            f"got {self.tile!r}", option="tile")
        if self.overlap < 0:
            raise SrnlError(f"the tile overlap must be 0 or more, got {self.overlap}",
                            option="tile_overlap")
        if self.tile not in ("auto", 0) and self.overlap > self.tile // 2:
            raise SrnlError(f"the tile overlap must be at most half the tile ({self.tile // 2} for "
                            f"tile {self.tile}), got {self.overlap}", option="tile_overlap")
        if not self.memory_budget > 0:
            raise SrnlError(f"the memory budget must be positive, got {self.memory_budget}",
                            option="memory_budget")

    def tile_for(self, model: RestorationNet, h: int, w: int) -> int:
        """The tile side this image runs with (0: whole); the one place "auto" is decided."""
        return auto_tile(model, h, w, self.memory_budget) if self.tile == "auto" else self.tile


def _batch(model: RestorationNet, rgb: np.ndarray) -> Tensor:
    """(H, W, 3) float in [0, 1] -> (1, 3, H, W) on the model's device. HWC -> NCHW as a view:
    already channels_last, no copy."""
    x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
    return x.to(next(model.parameters()).device)


def _prepared(fn: Fn, model: RestorationNet, scale: int, self_ensemble: bool) -> Fn:
    """`fn` padded to the network's multiple, then self-ensembled if asked."""
    fn = padded(fn, model.config.pad_multiple, scale, model.config.pad_minimum)
    return self_ensembled(fn) if self_ensemble else fn


def _layered(fn: Fn, model: RestorationNet, h: int, w: int, scale: int,
             options: InferenceOptions, self_ensemble: bool = False,
             on_tile: Callable[[int, int], None] | None = None) -> Fn:
    """`fn` as this layer runs it on an h x w input: `_prepared`, then tiled as asked."""
    fn = _prepared(fn, model, scale, self_ensemble)
    tile = options.tile_for(model, h, w)
    return tiled(fn, tile, options.overlap, scale, on_tile) if tile else fn


def restore_image(model: RestorationNet, rgb: np.ndarray, sigma: float | None = None,
                  options: InferenceOptions = InferenceOptions(),
                  on_tile: Callable[[int, int], None] | None = None,
                  bits: int | None = None) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> the network's (sH, sW, 3) output: float32, unclamped, or with
    `bits` (8 or 16) as a file holds it, uint8 or uint16, written tile row by tile row so that no
    float copy of the whole output ever exists. sigma (denoiser): noise std in 0-255 units,
    relative to full scale; None lets a blind denoiser estimate it."""
    x = _batch(model, rgb)
    if model.config.takes_level:
        if sigma is None and not model.config.blind:
            raise ValueError("this denoiser needs sigma: it is not blind")
        # NaN marks "estimate it": it rides through padding, flips and tiles like the image.
        level = math.nan if sigma is None else sigma / 255.0
        x = torch.cat([x, torch.full_like(x[:, :1], level)], 1)
    if bits is None:
        return restore(model, x, options, on_tile)[0].permute(1, 2, 0).float().cpu().numpy()
    return restore_quantised(model, x, bits, options, on_tile)[0]


@torch.inference_mode()
def level_map(model: RestorationNet, rgb: np.ndarray,
              options: InferenceOptions = InferenceOptions()) -> np.ndarray:
    """A blind denoiser's noise-level map of an (H, W, 3) image in [0, 1], (H, W) in [0, 1] units,
    through the same padding and tiles as its restoration."""
    x = _batch(model, rgb)
    fn = _layered(model.estimate_level, model, *x.shape[-2:], 1, options)
    return fn(x)[0, 0].float().cpu().numpy()


@torch.inference_mode()
def restore(model: RestorationNet, x: Tensor, options: InferenceOptions = InferenceOptions(),
            on_tile: Callable[[int, int], None] | None = None) -> Tensor:
    """x: (B, C, H, W) in [0, 1] (denoiser: the noise map appended as a last channel).
    Returns the unclamped network output."""
    fn = _layered(model_fn(model), model, *x.shape[-2:], model.config.scale, options,
                  options.self_ensemble, on_tile)
    return fn(x.contiguous(memory_format=torch.channels_last))


# Rows quantised at once: bounds the float temporaries of a band's conversion.
QUANTISE_ROWS = 256


@torch.inference_mode()
def restore_quantised(model: RestorationNet, x: Tensor, bits: int,
                      options: InferenceOptions = InferenceOptions(),
                      on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """As `restore`, rounded and clamped to `bits` (8 or 16) into a (B, sH, sW, C) uint8 or
    uint16 array: each finished band of tiles goes straight into it."""
    h, w = x.shape[-2:]
    scale = model.config.scale
    fn = _prepared(model_fn(model), model, scale, options.self_ensemble)
    x = x.contiguous(memory_format=torch.channels_last)
    tile = options.tile_for(model, h, w)
    bands = tiled_bands(fn, x, tile, options.overlap, scale, on_tile) if tile else [(0, fn(x))]
    top = 2**bits - 1
    out = None
    for row, band in bands:
        if out is None:
            out = np.empty((band.shape[0], h * scale, w * scale, band.shape[1]),
                           np.uint8 if bits == 8 else np.uint16)
        # In place: a finished band is not read again.
        for r in range(0, band.shape[-2], QUANTISE_ROWS):
            part = band[..., r:r + QUANTISE_ROWS, :].mul_(top).round_().clamp_(0, top)
            out[:, row + r:row + r + part.shape[-2]] = part.permute(0, 2, 3, 1).cpu().numpy()
        del band
    return out
