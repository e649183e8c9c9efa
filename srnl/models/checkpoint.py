"""Checkpoint files: the model config travels with the weights, so a file alone rebuilds its net."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import SrnlError
from .config import ModelConfig
from .network import RestorationNet, build_model

FORMAT = "srnl-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load_checkpoint(path: str | os.PathLike, format: str = FORMAT,
                    kind: str = "model file") -> dict:
    """A file of srnl's `format` (a plain dict, read as weights only); `kind` names it in errors."""
    path = Path(path)
    if not path.is_file():
        raise SrnlError(f"{path}: no such {kind}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise SrnlError(f"{path}: not a readable {kind} ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != format:
        raise SrnlError(f"{path}: not an srnl {kind}")
    return ckpt


def inference_weights(ckpt: dict) -> str:
    """Which weights of a checkpoint to run: the EMA where there is one (it validates higher
    than the raw weights of the same step), else the trained weights."""
    return "ema" if ckpt.get("ema") is not None else "model"


def model_from_checkpoint(ckpt: dict, weights: str = "model") -> RestorationNet:
    model = build_model(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt[weights])
    return model


def model_payload(model: RestorationNet, meta: dict | None = None) -> dict:
    return {"config": model.config.to_dict(), "model": model.state_dict(), "meta": meta or {}}


def export_model(src: str | os.PathLike, dst: str | os.PathLike, meta: dict | None = None,
                 weights: str = "auto") -> dict:
    """A training checkpoint -> a small model file: config, inference weights, metadata; optimiser
    and RNG state stay behind. `weights`: "ema", "model", or "auto" (the EMA where there is one)."""
    ckpt = load_checkpoint(src)
    if weights == "auto":
        weights = inference_weights(ckpt)
    if ckpt.get(weights) is None:
        raise SrnlError(f"{src}: holds no {weights!r} weights")
    payload = {"config": ckpt["config"], "model": ckpt[weights],
               "meta": {**ckpt.get("meta", {}), **(meta or {})}}
    save_checkpoint(dst, payload)
    return payload["meta"]
