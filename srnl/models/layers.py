"""Weight-normalised convolutions (WDSR): restoration nets train without batch norm."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


def wn_conv(cin: int, cout: int, kernel: int = 3, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
    conv = weight_norm(conv)
    if zero:
        zero_weight_norm(conv)
    return conv


def zero_weight_norm(conv: nn.Conv2d) -> None:
    """Make a weight-normalised conv output zero: g = 0 zeroes the weight exactly while v keeps a
    direction to learn."""
    with torch.no_grad():
        conv.parametrizations.weight.original0.zero_()
        conv.bias.zero_()


def fold_weight_norm(model: nn.Module) -> nn.Module:
    """Bake g * v / |v| into plain weights: the parametrised form recomputes it on every call."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
