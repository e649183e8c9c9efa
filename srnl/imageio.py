"""Images in every mode Pillow reads, as float RGB for the network plus what is needed to give
them back the way they came: greyscale stays greyscale, alpha is carried, 16-bit stays 16-bit, and
the ICC profile, EXIF and resolution travel to outputs whose format holds them."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import SrnlError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
# Formats whose Pillow writers accept an ICC profile.
ICC_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
EXIF_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
DPI_FORMATS = {"PNG", "JPEG", "TIFF", "BMP"}
ORIENTATION = 0x0112
# TIFF tags that describe how the source file's pixels are stored, not the picture: carried into
# another file they would contradict it (a TIFF writer fails on a stale StripOffsets). Resolution
# and the ICC profile are carried separately.
_STORAGE_TAGS = {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 282,
                 283, 284, 296, 317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513,
                 514, 529, 530, 531, 532, 34675, 37724}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm",
                  ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".ico", ".dib", ".pcx", ".sgi"}
EXTENSION_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                     ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


@dataclass
class Picture:
    """rgb: (H, W, 3) float32 in [0, 1], or once restored the integers a file of `bits` holds
    (uint8 or uint16: a big output never exists as floats); alpha: (H, W), the same way, or None."""
    rgb: np.ndarray
    alpha: np.ndarray | None = None
    grey: bool = False
    bits: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None  # the orientation, already applied to the pixels, reset to 1
    dpi: tuple[float, float] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _from_uint(a: np.ndarray, bits: int) -> np.ndarray:
    # One float32 array, not a float copy and then its quotient.
    return np.divide(a, 2**bits - 1, dtype=np.float32)


def to_uint(a: np.ndarray, bits: int) -> np.ndarray:
    if a.dtype.kind == "u":
        return a
    top = 2**bits - 1
    return np.clip(np.rint(a * top), 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def as_float(a: np.ndarray, bits: int) -> np.ndarray:
    """A picture's channel(s) as float32 in [0, 1], whichever way it holds them."""
    return _from_uint(a, bits) if a.dtype.kind == "u" else a


def _grey(rgb: np.ndarray, bits: int) -> np.ndarray:
    """The mean of the three channels as `bits` integers, a band of rows at a time so that a big
    picture never has a float copy."""
    out = np.empty(rgb.shape[:2], np.uint8 if bits == 8 else np.uint16)
    for r in range(0, rgb.shape[0], 256):
        out[r:r + 256] = to_uint(as_float(rgb[r:r + 256], bits).mean(axis=2), bits)
    return out


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
    out = _grey(p.rgb, p.bits) if p.grey else to_uint(p.rgb, p.bits)
    return out if p.alpha is None else np.dstack([out, to_uint(p.alpha, p.bits)])


def output_extension(ext: str) -> str:
    """A format name as given (png, .JPG, tif) -> its extension ('.png', '.jpg', '.tif')."""
    suffix = "." + ext.lstrip(".").lower()
    if suffix not in EXTENSION_FORMATS:
        raise SrnlError(f"unsupported output format {ext!r} (use one of "
                        f"{', '.join(e.lstrip('.') for e in EXTENSION_FORMATS)})")
    return suffix


def _check_single_frame(im: Image.Image, name: str = "image") -> None:
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise SrnlError(f"{name}: animated/multi-frame images are not supported: {frames} frames")


def _carried_exif(im: Image.Image) -> bytes | None:
    try:
        exif = Image.Exif()
        exif.load(im.getexif().tobytes())  # a copy: exif_transpose still reads the image's own
        for tag in _STORAGE_TAGS & set(exif):
            del exif[tag]
        if not exif:
            return None
        if ORIENTATION in exif:
            exif[ORIENTATION] = 1
        return exif.tobytes()
    except Exception:  # noqa: BLE001  Pillow raises many types for malformed EXIF
        return None  # metadata Pillow cannot rewrite must not cost the image itself


def picture_from_pil(im: Image.Image) -> Picture:
    _check_single_frame(im)
    exif, dpi = _carried_exif(im), im.info.get("dpi")
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
    pic.exif = exif
    pic.dpi = tuple(map(float, dpi)) if dpi else None
    return pic


