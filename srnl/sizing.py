"""Any output size: the nearest model scale at or above the factor asked for, then a Lanczos
downscale (Pillow, antialiased) to the exact size. A 1.5x request runs the x2 model and shrinks
its output by 3/4; a width of 1000 for a 400-pixel-wide image runs x3."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from PIL import Image

from .errors import SrnlError
from .imageio import Picture, as_float

MODEL_SCALES = (2, 3, 4)


def check_request(scale: float | None = None, width: int | None = None,
                  height: int | None = None) -> None:
    """Refuse, before any image is read, a size request no image could satisfy."""
    if scale is not None and (width or height):
        raise SrnlError("give a scale or an output width/height, not both", option="scale")
    if width is not None and width < 1 or height is not None and height < 1:
        raise SrnlError("the output width and height must be 1 or more", option="width")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise SrnlError(f"the scale must be a positive number, got {scale}", option="scale")


def target_size(size: tuple[int, int], scale: float | None = None, width: int | None = None,
                height: int | None = None) -> tuple[tuple[int, int], float]:
    """(output width and height, the largest factor either side grows by) for an image of `size`:
    by `scale`, or to `width` and/or `height` (one alone keeps the aspect ratio)."""
    check_request(scale, width, height)
    w, h = size
    if width or height:
        out = (width or max(1, round(w * height / h)), height or max(1, round(h * width / w)))
        return out, max(out[0] / w, out[1] / h)
    scale = 2.0 if scale is None else float(scale)
    return (max(1, round(w * scale)), max(1, round(h * scale))), scale


def model_scale_for(factor: float, option: str = "scale") -> int:
    """The smallest model scale that reaches `factor`; `option` is the setting that asked for it
    (scale, width or height), named in the error."""
    if factor <= 1:
        raise SrnlError(f"srnl upscales: the output must be larger than the input (x{factor:.3g})",
                        option=option)
    for s in MODEL_SCALES:
        if s >= factor - 1e-9:
            return s
    raise SrnlError(f"x{factor:.3g} is more than the largest model scale, x{MODEL_SCALES[-1]}",
                    option=option)


def _resized(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(channel, "F").resize(size, Image.LANCZOS)).clip(0, 1)


def resize_picture(pic: Picture, size: tuple[int, int]) -> Picture:
    """The picture at `size` (width, height), each channel resampled in float with Lanczos."""
    if pic.size == size:
        return pic
    rgb = np.stack([_resized(as_float(np.ascontiguousarray(pic.rgb[..., c]), pic.bits), size)
                    for c in range(3)], -1)
    alpha = None if pic.alpha is None else _resized(as_float(pic.alpha, pic.bits), size)
    return replace(pic, rgb=rgb.astype(np.float32), alpha=alpha)
