"""Modulated deformable convolution (DCNv2) in the official YOLACT++ layout.

Layout (the DCNv2 CUDA extension used by dbolya/yolact, identical to torchvision and ONNX
``DeformConv``): for deformable group ``g`` and kernel tap ``t = i * kW + j``, offset channel
``g * 2 * kH * kW + 2 * t`` holds the row (y) displacement and ``... + 1`` the column (x) one; mask
channel ``g * kH * kW + t`` holds the modulation. A sample at a fractional position is bilinear over
the four neighbours, each neighbour outside the input counting as zero, and the whole sample is zero
when the position is at or beyond one pixel outside (``y <= -1``, ``y >= H``, ``x <= -1``, ``x >= W``).

YOLACT++ computes offsets and mask with one conv (``conv_offset_mask``) whose output is split in
three equal chunks ``o1, o2, m``: offset = cat(o1, o2), mask = sigmoid(m) (:func:`split_offset_mask`).

:func:`deformable_im2col` (sampling only) plus a GEMM is how the TensorRT plugin computes it: the
plugin samples, a TensorRT MatMul multiplies. :func:`modulated_deform_conv2d` is the fast path used by
the model (torchvision's kernel); :func:`modulated_deform_conv2d_reference` composes the two explicit
steps and is the semantic reference the tests hold both against.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch.nn.modules.utils import _pair


def split_offset_mask(offset_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Official split of ``conv_offset_mask``'s output into (offset, sigmoid mask)."""
    o1, o2, mask = torch.chunk(offset_mask, 3, dim=1)
    return torch.cat((o1, o2), dim=1), torch.sigmoid(mask)


def output_size(in_size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (in_size + 2 * padding - (dilation * (kernel - 1) + 1)) // stride + 1


def deformable_im2col(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                      kernel_size, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """Modulated deformable sampling: ``[B, C, H, W]`` -> columns ``[B, C * kH * kW, Ho * Wo]``.

    Row ``c * kH * kW + t`` of the columns is channel ``c`` sampled at tap ``t`` and multiplied by the
    mask, the layout a GEMM with ``weight.view(Cout, C * kH * kW)`` expects.
    """
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    batch, channels, height, width = x.shape
    taps = kh * kw
    dg = mask.shape[1] // taps
    ho, wo = offset.shape[2], offset.shape[3]
    cpg = channels // dg

    off = offset.reshape(batch, dg, taps, 2, ho, wo)
    ki = torch.arange(kh, device=x.device).repeat_interleave(kw).to(x.dtype)      # tap row
    kj = torch.arange(kw, device=x.device).repeat(kh).to(x.dtype)                 # tap col
    base_y = (torch.arange(ho, device=x.device) * sh - ph).to(x.dtype)
    base_x = (torch.arange(wo, device=x.device) * sw - pw).to(x.dtype)
    y = base_y[None, :, None] + (ki * dh)[:, None, None] + off[:, :, :, 0]        # [B,dg,taps,ho,wo]
    xx = base_x[None, None, :] + (kj * dw)[:, None, None] + off[:, :, :, 1]

    inside = (y > -1) & (y < height) & (xx > -1) & (xx < width)
    y0 = torch.floor(y)
    x0 = torch.floor(xx)
    ly, lx = y - y0, xx - x0
    hy, hx = 1 - ly, 1 - lx
    y0i, x0i = y0.long(), x0.long()
    flat = x.reshape(batch, dg, cpg, height * width)

    def corner(yi, xi, weight):
        ok = inside & (yi >= 0) & (yi <= height - 1) & (xi >= 0) & (xi <= width - 1)
        idx = (yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1)).reshape(batch, dg, 1, -1)
        vals = torch.gather(flat, 3, idx.expand(batch, dg, cpg, idx.shape[-1]))
        w = (weight * ok.to(x.dtype)).reshape(batch, dg, 1, -1)
        return vals * w

    sampled = (corner(y0i, x0i, hy * hx) + corner(y0i, x0i + 1, hy * lx)
               + corner(y0i + 1, x0i, ly * hx) + corner(y0i + 1, x0i + 1, ly * lx))
    sampled = sampled * mask.reshape(batch, dg, 1, -1)                           # [B,dg,cpg,taps*ho*wo]
    return sampled.reshape(batch, channels * taps, ho * wo)


def modulated_deform_conv2d_reference(x, offset, mask, weight, bias=None, stride=1, padding=0,
                                      dilation=1, groups: int = 1) -> torch.Tensor:
    """Explicit sampling + grouped GEMM; the semantic reference (slow, memory-hungry)."""
    cout, cin_g, kh, kw = weight.shape
    cols = deformable_im2col(x, offset, mask, (kh, kw), stride, padding, dilation)
    batch = x.shape[0]
    ho, wo = offset.shape[2], offset.shape[3]
    cols = cols.reshape(batch, groups, cin_g * kh * kw, ho * wo)
    w = weight.reshape(groups, cout // groups, cin_g * kh * kw)
    out = torch.matmul(w[None], cols).reshape(batch, cout, ho, wo)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out


def modulated_deform_conv2d(x, offset, mask, weight, bias=None, stride=1, padding=0,
                            dilation=1) -> torch.Tensor:
    """Modulated deformable conv through torchvision's kernel (same semantics as the reference)."""
    from torchvision.ops import deform_conv2d
    return deform_conv2d(x, offset, weight, bias, stride=_pair(stride), padding=_pair(padding),
                         dilation=_pair(dilation), mask=mask)
