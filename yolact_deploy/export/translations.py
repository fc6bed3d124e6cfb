"""ONNX translations (onnxscript) for the ops the torch exporter cannot translate on its own.

``torchvision::deform_conv2d`` has no translation in torch's ONNX registry. The portable flavour maps
it to the standard ONNX ``DeformConv`` (opset 19), whose input layout (offset ``[dg][kH*kW][dy, dx]``,
mask ``[dg][kH*kW]``) is the one torchvision and ``yolact_deploy.ops.dcn`` use, so the arguments pass
through unchanged.
"""
from __future__ import annotations

import torch


def _deform_conv2d_onnx(input, weight, offset, mask, bias, stride_h: int, stride_w: int,
                        pad_h: int, pad_w: int, dilation_h: int, dilation_w: int, groups: int,
                        offset_groups: int, use_mask: bool):
    from onnxscript import opset19 as op
    if use_mask:
        return op.DeformConv(input, weight, offset, bias, mask, strides=[stride_h, stride_w],
                             pads=[pad_h, pad_w, pad_h, pad_w],
                             dilations=[dilation_h, dilation_w], group=groups,
                             offset_group=offset_groups)
    return op.DeformConv(input, weight, offset, bias, strides=[stride_h, stride_w],
                         pads=[pad_h, pad_w, pad_h, pad_w], dilations=[dilation_h, dilation_w],
                         group=groups, offset_group=offset_groups)


def portable_table() -> dict:
    import torchvision  # noqa: F401  (registers torch.ops.torchvision.*)
    return {torch.ops.torchvision.deform_conv2d.default: _deform_conv2d_onnx}
