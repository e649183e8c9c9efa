"""Was this picture shrunk without a prefilter (every n-th pixel, or bilinear between two
neighbours: thumbnails, naive resizes)? A model trained for prefiltered input sharpens such a
picture's staircases and lands below bicubic; one trained for aliased input blurs real detail.
No single network of ours learnt to do both, so a tiny detector picks which one runs.

The detector reads the picture's high frequencies with three convs and keeps only the mean energy
of each feature over the whole picture: aliasing is a property of how the picture was made, not of
any one place in it, and a mean over tiles is the mean over the picture, so its cost and memory
are bounded on any size."""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import load_checkpoint

FORMAT = "srnl-aliasing-detector-v1"
DETECTOR_FILE = Path(__file__).parent / "weights" / "aliasing.pt"
# Tiles the verdict reads: at most TILES of TILE x TILE pixels, spread over the picture.
TILE = 256
TILES = 16


@dataclass(frozen=True)
class DetectorConfig:
    features: int = 24
    # The decision threshold on the logit, chosen at training time (see `train/detector.py`).
    threshold: float = 0.0


class AliasingDetector(nn.Module):
    def __init__(self, config: DetectorConfig = DetectorConfig()):
        super().__init__()
        self.config = config
        c = config.features
        self.features = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(c, c, 3, padding=1))
        self.read_out = nn.Linear(c, 1)

    def energies(self, x: Tensor) -> Tensor:
        """x: (B, 3, H, W) in [0, 1] -> (B, features): each feature's mean square."""
        # Brightness would swamp the energies: only what differs from the 3x3 mean is read,
        # scaled up from its few hundredths so that fresh convs start near unit energies.
        local_mean = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return self.features((x - local_mean) * 10).square().mean((2, 3))

    def logit(self, energies: Tensor) -> Tensor:
        return self.read_out(energies.add(1e-6).log())[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B,) logit that each image is aliased."""
        return self.logit(self.energies(x))


def detector_payload(model: AliasingDetector, meta: dict | None = None) -> dict:
    return {"format": FORMAT, "config": asdict(model.config), "model": model.state_dict(),
            "meta": meta or {}}


def load_detector(path: str | Path = DETECTOR_FILE) -> AliasingDetector:
    ckpt = load_checkpoint(path, FORMAT, "aliasing detector file")
    model = AliasingDetector(DetectorConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def shipped_detector() -> AliasingDetector:
    return load_detector()


def tile_origins(n: int, tile: int, count: int) -> list[int]:
    """Evenly spread starts of `tile`-long windows along a side of `n` pixels: as many as cover
    it, at most `count`."""
    count = min(count, -(-n // tile))
    if count == 1:
        return [0]
    return [round(k * (n - tile) / (count - 1)) for k in range(count)]


@torch.inference_mode()
def aliasing_logit(rgb: np.ndarray, detector: AliasingDetector | None = None) -> float:
    """(H, W, 3) float in [0, 1] or uint8 -> the detector's logit that the picture is aliased,
    read from at most TILES tiles of TILE pixels spread over it."""
    detector = detector or shipped_detector()
    # An 8-bit picture is turned to floats tile by tile, not copied whole for the few it reads.
    levels = 255 if rgb.dtype == np.uint8 else 1
    h, w = rgb.shape[:2]
    per_side = int(TILES ** 0.5)
    total, pixels = 0.0, 0
    for y in tile_origins(h, TILE, per_side):
        for x in tile_origins(w, TILE, per_side):
            tile = torch.from_numpy(np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE], np.float32))
            tile = tile / levels
            area = tile.shape[0] * tile.shape[1]
            total = total + detector.energies(tile.permute(2, 0, 1)[None])[0] * area
            pixels += area
    return float(detector.logit((total / pixels)[None])[0])


def looks_aliased(rgb: np.ndarray, detector: AliasingDetector | None = None) -> bool:
    detector = detector or shipped_detector()
    return aliasing_logit(rgb, detector) > detector.config.threshold
