"""The field's protocols (field guide section 1), shared by validation during training and `srnl eval`.

SR: modcrop, the provided LR or Pillow bicubic, quantised output, Y-PSNR/SSIM with shave = scale.
Denoising: seeded AWGN (unclipped unless asked), RGB PSNR/SSIM, no shave. Any other input is the
clean image through a seeded degradation chain. Nothing is random between runs: the noise of
image i at sigma s always comes from the same seed."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import Pair, discover, load_rgb, load_sr_pair
from ..degrade import add_noise, apply_plan, modcrop, named_plan
from ..errors import SrnlError
from ..metrics import rgb_scores, sr_scores

# scikit-image's SSIM with a Gaussian window of sigma 1.5 looks at 11 x 11 pixels.
SSIM_WINDOW = 11


@dataclass(frozen=True)
class Setting:
    """One degradation: x`scale` SR, or noise of `sigma` (0-255 units) for denoising; with
    `degradation` (a `named_plan` spec such as jpeg75 or photo), the input is the clean image
    through that seeded chain instead of the protocol's bicubic LR or Gaussian noise."""
    task: str
    scale: int = 1
    sigma: float | None = None
    clip: bool = False
    degradation: str | None = None

    @property
    def label(self) -> str:
        base = f"x{self.scale}" if self.task == "sr" else (
            f"σ{self.sigma:g}" if self.sigma is not None else "σ auto")
        return " ".join(filter(None, [base, self.degradation]))

    @property
    def slug(self) -> str:
        """The label as a file name: no spaces, no Greek."""
        return self.label.replace("σ", "sigma").replace(" ", "_")

    @property
    def shave(self) -> int:
        return self.scale if self.task == "sr" else 0


def noisy_version(clean: np.ndarray, sigma: float, index: int, clip: bool = False) -> np.ndarray:
    """The seeded noisy input for image `index` at `sigma`: the same for every method and run."""
    # Seeded by (index, sigma in thousandths): distinct for every image and every noise level.
    return add_noise(clean, sigma, seed=(index, round(sigma * 1000)), clip=clip)


def scores(output: np.ndarray, clean: np.ndarray, setting: Setting) -> tuple[float, float]:
    if setting.task == "sr":
        return sr_scores(output, clean, setting.scale)
    return rgb_scores(output, clean)


def load_sample(pair: Pair, setting: Setting, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean uint8, degraded input): the LR image for SR (provided or Pillow bicubic), the
    seeded noisy float image for denoising, or the setting's degradation chain. `index` seeds
    the noise and the chain."""
    if setting.degradation is not None:
        clean = modcrop(load_rgb(pair.hr), setting.scale)
        if min(clean.shape[:2]) < setting.scale:
            raise SrnlError(f"{pair.hr}: too small for x{setting.scale}")
        plan = named_plan(setting.degradation, (clean.shape[1], clean.shape[0]), setting.scale,
                          seed=index)
        degraded = apply_plan(plan, clean)
    elif setting.task == "sr":
        try:
            clean, degraded = load_sr_pair(pair, setting.scale)
        except ValueError:  # Pillow refuses a zero-sized LR
            raise SrnlError(f"{pair.hr}: too small for x{setting.scale}") from None
    else:
        clean = load_rgb(pair.hr)
        degraded = noisy_version(clean, setting.sigma, index, setting.clip)
    if min(clean.shape[:2]) - 2 * setting.shave < SSIM_WINDOW:
        raise SrnlError(f"{pair.hr}: {clean.shape[1]}x{clean.shape[0]} is too small to score "
                        f"(SSIM needs {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the shave)")
    return clean, degraded


def dataset_images(root: str | Path, setting: Setting,
                   limit: int | None = None) -> tuple[list[Pair], list[str]]:
    """The dataset's images (with provided LR for SR) and their names relative to the dataset."""
    root = Path(root)
    pairs = discover(root, setting.scale if setting.task == "sr" else None, split="valid")
    if not pairs:
        raise SrnlError(f"{root}: no images found")
    pairs = pairs[:limit]
    common = Path(os.path.commonpath([p.hr.parent for p in pairs]))
    return pairs, [p.hr.relative_to(common).with_suffix("").as_posix() for p in pairs]


def protocol(task: str, clip: bool = False) -> str:
    """How a task's numbers were measured, in one line, for every report that shows them."""
    if task == "sr":
        return ("SR: Y-PSNR/SSIM (ITU-R BT.601 Y in [16, 235]), shave = scale, output rounded "
                "to 8 bits; LR provided by the dataset or Pillow bicubic of the modcropped HR")
    return ("denoising: RGB PSNR/SSIM, no shave, seeded Gaussian noise "
            + ("clipped to [0, 255]" if clip else "not clipped")
            + "; outputs rounded to 8 bits, the noisy input scored as is")