def picture_to_pil(p: Picture) -> Image.Image:
    if p.bits == 16:
        if not p.grey:
            raise SrnlError("16-bit colour images can be returned as arrays only (Pillow cannot hold them)")
        a = picture_to_array(p)
        im = Image.fromarray(a[..., 0] if a.ndim == 3 else a)
    else:
        # Alpha joins as a band of its own: stacking it onto the colour first would copy the
        # whole picture once more.
        im = Image.fromarray(_grey(p.rgb, 8) if p.grey else to_uint(p.rgb, 8))
        if p.alpha is not None:
            im.putalpha(Image.fromarray(to_uint(p.alpha, 8)))
    if p.icc_profile:
        im.info["icc_profile"] = p.icc_profile
    if p.exif:
        im.info["exif"] = p.exif
    if p.dpi:
        im.info["dpi"] = p.dpi
    return im


def read_picture(path: str | os.PathLike | BinaryIO, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 name: str | None = None) -> Picture:
    """A file, or a seekable binary stream (`name` then labels it in errors)."""
    stream = hasattr(path, "read")
    label = name or ("image" if stream else str(path))
    if not stream:
        path = Path(path)
        if not path.is_file():
            raise SrnlError(f"{label}: no such file")
        if path.stat().st_size == 0:
            raise SrnlError(f"{label}: empty file")
    elif not path.read(1):
        raise SrnlError(f"{label}: empty input")
    else:
        path.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if max_pixels and w * h > max_pixels:
                    raise SrnlError(f"{label}: {w}x{h} is over the {max_pixels}-pixel limit "
                                    "(decompression bomb guard)", option="max_pixels")
                _check_single_frame(im, label)
                im.load()
                return picture_from_pil(im)
    except Image.DecompressionBombError:
        raise SrnlError(f"{label}: over Pillow's decompression bomb limit",
                        option="max_pixels") from None
    except UnidentifiedImageError:
        raise SrnlError(f"{label}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise SrnlError(f"{label}: corrupt or truncated image ({e})") from None


def _encoded(p: Picture, fmt: str, quality: int) -> tuple[Image.Image, dict]:
    """The Pillow image and save options for `fmt`: what the format cannot hold is dropped."""
    if fmt in ("JPEG", "BMP"):
        p = replace(p, alpha=None, bits=8) if fmt == "JPEG" else replace(p, bits=8)
    if fmt == "WEBP":
        p = replace(p, bits=8)
    im = picture_to_pil(p)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "JPEG":
        # Pillow's default 4:2:0 halves the chroma resolution that a restoration just recovered.
        options["subsampling"] = 0
    if p.icc_profile and fmt in ICC_FORMATS:
        options["icc_profile"] = p.icc_profile
    if p.exif and fmt in EXIF_FORMATS:
        options["exif"] = p.exif
    if p.dpi and fmt in DPI_FORMATS:
        options["dpi"] = p.dpi
    return im, options


def write_picture(p: Picture, path: str | os.PathLike, quality: int = 95) -> None:
    """Write atomically; the format follows the extension. JPEG drops alpha and 16-bit depth."""
    path = Path(path)
    fmt = EXTENSION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SrnlError(f"{path}: unsupported output extension {path.suffix!r} "
                        f"(use one of {', '.join(sorted(EXTENSION_FORMATS))})")
    im, options = _encoded(p, fmt, quality)
    try:
        with atomic_path(path) as tmp:
            im.save(tmp, format=fmt, **options)
    except OSError as e:
        raise SrnlError(f"{path}: cannot write ({e.strerror or e})") from None


def write_picture_to(p: Picture, stream: BinaryIO, ext: str = ".png", quality: int = 95) -> None:
    """Encode into a binary stream (a pipe, a buffer) in the format of extension `ext`."""
    fmt = EXTENSION_FORMATS[output_extension(ext)]
    im, options = _encoded(p, fmt, quality)
    im.save(stream, format=fmt, **options)


def find_images(folder: Path, recursive: bool, exclude: Path | None = None) -> list[Path]:
    """Image files in `folder` (and below, if `recursive`), leaving out the folder `exclude`."""
    pattern = "**/*" if recursive else "*"
    found = (p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if exclude is not None:
        exclude = exclude.resolve()
        found = (p for p in found if not p.resolve().is_relative_to(exclude))
    return sorted(found)
