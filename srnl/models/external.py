"""Model files srnl did not make: any architecture spandrel knows (Real-ESRGAN's RRDB and compact
SRVGG, SwinIR, HAT, SPAN, OmniSR, DAT, SCUNet, DRUNet, ...), wrapped so that srnl's inference layer
(padding, tiles, self-ensemble, metadata, atomic writes) runs it exactly as its own networks.

The file is read as weights only (torch.load with weights_only, or safetensors): no pickled code
runs. Scale, input channels and size requirements come from spandrel's descriptor; a x1 model
(restoration) is a denoiser that takes no noise level."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import SrnlError

# What the inference layer budgets per pixel for a network whose width it cannot see (srnl's
# estimate for a 64-channel body): big transformer models may need more; --tile N bounds them.
ASSUMED_FEATURES = 64


@dataclass(frozen=True)
class ExternalConfig:
    """The part of a network's configuration the inference layer reads."""
    task: str          # "sr", or "denoise" for x1 restoration
    scale: int
    pad_multiple: int  # input sides padded to a multiple of this
    pad_minimum: int = 0  # and to at least this
    channels: int = 3
    blind: bool = True
    takes_level: bool = False  # no noise-level input
    features: int = ASSUMED_FEATURES
    upsample_features: int = ASSUMED_FEATURES
    architecture: str = ""


class ExternalNet(nn.Module):
    """A spandrel model as srnl runs a network: (B, 3, H, W) in [0, 1] in, (B, 3, sH, sW) out;
    greyscale models see the luma and give it back on three channels."""

    def __init__(self, descriptor, name: str):
        super().__init__()
        req = descriptor.size_requirements
        if req.square:
            raise SrnlError(f"{name}: {descriptor.architecture.name} needs square inputs, which "
                            "srnl does not make")
        if descriptor.input_channels not in (1, 3) or descriptor.output_channels not in (1, 3):
            raise SrnlError(f"{name}: {descriptor.input_channels}-channel "
                            f"{descriptor.architecture.name} models are not supported (RGB or grey)")
        self.net = descriptor.model
        self.grey = descriptor.input_channels == 1
        self.config = ExternalConfig(
            task="sr" if descriptor.scale > 1 else "denoise", scale=descriptor.scale,
            pad_multiple=max(1, req.multiple_of), pad_minimum=req.minimum,
            architecture=descriptor.architecture.name)
        self.card = None

    def forward(self, x: Tensor, sigma: Tensor | float | None = None) -> Tensor:
        if self.grey:
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        y = self.net(x)
        return y.repeat(1, 3, 1, 1) if y.shape[1] == 1 else y


def read_weights(path: Path) -> dict:
    """A .pth/.pt/.ckpt or .safetensors file's tensors, weights only."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch and safetensors raise many types for a damaged file
        raise SrnlError(f"{path}: not a readable model file ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise SrnlError(f"{path}: holds no weights")
    return state


def load_external(path: Path) -> ExternalNet:
    """The network in a model file spandrel recognises; SrnlError naming the file otherwise."""
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    state = read_weights(path)
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        raise SrnlError(f"{path}: neither an srnl model file nor an architecture spandrel "
                        "knows") from None
    except Exception as e:  # a known architecture with damaged or inconsistent weights
        raise SrnlError(f"{path}: its weights do not fit their architecture "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(descriptor, ImageModelDescriptor):
        raise SrnlError(f"{path}: {descriptor.architecture.name} is not an image-to-image model")
    return ExternalNet(descriptor, str(path))


def describe(net: nn.Module) -> dict:
    """What `srnl models --file` prints about a loaded network."""
    c = net.config
    return {"architecture": getattr(c, "architecture", "") or "srnl", "task": c.task,
            "scale": c.scale, "parameters": sum(p.numel() for p in net.parameters()),
            "size multiple": c.pad_multiple, "minimum size": c.pad_minimum}
