"""Shipped models, timm-style: one name -> one weights file inside the package and what it is for."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch

from ..errors import SrnlError
from .card import ModelCard
from .checkpoint import inference_weights, load_checkpoint, model_from_checkpoint
from .external import load_external
from .network import RestorationNet, inference_form

WEIGHTS_DIR = Path(__file__).parent / "weights"
ModelLike = Union[str, Path, RestorationNet, None]


@dataclass(frozen=True)
class Pretrained:
    name: str
    task: str
    scale: int
    file: str
    about: str  # what it is for, in a line
    # The training recipes (srnl/recipes) that made it, in order, each phase starting from the
    # weights the one before ended with: `srnl train --recipe NAME` runs them all.
    phases: tuple[str, ...] = ()
    # The shipped model that runs instead where the input looks aliased (models/aliasing.py).
    aliased: str | None = None

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


BENCHMARK = "the benchmark protocol (clean bicubic LR), for comparing with papers"
PHOTOS = "photos as they are: JPEG, noise, blur, any resampling (the default)"
ALIASED_ABOUT = ("photos shrunk without a prefilter (every n-th pixel, bilinear between two "
                 "pixels); photo-x{0} runs it by itself where the input looks so")
PHOTO_X2_PHASES = tuple(f"photo-x2-{k}" for k in range(1, 8))
PHOTO_X4_PHASES = tuple(f"photo-x4-{k}" for k in range(1, 4))
PRETRAINED = {p.name: p for p in [
    Pretrained("photo-x2", "sr", 2, "photo-x2.pt", PHOTOS, PHOTO_X2_PHASES,
               aliased="photo-x2-aliased"),
    # Each continues its photo model's phases (models/aliasing.py says why two networks).
    Pretrained("photo-x2-aliased", "sr", 2, "photo-x2-aliased.pt", ALIASED_ABOUT.format(2),
               (*PHOTO_X2_PHASES, "photo-x2-9", "photo-x2-aliased-1", "photo-x2-aliased-2",
                "photo-x2-aliased-3")),
    Pretrained("x2", "sr", 2, "x2.pt", BENCHMARK, ("x2",)),
    Pretrained("photo-x3", "sr", 3, "photo-x3.pt", PHOTOS, ("photo-x3",),
               aliased="photo-x3-aliased"),
    Pretrained("photo-x3-aliased", "sr", 3, "photo-x3-aliased.pt", ALIASED_ABOUT.format(3),
               ("photo-x3", "photo-x3-aliased-1")),
    Pretrained("x3", "sr", 3, "x3.pt", BENCHMARK, ("x3",)),
    Pretrained("photo-x4", "sr", 4, "photo-x4.pt", PHOTOS, PHOTO_X4_PHASES,
               aliased="photo-x4-aliased"),
    Pretrained("photo-x4-aliased", "sr", 4, "photo-x4-aliased.pt", ALIASED_ABOUT.format(4),
               (*PHOTO_X4_PHASES, "photo-x4-5", "photo-x4-aliased-1", "photo-x4-aliased-3")),
    Pretrained("x4", "sr", 4, "x4.pt", BENCHMARK, ("x4",)),
    Pretrained("denoise", "denoise", 1, "denoise.pt",
               "blind: camera noise, JPEG artefacts and white noise, the level estimated per "
               "pixel or given (the default)",
               ("denoise-blind", *(f"denoise-blind-{k}" for k in range(2, 8)))),
    Pretrained("denoise-gaussian", "denoise", 1, "denoise-gaussian.pt",
               "the benchmark protocol: white Gaussian noise of a given sigma",
               ("denoise-gaussian",)),
]}
# What `srnl upscale` / `srnl denoise` (and the Python API) run when no model is named.
DEFAULTS = {("sr", 2): "photo-x2", ("sr", 3): "photo-x3", ("sr", 4): "photo-x4",
            ("denoise", 1): "denoise"}


def default_model(task: str, scale: int = 1) -> str:
    if (task, scale) in DEFAULTS:
        return DEFAULTS[task, scale]
    what = f"x{scale} super-resolution" if task == "sr" else "denoising"
    raise SrnlError(f"no shipped model for {what}; name a model file", option="model")


def model_label(model: str | Path | None, task: str, scale: int) -> str:
    """How a summary names the model that ran: the shipped name, the file's name, or the default
    for the task and scale."""
    if model is None:
        return default_model(task, scale)
    return str(model) if str(model) in PRETRAINED else Path(model).name


def resolve_model(model: ModelLike, task: str, scale: int | None, device: str) -> RestorationNet:
    """The network for `task`: `model` (a shipped name, a file or a loaded network) or, if None,
    the shipped one. An SR `scale` of None means the model's own (x2 when no model is given)."""
    if model is None:
        model = default_model(task, 1 if task == "denoise" else scale or 2)
    net = model if isinstance(model, torch.nn.Module) else shared_model(model, device)
    if net.config.task != task:
        raise SrnlError(f"model is a '{net.config.task}' model, not '{task}'")
    if task == "sr" and scale is not None and net.config.scale != scale:
        raise SrnlError(f"model upscales x{net.config.scale}, but x{scale} was asked for")
    return net


