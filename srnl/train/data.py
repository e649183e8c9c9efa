"""Training patches. Every image is decoded once and kept (uint8, in memory or memory-mapped);
the batch for step t depends only on (seed, rank, t), so prefetching workers and resumed runs
draw exactly the batches an uninterrupted run would."""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..datasets import Pair, discover, load_rgb, load_sr_pair
from ..degrade import Degradation, apply_plan, degrade, draw_plan, known_sigma, modcrop
from ..degrade.chain import to_uint8
from ..errors import SrnlError

log = logging.getLogger("srnl.train")


@dataclass
class ImageSet:
    hr: list[np.ndarray]
    lr: list[np.ndarray]     # SR: aligned LR of each HR; empty where inputs are made per patch
    names: list[str]
    skipped: list[str]       # unreadable files


def _cached(path: Path, cache_dir: Path | None, tag: str, load):
    if cache_dir is None:
        return load()
    key = hashlib.sha1(f"{path.resolve()}:{path.stat().st_mtime_ns}:{tag}".encode()).hexdigest()
    file = cache_dir / f"{key}.npy"
    if not file.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(file, load())
    return np.load(file, mmap_mode="r")


def gather_pairs(roots, scale: int | None, split: str = "train") -> list[Pair]:
    pairs = []
    for root in roots:
        found = discover(root, scale, split)
        if not found:
            raise SrnlError(f"{root}: no images found")
        pairs += found
    return pairs


def load_images(pairs: list[Pair], task: str, scale: int, min_side: int,
                cache_dir: str | None = None, fixed: Degradation | None = None,
                hr_only: bool = False) -> ImageSet:
    """Decode every image once. SR keeps the provided or bicubic LR beside each HR, unless
    `hr_only` (training inputs made per patch by a degradation chain); with `fixed` (validation)
    every image's input is made once by that degradation, seeded by its index. Unreadable files
    are skipped and listed; images too small for a patch are dropped; no usable image at all is
    an error."""
    cache = Path(cache_dir) if cache_dir else None
    images = ImageSet([], [], [], [])
    for index, pair in enumerate(pairs):
        try:
            if fixed is not None:
                hr = modcrop(load_rgb(pair.hr), scale)
                lr = degrade(hr, scale, fixed, np.random.default_rng([index]))
            elif task == "sr" and hr_only:
                hr = _cached(pair.hr, cache, f"hr{scale}",
                             lambda: modcrop(load_rgb(pair.hr), scale))
            elif task == "sr":
                hr, lr = load_sr_pair(pair, scale)
                lr = _cached(pair.hr, cache, f"lr{scale}", lambda: lr)
                hr = _cached(pair.hr, cache, f"hr{scale}", lambda: hr)
            else:
                hr = _cached(pair.hr, cache, "rgb", lambda: load_rgb(pair.hr))
        except SrnlError as e:
            images.skipped.append(str(pair.hr))
            log.warning("skipped %s", e)
            continue
        if min(hr.shape[:2]) < min_side:
            continue
        images.hr.append(hr)
        if (task == "sr" and not hr_only) or fixed is not None:
            images.lr.append(lr)
        images.names.append(str(pair.hr))
    if not images.hr:
        raise SrnlError(f"no usable training image: {len(pairs)} found, {len(images.skipped)} "
                        f"unreadable, the rest smaller than the {min_side}-pixel patch")
    return images


