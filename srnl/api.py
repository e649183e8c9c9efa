"""`srnl.upscale` and `srnl.denoise`: PIL image or numpy array in, the same kind out.

Nothing is kept between calls except the loaded (read-only) networks, so the functions are safe
to call from several threads."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Union

import numpy as np
from PIL import Image

from .imageio import (Picture, to_uint, picture_from_array, picture_from_pil, picture_to_array,
                      picture_to_pil)
from .degrade import check_sigma, estimate_noise
from .errors import SrnlError
from .infer import (DEFAULT_MEMORY_BUDGET, DEFAULT_OVERLAP, InferenceOptions, level_map,
                    restore_image)
from .models.network import RestorationNet
from .models.registry import ModelLike, default_model, for_input, resolve_model
from .sizing import model_scale_for, resize_picture, target_size

ImageLike = Union[Image.Image, np.ndarray]


def restore_picture(net: RestorationNet, pic: Picture, sigma: float | None = None,
                    options: InferenceOptions = InferenceOptions(),
                    on_tile: Callable[[int, int], None] | None = None) -> Picture:
    """Run `net` on a picture; sigma (denoiser) in 0-255 units, relative to full scale, or None
    for a blind denoiser's own per-pixel estimate. The result holds the integers its file will
    (8 or 16 bits, as the input), assembled tile row by tile row."""
    rgb = restore_image(net, pic.rgb, sigma, options, on_tile, bits=pic.bits)
    alpha = pic.alpha
    if alpha is not None and net.config.scale > 1:
        h, w = rgb.shape[:2]
        # 8-bit alpha is resized as 8 bits, a quarter of a float copy of the output's size.
        alpha = (np.asarray(Image.fromarray(to_uint(alpha, 8)).resize((w, h), Image.BICUBIC))
                 if pic.bits == 8 else
                 np.asarray(Image.fromarray(alpha, "F").resize((w, h), Image.BICUBIC)).clip(0, 1))
    return replace(pic, rgb=rgb, alpha=alpha)


def upscale_picture(pic: Picture, model: ModelLike = None, scale: float | None = None,
                    width: int | None = None, height: int | None = None, device: str = "cpu",
                    options: InferenceOptions = InferenceOptions(),
                    on_tile: Callable[[int, int], None] | None = None
                    ) -> tuple[Picture, int, ModelLike]:
    """(the picture upscaled, the model scale that ran, the model that ran): by `scale` (any
    factor up to 4; None: the model's own, else 2) or to `width`/`height`, through the smallest
    model scale that reaches it and a Lanczos downscale to the exact size. A given model serves
    any factor up to its scale. A shipped model hands an aliased-looking picture to its model for
    aliased input (`registry.for_input`)."""
    if model is not None and scale is None and not (width or height):
        model = for_input(model, pic.rgb)
        net = resolve_model(model, "sr", None, device)
        return restore_picture(net, pic, None, options, on_tile), net.config.scale, model
    size, factor = target_size(pic.size, scale, width, height)
    option = "width" if width else "height" if height else "scale"
    needed = model_scale_for(factor, option)
    model = for_input(default_model("sr", needed) if model is None else model, pic.rgb)
    net = resolve_model(model, "sr", None, device)
    check_reach(net, factor, option)
    return (resize_picture(restore_picture(net, pic, None, options, on_tile), size),
            net.config.scale, model)


def check_reach(net: RestorationNet, factor: float, option: str = "scale") -> None:
    """A given model serves any factor up to its own scale (its output is then shrunk)."""
    if net.config.scale < factor - 1e-9:
        raise SrnlError(f"the model upscales x{net.config.scale}, but x{factor:.3g} was asked for",
                        option=option)


@dataclass(frozen=True)
class NoiseLevel:
    """The noise level (0-255 units) a denoising run used: one level (given, or estimated for the
    whole image) or, for a blind denoiser, the range (5th-95th percentile) and mean of its
    per-pixel map: its result differs from one level given everywhere."""
    mean: float
    given: bool = False
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        if self.given:
            return f"sigma {self.mean:.1f} (given)"
        if self.low is None:
            return f"sigma {self.mean:.1f} (estimated)"
        return f"sigma {self.low:.1f}-{self.high:.1f}, mean {self.mean:.1f} (estimated per pixel)"


def noise_level(net: RestorationNet, pic: Picture,
                options: InferenceOptions = InferenceOptions()) -> NoiseLevel:
    """The noise level a denoising run without sigma uses: a blind denoiser's own per-pixel
    estimate; for a non-blind one, scikit-image's wavelet estimate, which is right for white noise
    only."""
    if net.config.blind:
        levels = level_map(net, pic.rgb, options) * 255.0
        low, high = np.percentile(levels, [5, 95])
        return NoiseLevel(float(levels.mean()), low=float(low), high=float(high))
    return NoiseLevel(estimate_noise(pic.rgb[..., 0] if pic.grey else pic.rgb) * 255.0)


def denoise_picture(net: RestorationNet, pic: Picture, sigma: float | None,
                    options: InferenceOptions = InferenceOptions(),
                    on_tile: Callable[[int, int], None] | None = None,
                    report_level: bool = True) -> tuple[Picture, NoiseLevel | None]:
    """(denoised picture, the level used): `sigma` if given; else a blind denoiser runs on its
    own per-pixel map and any other on the estimated level. A blind run's map costs one more pass
    of its estimator to report: None unless `report_level`."""
    if not net.config.takes_level:
        if sigma is not None:
            raise SrnlError("this model takes no noise level: leave sigma out", option="sigma")
        return restore_picture(net, pic, None, options, on_tile), None
    if sigma is not None:
        level = NoiseLevel(check_sigma(sigma), given=True)
        return restore_picture(net, pic, level.mean, options, on_tile), level
    if not net.config.blind:
        level = noise_level(net, pic, options)
        return restore_picture(net, pic, level.mean, options, on_tile), level
    level = noise_level(net, pic, options) if report_level else None
    return restore_picture(net, pic, None, options, on_tile), level


def _picture(image: ImageLike) -> Picture:
    if isinstance(image, Image.Image):
        return picture_from_pil(image)
    if isinstance(image, np.ndarray):
        return picture_from_array(image)
    raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")


def _like(pic: Picture, image: ImageLike) -> ImageLike:
    return picture_to_pil(pic) if isinstance(image, Image.Image) else picture_to_array(pic)


def upscale(image: ImageLike, scale: float | None = None, model: ModelLike = None, *,
            width: int | None = None, height: int | None = None,
            tile: int | str = "auto", tile_overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False, device: str = "cpu",
            memory_budget: float = DEFAULT_MEMORY_BUDGET,
            on_tile: Callable[[int, int], None] | None = None) -> ImageLike:
    """Super-resolve `image` and return it the way it came.

    image: a PIL image (any mode Pillow reads; returned as a PIL image of the same mode) or a
        uint8/uint16 numpy array (H, W), (H, W, 1-4) (returned as an array of the same dtype).
        Alpha is resized with bicubic, greyscale stays greyscale, EXIF orientation is applied.
    scale: any factor above 1 and up to 4 (2, 3 and 4 run a model as it is; 1.5 runs x2 and
        shrinks its output with Lanczos); None means the model's own scale (x2 for the default).
    width, height: the output size instead of a scale (one alone keeps the aspect ratio).
        A given model serves any factor up to its own scale (x4 for 2.5x, shrunk with Lanczos).
    model: a shipped name (`srnl.PRETRAINED`: "photo-x2"... for photos as they are, JPEG and
        noise included; "x2", "x3", "x4" for the benchmark protocol's clean bicubic LR), a
        checkpoint file, a network from `load_model`, or None for the default of `scale`.
    tile: "auto" (tile only when over `memory_budget` bytes), 0 (never) or the side of square
        input tiles; tile_overlap: their overlap in input pixels.
    self_ensemble: average the 8 flips/transposes (slower by 8x, a little better).
    device: "cpu", "cuda" or "cuda:N". on_tile(done, total) is called after each tile.

    Raises SrnlError for a wrong model, array type or mode, or an animated/multi-frame image.
    Safe to call from several threads.
    """
    options = InferenceOptions(tile, tile_overlap, self_ensemble, memory_budget)
    out, _, _ = upscale_picture(_picture(image), model, scale, width, height, device, options,
                             on_tile)
    return _like(out, image)


def denoise(image: ImageLike, sigma: float | None = None, model: ModelLike = None, *,
            tile: int | str = "auto", tile_overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False, device: str = "cpu",
            memory_budget: float = DEFAULT_MEMORY_BUDGET,
            on_tile: Callable[[int, int], None] | None = None) -> ImageLike:
    """Remove noise (camera noise, JPEG artefacts, Gaussian noise) from `image` and return it the
    way it came.

    image: a PIL image or a uint8/uint16 numpy array, as for `upscale`.
    sigma: the noise standard deviation in 0-255 units relative to full scale (also for 16-bit
        images: 25 means 25/255 of the range), finite, from 0 to 255; None leaves it to the model:
        the shipped blind denoiser estimates a per-pixel level (real camera noise, JPEG
        artefacts), a non-blind one the wavelet estimate of white noise. (The raw network from
        `load_model("denoise")` takes sigma in [0, 1] units instead: `net(x, 25 / 255)`.)
    model: a shipped denoiser ("denoise", the default, blind; "denoise-gaussian", white noise of a
        given sigma), a denoising checkpoint file, a loaded network, or None for the default.
    tile, tile_overlap, self_ensemble, device, memory_budget, on_tile: as for `upscale`.

    Raises SrnlError for a bad sigma, a wrong model, array type or mode.
    """
    net = resolve_model(model, "denoise", 1, device)
    options = InferenceOptions(tile, tile_overlap, self_ensemble, memory_budget)
    out, _ = denoise_picture(net, _picture(image), sigma, options, on_tile, report_level=False)
    return _like(out, image)
