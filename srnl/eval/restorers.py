"""Every restorer `srnl eval` and `srnl compare` can score: the classical baselines, one table of
them, and networks, each run on a degraded input by the setting it was made under."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
# Imported here, not on first use: scikit-image's restoration module pulls in scipy.stats (a
# second), which would otherwise land in the timing of the first image.
from skimage.restoration import denoise_nl_means

from ..degrade import bicubic_resize, estimate_noise
from ..infer import InferenceOptions, restore_image
from ..metrics import quantise, rgb_scores, sr_scores
from ..models.network import RestorationNet
from ..models.registry import for_input, shared_model
from .protocol import Setting, noisy_version


def run_network(net: RestorationNet, img: np.ndarray, sigma: float | None = None,
                options: InferenceOptions = InferenceOptions()) -> np.ndarray:
    """img in [0, 255] (H, W, 3), any float or uint8 -> quantised uint8 output."""
    return quantise(restore_image(net, np.asarray(img, np.float32) / 255.0, sigma, options))


def score_sr(net: RestorationNet, hr: np.ndarray, lr: np.ndarray) -> tuple[float, float]:
    return sr_scores(run_network(net, lr), hr, net.config.scale)


def score_denoise(net: RestorationNet, clean: np.ndarray, sigma: float,
                  index: int) -> tuple[float, float]:
    noisy = noisy_version(clean, sigma, index)
    return rgb_scores(run_network(net, noisy, sigma), clean)


def nlm(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Non-Local Means with scikit-image's example settings; sigma None estimates it from the
    image. noisy in [0, 255] (H, W, 3) -> quantised uint8."""
    noisy = np.asarray(noisy, np.float64)
    if sigma is None:
        sigma = estimate_noise(noisy)
    out = denoise_nl_means(noisy, patch_size=5, patch_distance=6, h=0.8 * sigma, sigma=sigma,
                           fast_mode=True, preserve_range=True, channel_axis=-1)
    return quantise(out / 255.0)


def _bicubic(degraded: np.ndarray, setting: Setting) -> np.ndarray:
    h, w = degraded.shape[:2]
    return bicubic_resize(degraded, (w * setting.scale, h * setting.scale))


@dataclass(frozen=True)
class Baseline:
    task: str
    run: Callable[[np.ndarray, Setting], np.ndarray]  # degraded in [0, 255] -> output in [0, 255]
    about: str


# The classical methods: adding one is adding a line here.
BASELINES = {
    "bicubic": Baseline("sr", _bicubic, "Pillow bicubic"),
    "nlm": Baseline("denoise", lambda x, s: nlm(x, s.sigma),
                    "scikit-image Non-Local Means given the true sigma"),
    "nlm-auto": Baseline("denoise", lambda x, s: nlm(x),
                         "scikit-image Non-Local Means, sigma from estimate_sigma"),
    "noisy": Baseline("denoise", lambda x, s: x, "the degraded input itself"),
}
# What each task's restorers are measured against, and shown beside them in comparisons.
REFERENCE_BASELINE = {"sr": "bicubic", "denoise": "noisy"}


@dataclass(frozen=True, eq=False)
class Method:
    """A restorer: a classical baseline (`net` None) or a network, named as the user gave it."""
    name: str
    net: RestorationNet | None = None
    device: str = "cpu"

    @property
    def task(self) -> str:
        return self.net.config.task if self.net is not None else BASELINES[self.name].task

    def tile_for(self, degraded: np.ndarray, options: InferenceOptions) -> int:
        """The tile side the network uses on this input (0: whole image); 0 for baselines."""
        return 0 if self.net is None else options.tile_for(self.net, *degraded.shape[:2])

    def run(self, degraded: np.ndarray, setting: Setting,
            options: InferenceOptions = InferenceOptions()) -> np.ndarray:
        """The restored image in [0, 255]: uint8, except `noisy`, which is the float input."""
        if self.net is None:
            return BASELINES[self.name].run(degraded, setting)
        if setting.task == "sr":
            # As `srnl upscale` does: a shipped model may hand the input to another one.
            routed = for_input(self.name, degraded)
            net = self.net if routed == self.name else shared_model(routed, self.device)
            return run_network(net, degraded, None, options)
        sigma = setting.sigma
        if sigma is None and not self.net.config.blind:
            sigma = estimate_noise(degraded)
        return run_network(self.net, degraded, sigma, options)


def load_method(name: str, device: str = "cpu") -> Method:
    """A baseline name, a shipped model name or a checkpoint file."""
    if name in BASELINES:
        return Method(name)
    return Method(name, shared_model(name, device), device)
