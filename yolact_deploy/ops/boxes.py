"""Box arithmetic: decode/encode against priors, IoU, coordinate sanitising and mask cropping.

All functions are batched over leading dimensions and use only export-friendly tensor ops.
"""
from __future__ import annotations

import torch

VARIANCES = (0.1, 0.2)


def point_form(boxes: torch.Tensor) -> torch.Tensor:
    """[cx, cy, w, h] -> [x1, y1, x2, y2]."""
    return torch.cat((boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2), -1)


def center_size(boxes: torch.Tensor) -> torch.Tensor:
    """[x1, y1, x2, y2] -> [cx, cy, w, h]."""
    return torch.cat(((boxes[..., 2:] + boxes[..., :2]) / 2, boxes[..., 2:] - boxes[..., :2]), -1)


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """SSD box decoding with variances (0.1, 0.2), in the official operation order.

    loc: ``[..., N, 4]``, priors: ``[N, 4]`` (cx, cy, w, h). Returns ``[..., N, 4]`` x1y1x2y2,
    relative to the image.
    """
    cxcy = priors[..., :2] + loc[..., :2] * VARIANCES[0] * priors[..., 2:]
    wh = priors[..., 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    x1y1 = cxcy - wh / 2
    return torch.cat((x1y1, wh + x1y1), -1)


def encode(matched: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`decode` for point-form ground-truth boxes matched to each prior."""
    g_cxcy = ((matched[..., :2] + matched[..., 2:]) / 2 - priors[..., :2])
    g_cxcy = g_cxcy / (VARIANCES[0] * priors[..., 2:])
    g_wh = (matched[..., 2:] - matched[..., :2]) / priors[..., 2:]
    g_wh = torch.log(g_wh) / VARIANCES[1]
    return torch.cat([g_cxcy, g_wh], -1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def intersection(box_a: torch.Tensor, box_b: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection areas ``[..., A, B]`` of ``[..., A, 4]`` and ``[..., B, 4]``.

    Per coordinate, the same values as ``clamp(min(x2y2) - max(x1y1), 0).prod(-1)`` bit for bit;
    written without the trailing size-2 axis because ONNX Runtime's broadcasting Min/Max and
    ReduceProd over it cost ~0.7 s per image at the Fast NMS shape [80, 200, 200].
    """
    a, b = box_a[..., :, None, :], box_b[..., None, :, :]
    w = torch.clamp(torch.min(a[..., 2], b[..., 2]) - torch.max(a[..., 0], b[..., 0]), min=0)
    h = torch.clamp(torch.min(a[..., 3], b[..., 3]) - torch.max(a[..., 1], b[..., 1]), min=0)
    return w * h


def jaccard(box_a: torch.Tensor, box_b: torch.Tensor, iscrowd: bool = False) -> torch.Tensor:
    """Pairwise IoU ``[..., A, B]``; with ``iscrowd`` the intersection over box_a's area."""
    inter = intersection(box_a, box_b)
    area_a = box_area(box_a)[..., :, None]
    area_b = box_area(box_b)[..., None, :]
    if iscrowd:
        return inter / area_a
    return inter / (area_a + area_b - inter)


def sanitize_coordinates(x1: torch.Tensor, x2: torch.Tensor, img_size: int, padding: float = 0):
    """Relative -> absolute coordinates, ordered and clamped to ``[0, img_size]`` (no rounding)."""
    x1 = x1 * img_size
    x2 = x2 * img_size
    lo = torch.clamp(torch.min(x1, x2) - padding, min=0)
    hi = torch.clamp(torch.max(x1, x2) + padding, max=img_size)
    return lo, hi


def crop(masks: torch.Tensor, boxes: torch.Tensor, padding: float = 1) -> torch.Tensor:
    """Zero every mask pixel outside its box (official ``crop``, padding 1 proto pixel).

    masks: ``[..., n, h, w]``; boxes: ``[..., n, 4]`` relative x1y1x2y2. A pixel (r, c) is kept when
    ``x1 <= c < x2`` and ``y1 <= r < y2`` in sanitised, padded proto coordinates.
    """
    h, w = masks.shape[-2], masks.shape[-1]
    x1, x2 = sanitize_coordinates(boxes[..., 0], boxes[..., 2], w, padding)
    y1, y2 = sanitize_coordinates(boxes[..., 1], boxes[..., 3], h, padding)
    cols = torch.arange(w, device=masks.device, dtype=x1.dtype)
    rows = torch.arange(h, device=masks.device, dtype=y1.dtype)
    keep_x = (cols >= x1[..., None]) & (cols < x2[..., None])          # [..., n, w]
    keep_y = (rows >= y1[..., None]) & (rows < y2[..., None])          # [..., n, h]
    keep = keep_y[..., :, None] & keep_x[..., None, :]
    return masks * keep.to(masks.dtype)
