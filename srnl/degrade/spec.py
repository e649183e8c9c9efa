"""What a degradation is: the ranges and probabilities of each stage of the chain, and the named
presets of srnl/recipes/degradations.toml. No torch here: a training configuration (and the
`srnl train --help` that shows its defaults) is read without it."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from PIL import Image

from ..errors import SrnlError

PRESETS_FILE = Path(__file__).parent.parent / "recipes" / "degradations.toml"
RESAMPLING = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "area": Image.BOX,
              "lanczos": Image.LANCZOS}
# Downscales with no prefilter, as thumbnailers and naive code make them: every n-th pixel from some
# offset ("nearest"), or the two neighbours of each sample point ("bilinear-aliased", OpenCV's and
# torch's default bilinear). Both fold fine detail into false patterns the model must not amplify.
ALIASED = ("nearest", "bilinear-aliased")

Range = tuple[float, float]
# The stages a `Degradation` may draw, each with its `<stage>_prob`.
STAGES = ("blur", "jitter", "noise", "poisson", "camera", "isp", "jpeg", "second")


@dataclass(frozen=True)
class Degradation:
    """Ranges and probabilities of every stage. Blur and noise-correlation widths are in LR pixels
    (at HR the kernel is `scale` times wider), noise levels in 0-255 units."""
    name: str = "bicubic"
    clean_prob: float = 0.0          # skip the chain: the protocol's plain bicubic LR
    blur_prob: float = 0.0
    blur_sigma: Range = (0.2, 0.8)
    blur_aniso_prob: float = 0.5     # two widths and a rotation instead of one width
    blur_beta: Range = (1.0, 1.0)    # generalised-Gaussian exponent (1: Gaussian)
    blur_plateau_prob: float = 0.0   # plateau kernel 1 / (1 + r^(2 beta)) instead
    resize: tuple[str, ...] = ("bicubic",)
    # An aliased draw samples where numpy slicing, OpenCV and torch do with this probability, else
    # at a random phase: no model can tell the phase from the image, and at random phases alone it
    # learns to blur.
    tool_phase_prob: float = 0.0
    jitter_prob: float = 0.0         # resample through an intermediate size first
    jitter: Range = (0.8, 1.25)      # that size relative to the LR
    noise_prob: float = 0.0          # white Gaussian noise
    noise_sigma: Range = (1.0, 15.0)
    noise_grey_prob: float = 0.4     # the same noise on every channel
    poisson_prob: float = 0.0        # shot noise
    poisson_peak: Range = (200.0, 5000.0)  # photons at white, drawn log-uniform
    camera_prob: float = 0.0         # correlated, chroma-heavy noise as demosaicing leaves it
    camera_sigma: Range = (1.0, 8.0)  # its luma std
    camera_chroma: Range = (1.0, 2.0)  # chroma std relative to luma
    camera_width: Range = (0.4, 1.2)  # correlation width
    isp_prob: float = 0.0            # shot and read noise through a camera pipeline (camera.py)
    isp_shot: Range = (1e-4, 1e-2)   # its shot-noise variance per unit signal, log-uniform
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    second_prob: float = 0.0         # a second pass of blur, noise and JPEG at LR size
    # Denoising only: this share of inputs gets the benchmark's unclipped float Gaussian noise
    # instead of the chain, with sigma from the training sigma range.
    awgn_prob: float = 0.0
    # Denoising only: this share gets 8-bit white Gaussian noise alone (rounded and clipped, as
    # files carry it), its level given, with sigma from the training sigma range.
    clipped_prob: float = 0.0

    def __post_init__(self):
        unknown = sorted(set(self.resize) - set(RESAMPLING) - set(ALIASED))
        if unknown or not self.resize:
            raise SrnlError(f"degradation {self.name!r}: resize methods must be among "
                            f"{', '.join([*RESAMPLING, *ALIASED])}, got {list(self.resize)}")
        if self.awgn_prob + self.clipped_prob > 1:
            raise SrnlError(f"degradation {self.name!r}: awgn_prob + clipped_prob must be at most 1")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0 <= value <= 1:
                raise SrnlError(f"degradation {self.name!r}: {f.name} must be in [0, 1]")
            if isinstance(value, tuple) and f.name != "resize" and not 0 < value[0] <= value[1]:
                raise SrnlError(f"degradation {self.name!r}: {f.name} must be a range lo <= hi "
                                f"of positive numbers, got {list(value)}")

    @property
    def is_bicubic(self) -> bool:
        """Nothing but the protocol's bicubic downscale."""
        return self.resize == ("bicubic",) and not any(
            getattr(self, f"{stage}_prob") for stage in STAGES)

    def to_dict(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Degradation":
        """A preset's table; `preset = NAME` starts from that preset and overrides its fields."""
        d = dict(d)
        base = load_preset(d.pop("preset")).to_dict() if "preset" in d else {}
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise SrnlError(f"unknown degradation options: {', '.join(unknown)}")
        merged = {**base, **d}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()})


def presets() -> dict:
    """Every preset's table, by name."""
    return tomllib.loads(PRESETS_FILE.read_text())


def preset_names() -> list[str]:
    return list(presets())


def load_preset(name: str) -> Degradation:
    tables = presets()
    if name not in tables:
        raise SrnlError(f"no degradation preset {name!r} (presets: {', '.join(tables)})")
    return Degradation.from_dict({"name": name, **tables[name]})
