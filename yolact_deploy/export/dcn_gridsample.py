"""Modulated deformable convolution from standard ops: ``GridSample`` + ``Mul`` + 1x1 ``Conv``.

The ``--dcn gridsample`` export formulation, for runtimes that have no ``DeformConv`` (OpenVINO 2026.4
has no conversion rule for it; TensorRT parses it only into NVIDIA's ``ModulatedDeformConv2d``
plugin from ``libnvinfer_plugin``). Every op used here is a standard ONNX op that ONNX Runtime,
OpenVINO and TensorRT (native ``IGridSampleLayer``: 4-D input, FP32/FP16) load without any plugin.

Semantics are :func:`yolact_deploy.ops.dcn.modulated_deform_conv2d_reference`:

1. all kernel taps are sampled by one ``GridSample`` (bilinear, ``padding_mode='zeros'``,
   ``align_corners=False``): the grid holds, per output pixel and tap ``t = i * kW + j``, the position
   ``(y, x) = (ho * sH - pH + i * dH + dy, wo * sW - pW + j * dW + dx)`` in pixels, normalised as
   ``(2 * p + 1) / size - 1``. Bilinear sampling with zero padding gives exactly the DCNv2 rule:
   each neighbour outside the input counts as zero, so a position at or beyond one pixel outside is
   zero;
2. the samples are multiplied by the modulation mask;
3. ``[B, C, taps, Ho, Wo]`` viewed as ``[B, C * taps, Ho, Wo]`` is the im2col layout (row
   ``c * taps + t``), so the GEMM with ``weight.view(Cout, C * taps)`` is a 1x1 ``Conv`` (with the
   conv's ``groups``) plus bias.

Deformable groups fold into the batch of the ``GridSample`` (``[B * dg, C / dg, H, W]``), so any
``dg`` is one node. The normalisation round trip costs a few float32 ulps of a pixel position. In
``--fp16`` graphs the grid and the sampling stay FP32 (Casts around the ``GridSample``).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair


def sampling_grid(offset: torch.Tensor, height: int, width: int, kernel_size, stride=1, padding=0,
                  dilation=1) -> torch.Tensor:
    """``offset [B, dg * 2 * taps, Ho, Wo]`` -> normalised grid ``[B * dg, taps * Ho, Wo, 2]`` (x, y)."""
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    taps = kh * kw
    batch, _, ho, wo = offset.shape
    off = offset.reshape(batch, -1, taps, 2, ho, wo)                         # [B, dg, taps, 2, Ho, Wo]
    dtype, device = offset.dtype, offset.device
    ki = torch.arange(kh, device=device).repeat_interleave(kw).to(dtype)
    kj = torch.arange(kw, device=device).repeat(kh).to(dtype)
    base_y = (torch.arange(ho, device=device) * sh - ph).to(dtype)
    base_x = (torch.arange(wo, device=device) * sw - pw).to(dtype)
    y = base_y[None, :, None] + (ki * dh)[:, None, None] + off[:, :, :, 0]   # [B, dg, taps, Ho, Wo]
    x = base_x[None, None, :] + (kj * dw)[:, None, None] + off[:, :, :, 1]
    gy = (2 * y + 1) / height - 1
    gx = (2 * x + 1) / width - 1
    grid = torch.stack((gx, gy), dim=-1)                                     # [B, dg, taps, Ho, Wo, 2]
    return grid.reshape(-1, taps * ho, wo, 2)


def modulated_deform_conv2d_gridsample(x, offset, mask, weight, bias=None, stride=1, padding=0,
                                       dilation=1, groups: int = 1) -> torch.Tensor:
    """Same result as ``ops.dcn.modulated_deform_conv2d_reference``, from GridSample + 1x1 Conv."""
    cout, _, kh, kw = weight.shape
    taps = kh * kw
    batch, channels, height, width = x.shape
    ho, wo = offset.shape[2], offset.shape[3]
    dg = mask.shape[1] // taps
    # Positions and sampling in FP32 also in --fp16 graphs (FP16 has 11 significant bits: coordinate
    # arithmetic stays FP32, as for box decoding; ONNX Runtime's CPU GridSample is FP32 only).
    grid = sampling_grid(offset.float(), height, width, (kh, kw), stride, padding, dilation)
    sampled = F.grid_sample(x.float().reshape(batch * dg, channels // dg, height, width), grid,
                            mode='bilinear', padding_mode='zeros', align_corners=False)
    sampled = sampled.to(x.dtype).reshape(batch, dg, channels // dg, taps, ho, wo)
    sampled = sampled * mask.reshape(batch, dg, 1, taps, ho, wo)
    cols = sampled.reshape(batch, channels * taps, ho, wo)                    # row c * taps + t
    return F.conv2d(cols, weight.reshape(cout, -1, 1, 1), bias, groups=groups)


@contextlib.contextmanager
def dcn_as_gridsample():
    """Routes the model's deformable convs through :func:`modulated_deform_conv2d_gridsample`
    while exporting (the PyTorch model itself keeps torchvision's kernel)."""
    from ..model import backbones

    def route(x, offset, mask, weight, bias=None, stride=1, padding=0, dilation=1):
        return modulated_deform_conv2d_gridsample(x, offset, mask, weight, bias, stride, padding,
                                                  dilation)

    original = backbones.modulated_deform_conv2d
    backbones.modulated_deform_conv2d = route
    try:
        yield
    finally:
        backbones.modulated_deform_conv2d = original
