"""What `srnl models` shows: size, cost and the measured numbers stored in each shipped file."""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .network import RestorationNet, inference_form
from .registry import PRETRAINED, load_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cpu_attention_flops(q_shape, k_shape, v_shape, *args, **kwargs) -> int:
    return sdpa_flop_count(q_shape, k_shape, v_shape)


# PyTorch's counter knows the CUDA attention kernels but not the CPU one that srnl runs.
FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}


def count_flops(model: RestorationNet, h: int, w: int) -> int:
    """Forward FLOPs (multiply-add = 2) of one h x w input, counted by PyTorch on an inference copy
    (branches and weight norm folded, as srnl runs it)."""
    model = inference_form(copy.deepcopy(model))
    x = torch.rand(1, model.config.channels, h, w)
    with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as counter, \
            torch.inference_mode():
        # A blind denoiser runs its estimator too when no level is given, as by default.
        model(x, None if model.config.blind else 0.1) if model.config.task == "denoise" \
            else model(x)
    return counter.get_total_flops()


def flops_per_pixel(model: RestorationNet, side: int = 64) -> float:
    """FLOPs per input pixel at side x side. Attention's share grows with the image (every query
    meets every key), so this is quoted at a stated size."""
    return count_flops(model, side, side) / side**2


def format_metrics(metrics: dict, limit: int | None = None, ssim: bool = False) -> str:
    """{"Set5": {"psnr": 37.1, "ssim": 0.95}, ...} -> 'Set5 37.10' (or 'Set5 37.10 / 0.9500'),
    the first `limit` entries."""
    items = list(metrics.items())[:limit]
    return ", ".join(f"{k} {v['psnr']:.2f}" + (f" / {v['ssim']:.4f}" if ssim else "")
                     for k, v in items) or "-"


def describe_shipped() -> list[dict]:
    rows = []
    for spec in PRETRAINED.values():
        model = load_model(spec.name)
        card = model.card
        rows.append(dict(name=spec.name, task=spec.task, scale=spec.scale, about=spec.about,
                         params=count_params(model), flops_per_pixel=flops_per_pixel(model),
                         data=card.data, steps=card.steps if card.steps is not None else "?",
                         headline=format_metrics(card.metrics, limit=3),
                         metrics=format_metrics(card.metrics, ssim=True)))
    return rows
