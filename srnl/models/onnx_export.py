"""srnl's networks as ONNX files, for running them where PyTorch is not (onnxruntime, OpenCV's dnn,
browsers, C++): any height and width, the padding a denoiser needs inside the graph, and what a
caller must know (names, value range, scale, noise level) in the file's metadata."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from ..atomic import atomic_path
from ..errors import SrnlError
from ..infer import model_fn, padded
from .network import RestorationNet

OPSET = 18
# Traced at this size: odd, so that the padding a denoiser needs is part of the graph.
TRACE_SIZE = (37, 45)


class _Padded(nn.Module):
    """A denoiser as the inference layer runs it (`infer.padded`: replicate padding to its multiple
    and the crop), with the noise level as a second input in [0, 1] units (sigma / 255), NaN where
    the blind estimate should be used: padding and crop become part of the graph."""

    def __init__(self, net: RestorationNet):
        super().__init__()
        self.net = net
        self.run = padded(model_fn(net), net.config.pad_multiple, 1)

    def forward(self, image: Tensor, noise_level: Tensor) -> Tensor:
        return self.run(torch.cat([image, noise_level], 1))


def _metadata(net: RestorationNet, source: str) -> dict[str, str]:
    c = net.config
    meta = {"srnl_model": source, "task": c.task, "scale": str(c.scale), "opset": str(OPSET),
            "input image": "float32 (N, 3, H, W), RGB in [0, 1], any H and W",
            "output restored": f"float32 (N, 3, {c.scale}H, {c.scale}W), RGB, about [0, 1] "
                               "(not clamped: clamp and round to write a file)"}
    if c.task == "denoise":
        meta["input noise_level"] = ("float32 (N, 1, H, W): sigma / 255 per pixel"
                                     + ("; NaN: the model's own estimate" if c.blind else ""))
    return meta


def export_onnx(net: RestorationNet, dst: str | os.PathLike, source: str) -> dict[str, str]:
    """Write `net` (an inference-form srnl network) to `dst` as ONNX; returns its metadata."""
    c = net.config
    net = net.to("cpu", memory_format=torch.contiguous_format).eval()
    image = torch.rand(1, c.channels, *TRACE_SIZE)
    sizes = {2: "height", 3: "width"}
    if c.task == "denoise":
        module = _Padded(net)
        # NaN at tracing keeps the estimator and its where() in the graph.
        args = (image, torch.full((1, 1, *TRACE_SIZE), float("nan") if c.blind else 0.1))
        names, axes = ["image", "noise_level"], {"image": sizes, "noise_level": sizes}
    else:
        module, args, names, axes = net, (image,), ["image"], {"image": sizes}
    axes["restored"] = {2: "out_height", 3: "out_width"}
    meta = _metadata(net, source)
    with atomic_path(dst) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python branches
        torch.onnx.export(module, args, str(tmp), input_names=names, output_names=["restored"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        model = onnx.load(str(tmp))
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(tmp))
    return meta


def export_model_onnx(name_or_path: str | Path, dst: str | os.PathLike) -> dict[str, str]:
    """A shipped name or an srnl model/checkpoint file -> an ONNX file."""
    from .registry import load_model

    net = load_model(name_or_path)
    if not isinstance(net, RestorationNet):
        raise SrnlError(f"{name_or_path}: only srnl's own networks export to ONNX")
    return export_onnx(net, dst, str(name_or_path))
