"""`srnl.upscale` and `srnl.denoise`: PIL image or numpy array in, the same kind out.

Nothing is kept between calls except the loaded (read-only) networks, so the functions are safe
to call from several threads."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image

from .errors import SrnlError
from .imageio import (Picture, picture_from_array, picture_from_pil, picture_to_array,
                      picture_to_pil)
from .degrade import estimate_noise
from .infer import DEFAULT_MEMORY_BUDGET, DEFAULT_OVERLAP, restore_image
from .models.network import RestorationNet
from .models.registry import default_model, shared_model

ImageLike = Union[Image.Image, np.ndarray]
ModelLike = Union[str, Path, RestorationNet, None]


def resolve_model(model: ModelLike, task: str, scale: int | None, device: str) -> RestorationNet:
    """The network for `task`: `model` (a shipped name, a file or a loaded network) or, if None,
    the shipped one. An SR `scale` of None means the model's own (x2 when no model is given)."""
    if model is None:
        model = default_model(task, 1 if task == "denoise" else scale or 2)
    net = model if isinstance(model, RestorationNet) else shared_model(model, device)
    if net.config.task != task:
        raise SrnlError(f"model is a {net.config.task!r} model, not {task!r}")
    if task == "sr" and scale is not None and net.config.scale != scale:
        raise SrnlError(f"model upscales x{net.config.scale}, but x{scale} was asked for")
    return net


def check_sigma(sigma) -> float:
    """A noise level in 0-255 units, refused unless a finite number in [0, 255]."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 255):
        raise SrnlError(f"sigma must be a finite number from 0 to 255, got {sigma!r}")
    return value


def restore_picture(net: RestorationNet, pic: Picture, sigma: float | None = None,
                    **options) -> Picture:
    """Run `net` on a picture; sigma (denoiser) in 0-255 units, relative to full scale."""
    rgb = restore_image(net, pic.rgb, sigma, **options).clip(0, 1)
    alpha = pic.alpha
    if alpha is not None and net.config.scale > 1:
        h, w = rgb.shape[:2]
        alpha = np.asarray(Image.fromarray(alpha, "F").resize((w, h), Image.BICUBIC)).clip(0, 1)
    return replace(pic, rgb=rgb, alpha=alpha)


def estimate_noise_sigma(pic: Picture) -> float:
    """Noise std in 0-255 units."""
    return estimate_noise(pic.rgb[..., 0] if pic.grey else pic.rgb) * 255.0


def _picture(image: ImageLike) -> Picture:
    if isinstance(image, Image.Image):
        return picture_from_pil(image)
    if isinstance(image, np.ndarray):
        return picture_from_array(image)
    raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")


def _like(pic: Picture, image: ImageLike) -> ImageLike:
    return picture_to_pil(pic) if isinstance(image, Image.Image) else picture_to_array(pic)


def upscale(image: ImageLike, scale: int | None = None, model: ModelLike = None, *,
            tile: int | str = "auto", tile_overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False, device: str = "cpu",
            memory_budget: float = DEFAULT_MEMORY_BUDGET,
            on_tile: Callable[[int, int], None] | None = None) -> ImageLike:
    """Super-resolve `image` and return it the way it came.

    image: a PIL image (any mode Pillow reads; returned as a PIL image of the same mode) or a
        uint8/uint16 numpy array (H, W), (H, W, 1-4) (returned as an array of the same dtype).
        Alpha is resized with bicubic, greyscale stays greyscale, EXIF orientation is applied.
    scale: 2, 3 or 4; None means the model's own scale (x2 for the shipped default). A model of
        another scale is refused.
    model: a shipped name ("x2", "x3", "x4"), a checkpoint file, a network from `load_model`, or
        None for the shipped model of `scale`.
    tile: "auto" (tile only when over `memory_budget` bytes), 0 (never) or the side of square
        input tiles; tile_overlap: their overlap in input pixels.
    self_ensemble: average the 8 flips/transposes (slower by 8x, a little better).
    device: "cpu", "cuda" or "cuda:N". on_tile(done, total) is called after each tile.

    Raises SrnlError for a wrong model, array type or mode, or an animated/multi-frame image.
    Safe to call from several threads.
    """
    net = resolve_model(model, "sr", scale, device)
    out = restore_picture(net, _picture(image), tile=tile, overlap=tile_overlap,
                          self_ensemble=self_ensemble, memory_budget=memory_budget, on_tile=on_tile)
    return _like(out, image)


def denoise(image: ImageLike, sigma: float | None = None, model: ModelLike = None, *,
            tile: int | str = "auto", tile_overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False, device: str = "cpu",
            memory_budget: float = DEFAULT_MEMORY_BUDGET,
            on_tile: Callable[[int, int], None] | None = None) -> ImageLike:
    """Remove Gaussian noise from `image` and return it the way it came.

    image: a PIL image or a uint8/uint16 numpy array, as for `upscale`.
    sigma: the noise standard deviation in 0-255 units relative to full scale (also for 16-bit
        images: 25 means 25/255 of the range), finite, from 0 to 255; None estimates it from the
        image. (The raw network from `load_model("denoise")` takes sigma in [0, 1] units instead:
        `net(x, 25 / 255)`.)
    model: "denoise", a denoising checkpoint file, a loaded network, or None for the shipped one.
    tile, tile_overlap, self_ensemble, device, memory_budget, on_tile: as for `upscale`.

    Raises SrnlError for a bad sigma, a wrong model, array type or mode.
    """
    net = resolve_model(model, "denoise", 1, device)
    pic = _picture(image)
    sigma = estimate_noise_sigma(pic) if sigma is None else check_sigma(sigma)
    out = restore_picture(net, pic, sigma=sigma, tile=tile, overlap=tile_overlap,
                          self_ensemble=self_ensemble, memory_budget=memory_budget, on_tile=on_tile)
    return _like(out, image)
