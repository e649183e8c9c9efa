"""What `upscale` and `denoise` do to each picture, built once from their options for every front
end (the command line, the web app): one code path, so a picture is treated the same through
either. A bad option is refused here, before any image is read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import SrnlError
from .files import Work
from .infer import InferenceOptions
from .models.registry import ModelLike


@dataclass(frozen=True)
class Task:
    work_for: Callable[[Callable[[int, int], None] | None], Work]  # (on_tile) -> the work
    suffix: str  # the output name's default suffix: _x2, _1920w, _dn...


def size_suffix(scale: float | None, width: int | None, height: int | None,
                model_scale: int) -> str:
    if width and height:
        return f"_{width}x{height}"
    if width or height:
        return f"_{width}w" if width else f"_{height}h"
    return f"_x{scale:g}" if scale is not None else f"_x{model_scale}"


def upscale_task(scale: float | None = None, width: int | None = None,
                 height: int | None = None, model: ModelLike = None, device: str = "cpu",
                 options: InferenceOptions = InferenceOptions()) -> Task:
    """Upscale by `scale` (any factor up to 4; None: the model's own, else 2) or to a width
    and/or height; the note says when a Lanczos downscale made the exact size."""
    from .api import check_reach, upscale_picture
    from .models.registry import model_label, resolve_model
    from .sizing import check_request, model_scale_for

    check_request(scale, width, height)
    needed = model_scale_for(scale) if scale is not None else None
    # Resolved once here when one model serves every image (a missing one fails before any
    # work); a width or height picks the model per image.
    net = (resolve_model(model, "sr", None, device) if model is not None else
           resolve_model(None, "sr", needed, device) if needed else None)
    if net is not None and scale is not None:
        check_reach(net, scale)

    def work_for(on_tile):
        def work(pic):
            out, ran, ran_model = upscale_picture(pic, model, scale, width, height, device,
                                                  options, on_tile)
            resized = out.size != tuple(s * ran for s in pic.size)
            name = model_label(ran_model, "sr", ran)
            return out, name, f"Lanczos to {out.size[0]}x{out.size[1]}" if resized else None
        return work

    return Task(work_for, size_suffix(scale, width, height, net.config.scale if net else 2))


def parse_sigma(sigma: str | float | None) -> float | None:
    """A denoising level as given: "auto" or None (the model's own estimate) or 0-255."""
    from .degrade import check_sigma

    if sigma is None or sigma == "auto":
        return None
    try:
        return check_sigma(float(sigma))
    except ValueError:
        raise SrnlError(f"must be auto or a number, got {sigma!r}", option="sigma") from None


def denoise_task(sigma: str | float | None = "auto", model: ModelLike = None,
                 device: str = "cpu", options: InferenceOptions = InferenceOptions()) -> Task:
    """Denoise at `sigma` (0-255, or auto); the note says the level used."""
    from .api import denoise_picture
    from .models.registry import model_label, resolve_model

    fixed = parse_sigma(sigma)
    net = resolve_model(model, "denoise", 1, device)

    def work_for(on_tile):
        def work(pic):
            out, level = denoise_picture(net, pic, fixed, options, on_tile)
            return out, model_label(model, "denoise", 1), None if level is None else str(level)
        return work

    return Task(work_for, "_dn")
