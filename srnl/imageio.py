"""Images in every mode Pillow reads, as float RGB for the network plus what is needed to give
them back the way they came: greyscale stays greyscale, alpha is carried, 16-bit stays 16-bit."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import SrnlError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
# Formats whose Pillow writers accept an ICC profile.
ICC_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
EXTENSION_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                     ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


@dataclass
class Picture:
    """rgb: (H, W, 3) float32 in [0, 1]; alpha: (H, W) float32 in [0, 1] or None."""
    rgb: np.ndarray
    alpha: np.ndarray | None = None
    grey: bool = False
    bits: int = 8
    icc_profile: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _from_uint(a: np.ndarray, bits: int) -> np.ndarray:
    return a.astype(np.float32) / (2**bits - 1)


def _to_uint(a: np.ndarray, bits: int) -> np.ndarray:
    top = 2**bits - 1
    return np.clip(np.rint(a * top), 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def picture_from_array(a: np.ndarray) -> Picture:
    """uint8 or uint16 array: (H, W) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB, (H, W, 4) RGBA."""
    if a.dtype not in (np.uint8, np.uint16):
        raise SrnlError(f"arrays must be uint8 or uint16, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise SrnlError(f"arrays must be (H, W) or (H, W, 1-4), got shape {a.shape}")
    bits = 8 if a.dtype == np.uint8 else 16
    f = _from_uint(a, bits)
    grey = a.shape[2] <= 2
    rgb = np.repeat(f[..., :1], 3, axis=2) if grey else np.ascontiguousarray(f[..., :3])
    alpha = f[..., -1] if a.shape[2] in (2, 4) else None
    return Picture(rgb, alpha, grey=grey, bits=bits)


def picture_to_array(p: Picture) -> np.ndarray:
    colour = p.rgb.mean(axis=2) if p.grey else p.rgb
    out = _to_uint(colour, p.bits)
    return out if p.alpha is None else np.dstack([out, _to_uint(p.alpha, p.bits)])


def picture_from_pil(im: Image.Image) -> Picture:
    im = ImageOps.exif_transpose(im)
    icc = im.info.get("icc_profile")
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow opens 16-bit greyscale PNG/TIFF as I;16 or I (32-bit int).
        a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
        pic = picture_from_array(a)
    elif mode == "F":
        pic = picture_from_array(np.clip(np.rint(np.asarray(im)), 0, 255).astype(np.uint8))
    else:
        if mode in ("P", "PA"):
            im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
        elif mode == "1":
            im = im.convert("L")
        elif mode in ("La",):
            im = im.convert("LA")
        elif mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
        pic = picture_from_array(np.asarray(im))
    pic.icc_profile = icc
    return pic


def picture_to_pil(p: Picture) -> Image.Image:
    a = picture_to_array(p)
    if p.bits == 16:
        if not p.grey:
            raise SrnlError("16-bit colour images can be returned as arrays only (Pillow cannot hold them)")
        im = Image.fromarray(a[..., 0] if a.ndim == 3 else a)
    else:
        im = Image.fromarray(a)
    if p.icc_profile:
        im.info["icc_profile"] = p.icc_profile
    return im


def read_picture(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    path = Path(path)
    if not path.is_file():
        raise SrnlError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise SrnlError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if max_pixels and w * h > max_pixels:
                    raise SrnlError(f"{path}: {w}x{h} is over the {max_pixels}-pixel limit "
                                    "(decompression bomb guard; raise it with --max-pixels)")
                im.load()
                return picture_from_pil(im)
    except Image.DecompressionBombError:
        raise SrnlError(f"{path}: over Pillow's decompression bomb limit "
                        "(raise it with --max-pixels)") from None
    except UnidentifiedImageError:
        raise SrnlError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise SrnlError(f"{path}: corrupt or truncated image ({e})") from None


def write_picture(p: Picture, path: str | os.PathLike, quality: int = 95) -> None:
    """Write atomically; the format follows the extension. JPEG drops alpha and 16-bit depth."""
    path = Path(path)
    fmt = EXTENSION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SrnlError(f"{path}: unsupported output extension {path.suffix!r} "
                        f"(use one of {', '.join(sorted(EXTENSION_FORMATS))})")
    if fmt in ("JPEG", "BMP"):
        p = replace(p, alpha=None, bits=8) if fmt == "JPEG" else replace(p, bits=8)
    if fmt == "WEBP":
        p = replace(p, bits=8)
    im = picture_to_pil(p)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if p.icc_profile and fmt in ICC_FORMATS:
        options["icc_profile"] = p.icc_profile
    try:
        with atomic_path(path) as tmp:
            im.save(tmp, format=fmt, **options)
    except OSError as e:
        raise SrnlError(f"{path}: cannot write ({e.strerror or e})") from None
