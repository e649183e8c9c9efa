"""Re-parameterised 3x3 convolution (RepVGG, ECBSR): trained as parallel 3x3, 1x1 and identity
branches, run as the one plain 3x3 convolution they add up to. The branches are linear, so the
fold is exact; the network learns with more paths and runs at the cost of a plain conv."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import wn_conv


class RepConv3x3(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv3 = wn_conv(features, features, 3)
        self.conv1 = wn_conv(features, features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(x) + self.conv1(x) + x

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """The single 3x3 conv: the 1x1 kernel and the identity sit at the 3x3 kernel's centre."""
        weight = self.conv3.weight.clone()
        eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
        weight[:, :, 1, 1] += self.conv1.weight[:, :, 0, 0] + eye
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1).to(weight)
        conv.weight.copy_(weight)
        conv.bias.copy_(self.conv3.bias + self.conv1.bias)
        return conv


def fold_branches(model: nn.Module) -> nn.Module:
    """Replace every RepConv3x3 in `model` by its single conv, in place."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, RepConv3x3):
                setattr(module, name, child.fold())
    return model
