"""What `srnl models` shows: size, cost and the measured numbers stored in each shipped file."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .network import RestorationNet
from .registry import PRETRAINED, load_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_pixel(model: RestorationNet, side: int = 64) -> float:
    """Forward FLOPs per input pixel (multiply-add = 2), counted by PyTorch on a side x side input."""
    x = torch.rand(1, model.config.channels, side, side)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x, 0.1) if model.config.task == "denoise" else model(x)
    return counter.get_total_flops() / side**2


def format_metrics(metrics: dict) -> str:
    """{"Set5": {"psnr": 37.1, ...}, ...} -> 'Set5 37.10'."""
    return ", ".join(f"{k} {v['psnr']:.2f}" for k, v in metrics.items()) or "-"


def describe_shipped() -> list[dict]:
    rows = []
    for spec in PRETRAINED.values():
        model = load_model(spec.name)
        meta = model.meta
        rows.append(dict(name=spec.name, task=spec.task, scale=spec.scale,
                         params=count_params(model), flops_per_pixel=flops_per_pixel(model),
                         data=meta.get("data", "-"), metrics=format_metrics(meta.get("metrics", {})),
                         provisional=spec.provisional))
    return rows