def split_holdout(pairs: list[Pair], n: int) -> tuple[list[Pair], list[Pair]]:
    """Every k-th image (sorted by path) out for validation: deterministic and spread over sources."""
    if n <= 0:
        return pairs, []
    pairs = sorted(pairs, key=lambda p: str(p.hr))
    step = max(1, len(pairs) // n)
    held = set(range(step // 2, len(pairs), step)[:n])
    return ([p for i, p in enumerate(pairs) if i not in held],
            [p for i, p in enumerate(pairs) if i in held])


def _augment(patch: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/transposes of the dihedral group."""
    if code & 4:
        patch = patch.transpose(1, 0, 2)
    if code & 2:
        patch = patch[::-1]
    if code & 1:
        patch = patch[:, ::-1]
    return patch


class PatchBatches(torch.utils.data.Dataset):
    """Item t is the whole batch of step t: (input, target, sigma) float tensors in [0, 1]. With a
    `degradation`, each input is made from its clean patch by that chain, drawn from the same
    (seed, rank, t) as the crops."""

    def __init__(self, images: ImageSet, task: str, scale: int, patch: int, batch: int,
                 seed: int, rank: int = 0, sigma_range: tuple[float, float] = (0.0, 55.0),
                 steps: int = 10**9, degradation: Degradation | None = None,
                 by_area: bool = False):
        self.images, self.task, self.scale = images, task, scale
        self.patch, self.batch, self.seed, self.rank = patch, batch, seed, rank
        self.sigma_range, self.steps, self.degradation = sigma_range, steps, degradation
        areas = [hr.shape[0] * hr.shape[1] for hr in images.hr]
        self.cumulative = np.cumsum(areas) / sum(areas) if by_area else None

    def _image(self, draw: int) -> int:
        """The image a uniform integer draw in [0, 2^31 - 1) picks."""
        if self.cumulative is None:
            return draw % len(self.images.hr)
        return int(np.searchsorted(self.cumulative, draw / (2**31 - 1), side="right"))

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        g = torch.Generator().manual_seed(hash((self.seed, self.rank, step)) & (2**63 - 1))
        draw = lambda n: torch.randint(0, 2**31 - 1, (n,), generator=g).tolist()
        which, ys, xs, codes = (draw(self.batch) for _ in range(4))
        inputs, targets = [], []
        p, s = self.patch, self.scale
        for i, y, x, code in zip(which, ys, xs, codes):
            i = self._image(i)
            hr = self.images.hr[i]
            if self.degradation is not None or self.task != "sr":
                y, x = y % (hr.shape[0] - p * s + 1), x % (hr.shape[1] - p * s + 1)
                targets.append(_augment(hr[y:y + p * s, x:x + p * s], code % 8))
            else:
                lr = self.images.lr[i]
                y, x = y % (lr.shape[0] - p + 1), x % (lr.shape[1] - p + 1)
                inputs.append(_augment(lr[y:y + p, x:x + p], code % 8))
                targets.append(_augment(hr[y * s:(y + p) * s, x * s:(x + p) * s], code % 8))
        target = _to_tensor(targets)
        if self.task == "denoise" and self.degradation is not None:
            return self._blind_batch(targets, target, step)
        if self.degradation is not None:
            rng = np.random.default_rng([self.seed, self.rank, step])
            inputs = [degrade(np.ascontiguousarray(t), s, self.degradation, rng) for t in targets]
        if self.task == "sr":
            return _to_tensor(inputs), target, torch.zeros(self.batch)
        lo, hi = self.sigma_range
        sigma = (lo + (hi - lo) * torch.rand(self.batch, generator=g)) / 255.0
        noise = torch.randn(target.shape, generator=g) * sigma[:, None, None, None]
        return target + noise, target, sigma

    def _blind_batch(self, targets: list[np.ndarray], target: torch.Tensor, step: int):
        """Denoising through the chain: sigma is the level where the damage has one (clean, white
        Gaussian noise, the benchmark's unclipped noise or 8-bit noise alone) and NaN where it has none (JPEG, camera
        noise), which a blind denoiser estimates itself."""
        rng = np.random.default_rng([self.seed, self.rank, step])
        lo, hi = self.sigma_range
        inputs, sigmas = [], []
        d = self.degradation
        for t in targets:
            # One draw picks the input's kind, so mixes without clipped noise keep their sequence.
            kind = rng.random()
            if kind < d.awgn_prob + d.clipped_prob:
                sigma = rng.uniform(lo, hi)
                noisy = t + rng.standard_normal(t.shape) * sigma
                inputs.append(noisy if kind < d.awgn_prob else to_uint8(noisy))
            else:
                plan = draw_plan(d, (t.shape[1], t.shape[0]), 1, rng)
                inputs.append(apply_plan(plan, np.ascontiguousarray(t)))
                sigma = known_sigma(plan)
            sigmas.append(math.nan if sigma is None else sigma / 255.0)
        return _to_tensor(inputs), target, torch.tensor(sigmas, dtype=torch.float32)


def _to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float().div_(255.0)
