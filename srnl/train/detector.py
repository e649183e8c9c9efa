"""Training the aliasing detector (srnl/models/aliasing.py) on patches of the training images,
each shrunk x2, x3 or x4 by the photo models' chain with either aliased downscales only (every
n-th pixel or bilinear without prefilter, 70% at the common tools' phase) or prefiltered ones only,
then blurred, noised and JPEG-saved as that chain does. A patch is labelled by what its draw did:
the chain's clean share is a bicubic downscale even among the aliased draws."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..datasets import load_rgb
from ..degrade import apply_plan, draw_plan, load_preset
from ..degrade.chain import Subsample
from ..degrade.spec import ALIASED, RESAMPLING
from ..errors import SrnlError
from ..models.aliasing import AliasingDetector, DetectorConfig, detector_payload
from .data import gather_pairs

SCALES = (2, 3, 4)


def chain_draws() -> tuple:
    """(aliased, prefiltered) degradations: the photo preset with only those downscales."""
    photo = load_preset("photo")
    return (dataclasses.replace(photo, resize=ALIASED, tool_phase_prob=0.7),
            dataclasses.replace(photo, resize=tuple(RESAMPLING)))


def make_patches(images: list[np.ndarray], count: int, patch: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(count, patch, patch, 3) uint8 inputs and their labels (1: aliased)."""
    aliased, prefiltered = chain_draws()
    usable = [(img, s) for img in images for s in SCALES if min(img.shape[:2]) >= patch * s]
    if not usable:
        raise SrnlError(f"no training image has a side of {patch * max(SCALES)} pixels")
    xs = np.empty((count, patch, patch, 3), np.uint8)
    ys = np.empty(count, np.float32)
    for k in range(count):
        img, scale = usable[rng.integers(len(usable))]
        side = patch * scale
        y, x = (int(rng.integers(n - side + 1)) for n in img.shape[:2])
        plan = draw_plan(aliased if rng.random() < 0.5 else prefiltered, (side, side), scale, rng)
        xs[k] = apply_plan(plan, np.ascontiguousarray(img[y:y + side, x:x + side]))
        ys[k] = any(isinstance(stage, Subsample) for stage in plan)
    return xs, ys


def train_detector(data: list[str], out: str | Path, patches: int = 24000, patch: int = 64,
                   epochs: int = 6, features: int = 24, threshold: float = 0.0, seed: int = 0,
                   on_epoch: Callable[[int, float], None] | None = None) -> dict:
    """Train on `patches` patches of the images in `data`, 15% of them held out for the
    accuracy reported per epoch (`on_epoch(epoch, accuracy)`); write the detector to `out` and
    return its metadata."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = [load_rgb(pair.hr) for pair in gather_pairs(data, None)]
    xs, ys = make_patches(images, patches, patch, rng)
    x = torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(ys)
    held = max(1, patches * 15 // 100)
    train_x, train_y, val_x, val_y = x[held:], y[held:], x[:held], y[:held]
    model = AliasingDetector(DetectorConfig(features, threshold))
    optimiser = torch.optim.Adam(model.parameters(), 2e-3)
    # Unweighted, though only a third of the patches are aliased: a false alarm costs a
    # prefiltered photo its JPEG and noise gains, so the threshold of 0 leans the other way (the
    # shipped detector sends 2 and 3 of the 128 non-aliased held-out inputs at x2 and x4 to the
    # aliased model, and misses 3 of the 16 held-out photos taken every 2nd pixel).
    loss_fn = nn.BCEWithLogitsLoss()
    accuracy = 0.0
    for epoch in range(epochs):
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            # A quarter turn at random: aliasing has no preferred direction.
            turns = int(torch.randint(4, ()))
            loss = loss_fn(model(torch.rot90(train_x[batch], turns, (2, 3))), train_y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            accuracy = float(((model(val_x) > threshold).float() == val_y).float().mean())
        if on_epoch:
            on_epoch(epoch + 1, accuracy)
    meta = {"data": ", ".join(map(str, data)), "patches": patches, "patch": patch,
            "epochs": epochs, "seed": seed, "val_accuracy": accuracy}
    with atomic_path(out) as tmp:
        torch.save(detector_payload(model.eval(), meta), tmp)
    return meta
