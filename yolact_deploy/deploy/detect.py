"""Detections from a raw graph's outputs (``yolact-export --raw``), in numpy: box decode, Fast NMS and
mask assembly with the semantics of :mod:`yolact_deploy.ops` (``Yolact.detect``), which stays the
reference (tests/test_onnxruntime_backend.py compares the two on the same outputs).

YOLACT++ mask re-scoring is a network of its own and not part of a raw graph: ``mask_scores`` equal
``scores`` here (a warning says so once per model).
"""
from __future__ import annotations

import sys
from typing import Callable, Dict

import numpy as np

VARIANCES = (0.1, 0.2)


def decode(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """``loc [..., N, 4]`` offsets and ``priors [N, 4]`` (cx, cy, w, h) -> x1y1x2y2, relative."""
    cxcy = priors[..., :2] + loc[..., :2] * np.float32(VARIANCES[0]) * priors[..., 2:]
    wh = priors[..., 2:] * np.exp(loc[..., 2:] * np.float32(VARIANCES[1]))
    x1y1 = cxcy - wh / 2
    return np.concatenate((x1y1, wh + x1y1), -1)


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``[..., n, 4]`` and ``[..., m, 4]`` boxes -> ``[..., n, m]``."""
    p, q = a[..., :, None, :], b[..., None, :, :]
    w = np.clip(np.minimum(p[..., 2], q[..., 2]) - np.maximum(p[..., 0], q[..., 0]), 0, None)
    h = np.clip(np.minimum(p[..., 3], q[..., 3]) - np.maximum(p[..., 1], q[..., 1]), 0, None)
    inter = w * h
    area_a = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]))[..., :, None]
    area_b = ((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]))[..., None, :]
    return inter / (area_a + area_b - inter)


def _top_desc(values: np.ndarray, k: int):
    """First ``k`` of a stable descending sort along the last axis: (values, indices)."""
    order = np.argsort(-values, axis=-1, kind='stable')[..., :k]
    return np.take_along_axis(values, order, -1), order


def _suppressed(top_boxes: np.ndarray) -> np.ndarray:
    """Fast NMS: each box's largest IoU with a higher-scored box (upper triangle, column max)."""
    iou = np.triu(jaccard(top_boxes, top_boxes), k=1)
    return iou.max(axis=-2)


def fast_nms(boxes: np.ndarray, scores: np.ndarray, *, conf_thresh: float, iou_threshold: float,
             top_k: int, max_detections: int, cross_class: bool = False) -> Dict[str, np.ndarray]:
    """``boxes [B, N, 4]``, foreground ``scores [B, N, C]`` -> fixed-size detections (as
    :func:`yolact_deploy.ops.fast_nms`)."""
    batch, num_priors, num_classes = scores.shape
    k = min(top_k, num_priors)
    if cross_class:
        best, classes = scores.max(-1), scores.argmax(-1)
        keyed = np.where(best > conf_thresh, best, np.float32(-1))
        top_scores, top_idx = _top_desc(keyed, k)
        top_boxes = np.take_along_axis(boxes, top_idx[..., None], 1)
        keep = (_suppressed(top_boxes) <= iou_threshold) & (top_scores >= 0)
        return _select(keep, top_scores, np.take_along_axis(classes, top_idx, 1), top_idx, boxes,
                       max_detections)
    candidate = scores.max(-1) > conf_thresh
    keyed = np.where(candidate[..., None], scores, np.float32(-1))
    top_scores, top_idx = _top_desc(keyed.transpose(0, 2, 1), k)                # [B, C, k]
    top_boxes = np.take_along_axis(boxes[:, None], top_idx[..., None], 2)        # [B, C, k, 4]
    keep = (_suppressed(top_boxes) <= iou_threshold) & (top_scores >= 0)
    flat_classes = np.broadcast_to(np.repeat(np.arange(num_classes), k), (batch, num_classes * k))
    return _select(keep.reshape(batch, -1), top_scores.reshape(batch, -1), flat_classes,
                   top_idx.reshape(batch, -1), boxes, max_detections)


def _select(keep, flat_scores, flat_classes, flat_prior_idx, boxes, max_detections):
    """Survivors by score (stable), packed into ``max_detections`` slots (-1 / 0 pads)."""
    batch, total = flat_scores.shape
    key = np.where(keep, flat_scores, np.float32(-np.inf))
    _, order = _top_desc(key, min(max_detections, total))
    count = np.minimum(keep.sum(1), max_detections)
    out = {'num_detections': count.astype(np.int64),
           'boxes': np.zeros((batch, max_detections, 4), np.float32),
           'scores': np.zeros((batch, max_detections), np.float32),
           'classes': np.full((batch, max_detections), -1, np.int64),
           'indices': np.full((batch, max_detections), -1, np.int64)}
    for b in range(batch):
        sel = order[b, :count[b]]
        prior = flat_prior_idx[b, sel]
        out['scores'][b, :len(sel)] = flat_scores[b, sel]
        out['classes'][b, :len(sel)] = flat_classes[b, sel]
        out['indices'][b, :len(sel)] = prior
        out['boxes'][b, :len(sel)] = boxes[b, prior]
    return out


def crop(masks: np.ndarray, boxes: np.ndarray, padding: float = 1) -> np.ndarray:
    """Zero outside each box (relative x1y1x2y2) plus ``padding`` prototype pixels."""
    h, w = masks.shape[-2:]

    def span(lo, hi, size):
        lo, hi = lo * size, hi * size
        return (np.clip(np.minimum(lo, hi) - padding, 0, None),
                np.clip(np.maximum(lo, hi) + padding, None, size))
    x1, x2 = span(boxes[..., 0], boxes[..., 2], w)
    y1, y2 = span(boxes[..., 1], boxes[..., 3], h)
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    keep_x = (cols >= x1[..., None]) & (cols < x2[..., None])
    keep_y = (rows >= y1[..., None]) & (rows < y2[..., None])
    return masks * (keep_y[..., :, None] & keep_x[..., None, :])


def assemble_masks(proto: np.ndarray, coeffs: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``proto [B, Hp, Wp, D]``, ``coeffs [B, K, D]`` -> cropped probabilities ``[B, K, Hp, Wp]``."""
    batch, hp, wp, dim = proto.shape
    logits = proto.reshape(batch, hp * wp, dim) @ coeffs.transpose(0, 2, 1)      # [B, HW, K]
    masks = (1 / (1 + np.exp(-logits))).transpose(0, 2, 1).reshape(batch, -1, hp, wp)
    return crop(masks, boxes).astype(np.float32)


def detect(raw: Dict[str, np.ndarray], *, conf_thresh: float, nms_thresh: float, top_k: int,
           max_detections: int, cross_class: bool = False) -> Dict[str, np.ndarray]:
    """Raw outputs (``loc``, ``conf``, ``mask``, ``priors``, ``proto``) -> engine-contract outputs."""
    f32 = {k: np.asarray(v, np.float32) for k, v in raw.items()}
    boxes = decode(f32['loc'], f32['priors'])
    det = fast_nms(boxes, f32['conf'][..., 1:], conf_thresh=conf_thresh, iou_threshold=nms_thresh,
                   top_k=top_k, max_detections=max_detections, cross_class=cross_class)
    coeffs = np.take_along_axis(f32['mask'], np.maximum(det['indices'], 0)[..., None], 1)
    masks = assemble_masks(f32['proto'], coeffs, det['boxes'])
    masks *= (det['classes'] >= 0)[..., None, None]
    det['masks'] = masks
    det['mask_scores'] = det['scores'].copy()
    return det


def raw_detector(meta: dict, cross_class: bool) -> Callable[[dict], dict]:
    """For a raw graph's metadata: ``raw outputs -> contract outputs``."""
    if meta.get('mask_rescoring'):
        print('warning: raw graph: YOLACT++ mask re-scoring is not part of a raw graph; '
              'mask_scores equal scores', file=sys.stderr)
    t = meta['thresholds']
    options = dict(conf_thresh=float(t['conf_thresh']), nms_thresh=float(t['nms_thresh']),
                   top_k=int(t['nms_top_k']), max_detections=int(meta.get('max_detections', 100)),
                   cross_class=cross_class)
    return lambda raw: detect(raw, **options)
