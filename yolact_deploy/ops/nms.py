"""Fast NMS (the YOLACT paper's relaxation of NMS) and standard NMS for comparison.

:func:`fast_nms` is the semantic reference for the in-graph NMS of the ONNX export and for the
``YolactFastNMS`` TensorRT plugin. It is batched with fixed-size outputs and reproduces the official
``Detect.fast_nms`` / ``Detect.cc_fast_nms`` results:

1. a prior is a candidate when its best foreground score is ``> conf_thresh`` (strict);
2. class-wise: per class, candidates sorted by that class's score (descending), first ``top_k`` kept;
   cross-class: candidates sorted by their best score, first ``top_k`` kept;
3. a sorted entry is suppressed when its IoU with any *higher-ranked* entry of the same list is
   ``> iou_threshold`` -- suppressed entries still suppress others (the Fast NMS relaxation);
4. survivors (with their class score, which may be below ``conf_thresh`` for non-best classes, as in the
   official code) are sorted by score, descending, and the first ``max_detections`` are returned.

Ties are broken by position: equal scores keep the lower prior index first (steps 2 and 4 are stable
sorts; step 4 runs over the class-major, score-sorted list). This is also ONNX TopK's documented
tie-break, but TensorRT's ``ITopKLayer`` promises no tie order, so the exported graph never relies on
it (:func:`tie_free_topk`). Padding slots carry class -1, index -1, score 0 and a zero box.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .boxes import jaccard


class Detections(NamedTuple):
    num_detections: torch.Tensor   # [B] int64
    boxes: torch.Tensor            # [B, K, 4] x1y1x2y2 relative
    scores: torch.Tensor           # [B, K]
    classes: torch.Tensor          # [B, K] int64, foreground class index (0-based), -1 pads
    indices: torch.Tensor          # [B, K] int64, prior index of each detection, -1 pads


def _exporting() -> bool:
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()


def _top_desc(values: torch.Tensor, k: int):
    """The first ``k`` entries of a stable descending sort along the last dim: (values, indices).

    Eager mode sorts stably. Under export it is :func:`tie_free_topk` (torch.sort(stable=True) has no
    ONNX translation, and a partial selection is cheaper than a full sort over every prior).
    """
    if _exporting():
        return tie_free_topk(values, k)
    ordered, order = torch.sort(values, dim=-1, descending=True, stable=True)
    return ordered[..., :k], order[..., :k]


def tie_free_topk(values: torch.Tensor, k: int, topk=None):
    """The same result as the stable descending sort's first ``k`` entries, whatever order ``topk``
    gives tied values (ONNX TopK: lower index first; TensorRT's ITopKLayer: unspecified).

    Every ``topk`` call here either uses only the sorted *values* or sorts keys that cannot tie:
    (1) the k-th value decides membership: everything above it, plus the lowest-index entries equal
    to it (a cumulative count); (2) the members, in ascending index order, from a key ``N - index``
    that is non-zero only for members; (3) a stable order of the k members by value, from their
    pairwise comparison (a [k, k] matrix, like Fast NMS's IoU matrix) with ties won by the earlier
    member, which gives unique ranks. Counts and keys are FP32, exact below 2^24 entries.
    """
    topk = topk or torch.topk
    n = values.shape[-1]
    kth = topk(values, k, dim=-1, largest=True, sorted=True)[0][..., k - 1:k]
    above = values > kth
    tied = values == kth
    room = k - above.to(torch.float32).sum(dim=-1, keepdim=True)      # tied members wanted
    take = above | (tied & (torch.cumsum(tied.to(torch.float32), dim=-1) <= room))
    descending = torch.arange(n, 0, -1, dtype=torch.float32, device=values.device)
    members = topk(take.to(torch.float32) * descending, k, dim=-1, largest=True, sorted=True)[1]
    vals = torch.gather(values, -1, members)
    earlier = torch.ones(k, k, dtype=torch.bool, device=values.device).tril(-1)   # [i, j]: j < i
    beats = (vals[..., None, :] > vals[..., :, None]) | \
        ((vals[..., None, :] == vals[..., :, None]) & earlier)
    rank = beats.to(torch.float32).sum(dim=-1)                         # a permutation of 0..k-1
    order = topk(-rank, k, dim=-1, largest=True, sorted=True)[1]
    return torch.gather(vals, -1, order), torch.gather(members, -1, order)


def clamp_index(x: torch.Tensor, low: Optional[int] = None, high: Optional[int] = None) -> torch.Tensor:
    """``x.clamp(low, high)`` for integer tensors as Max/Min: ONNX Clip on INT64 is outside TensorRT
    10.x's documented Clip types (FP32/FP16/BF16), Max/Min take INT32/INT64."""
    if low is not None:
        x = torch.maximum(x, torch.tensor(low, dtype=x.dtype, device=x.device))
    if high is not None:
        x = torch.minimum(x, torch.tensor(high, dtype=x.dtype, device=x.device))
    return x


def fast_nms(boxes: torch.Tensor, scores: torch.Tensor, *, conf_thresh: float = 0.05,
             iou_threshold: float = 0.5, top_k: int = 200, max_detections: int = 100,
             cross_class: bool = False, second_threshold: bool = False) -> Detections:
    """Batched Fast NMS.

    boxes: ``[B, N, 4]`` decoded x1y1x2y2; scores: ``[B, N, C]`` foreground class scores
    (background column removed). ``second_threshold`` additionally drops survivors whose own score is
    ``<= conf_thresh`` (off in the official evaluation).
    """
    if cross_class:
        return _cross_class_fast_nms(boxes, scores, conf_thresh, iou_threshold, top_k,
                                     max_detections, second_threshold)
    batch, num_priors, num_classes = scores.shape
    k = min(top_k, num_priors)
    candidate = scores.max(dim=-1).values > conf_thresh                        # [B, N]
    # Non-candidates get -1 so they sort after every real score (scores are >= 0).
    keyed = torch.where(candidate[..., None], scores, torch.full_like(scores, -1.0))
    top_scores, top_idx = _top_desc(keyed.transpose(1, 2), k)                   # [B, C, k]
    # One gather over the flattened [C*k] indices (no [B, C, N, 4] expansion of the boxes).
    top_boxes = torch.gather(boxes, 1, top_idx.reshape(batch, num_classes * k, 1).expand(-1, -1, 4))
    top_boxes = top_boxes.reshape(batch, num_classes, k, 4)
    iou = torch.triu(jaccard(top_boxes, top_boxes), diagonal=1)                # [B, C, k, k]
    iou_max = iou.max(dim=-2).values                                            # [B, C, k]
    keep = (iou_max <= iou_threshold) & (top_scores >= 0)
    if second_threshold:
        keep &= top_scores > conf_thresh
    flat_keep = keep.reshape(batch, num_classes * k)
    flat_scores = top_scores.reshape(batch, num_classes * k)
    flat_classes = torch.arange(num_classes, device=scores.device).repeat_interleave(k)
    flat_classes = flat_classes.expand(batch, -1)
    return _select(flat_keep, flat_scores, flat_classes, top_idx.reshape(batch, -1), boxes,
                   max_detections)


def _cross_class_fast_nms(boxes, scores, conf_thresh, iou_threshold, top_k, max_detections,
                          second_threshold) -> Detections:
    batch, num_priors, _ = scores.shape
    k = min(top_k, num_priors)
    best, classes = scores.max(dim=-1)                                          # [B, N]
    keyed = torch.where(best > conf_thresh, best, torch.full_like(best, -1.0))
    top_scores, top_idx = _top_desc(keyed, k)
    top_boxes = torch.gather(boxes, 1, top_idx[..., None].expand(batch, k, 4))
    iou = torch.triu(jaccard(top_boxes, top_boxes), diagonal=1)
    keep = (iou.max(dim=-2).values <= iou_threshold) & (top_scores >= 0)
    if second_threshold:
        keep &= top_scores > conf_thresh
    return _select(keep, top_scores, torch.gather(classes, 1, top_idx), top_idx, boxes,
                   max_detections)


def _select(keep, flat_scores, flat_classes, flat_prior_idx, boxes, max_detections) -> Detections:
    """Sorts survivors by score (stable) and packs the first ``max_detections`` into fixed slots."""
    batch, total = flat_scores.shape
    key = torch.where(keep, flat_scores, torch.full_like(flat_scores, float('-inf')))
    k_out = min(max_detections, total)
    _, order = _top_desc(key, k_out)
    count = clamp_index(keep.sum(dim=1), high=max_detections)                           # [B]
    valid = torch.arange(k_out, device=keep.device)[None] < count[:, None]
    scores = torch.where(valid, torch.gather(flat_scores, 1, order), 0.0)
    classes = torch.where(valid, torch.gather(flat_classes, 1, order), -1)
    indices = torch.where(valid, torch.gather(flat_prior_idx, 1, order), -1)
    gathered = torch.gather(boxes, 1, clamp_index(indices, low=0)[..., None].expand(batch, k_out, 4))
    out_boxes = torch.where(valid[..., None], gathered, torch.zeros_like(gathered))
    if k_out < max_detections:  # fewer candidates than slots: pad to the fixed size
        pad = max_detections - k_out
        scores = torch.nn.functional.pad(scores, (0, pad))
        classes = torch.nn.functional.pad(classes, (0, pad), value=-1)
        indices = torch.nn.functional.pad(indices, (0, pad), value=-1)
        out_boxes = torch.nn.functional.pad(out_boxes, (0, 0, 0, pad))
    return Detections(count.to(torch.int64), out_boxes, scores, classes.to(torch.int64),
                      indices.to(torch.int64))


def standard_nms(boxes: torch.Tensor, scores: torch.Tensor, *, conf_thresh: float = 0.05,
                 iou_threshold: float = 0.5, max_detections: int = 100) -> Detections:
    """Class-wise greedy NMS (torchvision ``batched_nms``) on the same candidates, for comparison.

    Per class, priors whose score for that class is ``> conf_thresh`` enter greedy NMS; the survivors
    of all classes are sorted by score and the first ``max_detections`` kept. Not export-friendly.
    """
    from torchvision.ops import batched_nms
    batch, _, num_classes = scores.shape
    out = []
    for b in range(batch):
        prior_idx, cls = torch.nonzero(scores[b] > conf_thresh, as_tuple=True)
        cand_scores = scores[b, prior_idx, cls]
        kept = batched_nms(boxes[b, prior_idx], cand_scores, cls, iou_threshold)[:max_detections]
        out.append((prior_idx[kept], cls[kept], cand_scores[kept]))
    k = max_detections
    res = Detections(torch.zeros(batch, dtype=torch.int64), boxes.new_zeros(batch, k, 4),
                     scores.new_zeros(batch, k), torch.full((batch, k), -1, dtype=torch.int64),
                     torch.full((batch, k), -1, dtype=torch.int64))
    for b, (idx, cls, sc) in enumerate(out):
        n = idx.numel()
        res.num_detections[b] = n
        res.boxes[b, :n] = boxes[b, idx]
        res.scores[b, :n] = sc
        res.classes[b, :n] = cls
        res.indices[b, :n] = idx
    return res
