"""Mask assembly: prototypes x coefficients -> sigmoid -> crop (the official lincomb path)."""
from __future__ import annotations

import torch

from .boxes import crop


def assemble_masks(proto: torch.Tensor, coeffs: torch.Tensor, boxes: torch.Tensor,
                   crop_masks: bool = True) -> torch.Tensor:
    """Instance masks at prototype resolution.

    proto: ``[B, Hp, Wp, D]`` (channels last, as the official model emits it); coeffs: ``[B, K, D]``;
    boxes: ``[B, K, 4]`` relative x1y1x2y2. Returns probabilities ``[B, K, Hp, Wp]``.
    """
    batch, hp, wp, dim = proto.shape
    logits = torch.matmul(proto.reshape(batch, hp * wp, dim), coeffs.transpose(1, 2))  # [B, HW, K]
    masks = torch.sigmoid(logits).transpose(1, 2).reshape(batch, -1, hp, wp)
    return crop(masks, boxes) if crop_masks else masks