def for_input(model: ModelLike, rgb) -> ModelLike:
    """What runs on the picture `rgb` ((H, W, 3) in [0, 1], or uint8) when `model` is asked for:
    a shipped model's own model for aliased input where it has one and the picture looks aliased;
    else `model` itself (files and loaded networks are never swapped)."""
    spec = PRETRAINED.get(model) if isinstance(model, str) else None
    if spec is None or spec.aliased is None:
        return model
    from .aliasing import looks_aliased

    return spec.aliased if looks_aliased(rgb) else model


def resolve_model_path(name_or_path: str | Path) -> Path:
    if str(name_or_path) in PRETRAINED:
        return PRETRAINED[str(name_or_path)].path
    path = Path(name_or_path)
    if not path.exists():
        raise SrnlError(f"unknown model {str(name_or_path)!r}: not a shipped name "
                        f"({', '.join(PRETRAINED)}) nor an existing file")
    return path


def load_model(name_or_path: str | Path, device: str = "cpu") -> RestorationNet:
    """A shipped name ("x2", "x3", "x4", "denoise"), a checkpoint file, or a model file of any
    architecture spandrel knows (an ExternalNet, `model.card` None) -> an inference-ready
    torch.nn.Module: eval mode, no grad, weight norm folded into plain weights, channels_last, on
    `device`. `model.card` holds what the file says about itself (a ModelCard), `model.config` its ModelConfig.

    Call it on a (B, 3, H, W) float tensor in [0, 1]: an SR network returns (B, 3, sH, sW); a
    denoiser is called as `net(x, sigma)` with sigma in [0, 1] units (a float or a (B, 1, H, W)
    noise map: 25 / 255 for sigma 25), unlike `srnl.denoise`, which takes 0-255 units. Outputs
    are not clamped. Raises SrnlError for an unknown name or an unreadable file."""
    path = resolve_model_path(name_or_path)
    try:
        ckpt = load_checkpoint(path)
    except SrnlError:
        if str(name_or_path) in PRETRAINED:
            raise
        # Not srnl's own: any architecture spandrel knows runs through the same layer.
        return load_external(path).eval().requires_grad_(False).to(device)
    model = inference_form(model_from_checkpoint(ckpt, inference_weights(ckpt)))
    model.card = ModelCard.from_dict(ckpt.get("meta"))
    return model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)


def shared_model(name_or_path: str | Path, device: str = "cpu") -> RestorationNet:
    """One loaded copy per model file (and its version on disk) and device, for the inference
    helpers, which never modify it."""
    path = resolve_model_path(name_or_path).resolve()
    return _shared(str(path), path.stat().st_mtime_ns, str(device))


@functools.lru_cache(maxsize=8)
def _shared(path: str, mtime_ns: int, device: str) -> RestorationNet:
    return load_model(path, device)
