"""Finding HR (and provided LR) images in the layouts people have: DIV2K, EDSR-style benchmark
folders, plain (nested) folders of any format Pillow reads, and list files naming images."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .imageio import IMAGE_SUFFIXES, find_images
from .degrade import bicubic_downscale, modcrop
from .errors import SrnlError


@dataclass
class Pair:
    hr: Path
    lr: Path | None = None  # a provided LR image (DIV2K / EDSR layouts), if there is one


def _with_lr(hr_files: list[Path], lr_dir: Path, scale: int | None) -> list[Pair]:
    pairs = []
    for hr in hr_files:
        lr = lr_dir / f"{hr.stem}x{scale}.png" if scale else None
        pairs.append(Pair(hr, lr if lr is not None and lr.is_file() else None))
    return pairs


def read_list(path: Path) -> list[Path]:
    """A .txt file naming one image per line, relative to the file's folder ('#' starts a comment):
    a split of a folder without copying it."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    files = [path.parent / line for line in lines if line]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SrnlError(f"{path}: {len(missing)} listed images missing, e.g. {missing[0]}")
    return files


def discover(root: str | Path, scale: int | None = None, split: str = "train") -> list[Pair]:
    """HR images under `root` (a folder, a .txt list of images, or one image), with the provided
    x`scale` LR where the layout has one. `split` picks DIV2K's train or valid half when `root` holds both."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".txt":
        return [Pair(p) for p in read_list(root)]
    if root.is_file() and root.suffix.lower() in IMAGE_SUFFIXES:
        return [Pair(root)]
    if not root.is_dir():
        raise SrnlError(f"{root}: no such folder (nor image list or image)")
    div2k_hr = root / f"DIV2K_{split}_HR"
    if div2k_hr.is_dir():
        return _with_lr(find_images(div2k_hr, False),
                        root / f"DIV2K_{split}_LR_bicubic" / f"X{scale}", scale)
    if root.name.startswith("DIV2K_") and root.name.endswith("_HR"):
        lr_dir = root.parent / root.name.replace("_HR", "_LR_bicubic") / f"X{scale}"
        return _with_lr(find_images(root, False), lr_dir, scale)
    if (root / "HR").is_dir():
        return _with_lr(find_images(root / "HR", True), root / "LR_bicubic" / f"X{scale}", scale)
    return [Pair(p) for p in find_images(root, True)]


def load_rgb(path: Path) -> np.ndarray:
    """uint8 (H, W, 3); greyscale and palette images become 3-channel. Raises SrnlError."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise SrnlError(f"{path}: unreadable image ({type(e).__name__})") from None


def load_sr_pair(pair: Pair, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR modcropped, LR): the provided LR if it matches the HR, else Pillow bicubic."""
    hr = modcrop(load_rgb(pair.hr), scale)
    if pair.lr is not None:
        lr = load_rgb(pair.lr)
        if lr.shape[0] * scale == hr.shape[0] and lr.shape[1] * scale == hr.shape[1]:
            return hr, lr
    return hr, bicubic_downscale(hr, scale)
