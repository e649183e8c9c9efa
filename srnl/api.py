"""`srnl.upscale` and `srnl.denoise`: PIL image or numpy array in, the same kind out.

Nothing is kept between calls except the loaded (read-only) networks, so the functions are safe
to call from several threads."""
from __future__ import annotations

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


def resolve_model(model: ModelLike, task: str, scale: int, device: str) -> RestorationNet:
    net = model if isinstance(model, RestorationNet) else shared_model(
        model if model is not None else default_model(task, scale), device)
    if net.config.task != task:
        raise SrnlError(f"model is a {net.config.task!r} model, not {task!r}")
    if task == "sr" and net.config.scale != scale:
        raise SrnlError(f"model upscales x{net.config.scale}, but x{scale} was asked for")
    return net


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


def upscale(image: ImageLike, scale: int = 2, model: ModelLike = None, *,
            tile: int | str = "auto", tile_overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False, device: str = "cpu",
            memory_budget: float = DEFAULT_MEMORY_BUDGET,
            on_tile: Callable[[int, int], None] | None = None) -> ImageLike:
    net = resolve_model(model, "sr", scale, device)
    out = restore_picture(net, _picture(image), tile=tile, overlap=tile_overlap,
                          self_ensemble=self_ensemble, memory_budget=memory_budget, on_tile=on_tile)
    return _like(out, image)


def denoise(image: ImageLike, sigma: float | None = None, model: ModelLike = None, *,
            tile: int | str = "auto", tile_overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False, device: str = "cpu",
            memory_budget: float = DEFAULT_MEMORY_BUDGET,
            on_tile: Callable[[int, int], None] | None = None) -> ImageLike:
    """sigma: noise std in 0-255 units; None estimates it from the image."""
    net = resolve_model(model, "denoise", 1, device)
    pic = _picture(image)
    if sigma is None:
        sigma = estimate_noise_sigma(pic)
    out = restore_picture(net, pic, sigma=sigma, tile=tile, overlap=tile_overlap,
                          self_ensemble=self_ensemble, memory_budget=memory_budget, on_tile=on_tile)
    return _like(out, image)
