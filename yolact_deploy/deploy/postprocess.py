"""From fixed-size detections at prototype resolution to final per-image results.

This is the last step of the official evaluation path (``layers/output_utils.postprocess``) and is
shared by every backend (PyTorch, ONNX Runtime, TensorRT): it takes the engine-contract outputs as
numpy arrays, so no backend needs PyTorch for it.

- keep detections whose (box) score is ``> score_threshold`` (strict, as official);
- boxes: relative -> pixels, ordered, clamped to the image, truncated to integers;
- masks: bilinear resize (half-pixel centres, like ``F.interpolate(align_corners=False)``) of the cropped
  probabilities to the image size, then ``> 0.5``; computed only inside each mask's crop box plus the
  bilinear footprint (:func:`crop_resize_masks`, bit-identical to the full-image :func:`resize_masks`)
  and kept as box-cropped bitmaps (:class:`MaskCrops`); COCO RLE is written from the crops.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np


class MaskCrops:
    """The binary masks of one image, each stored as the bitmap of its bounding box.

    Mask ``i`` is ``bitmaps[i]`` (bool ``[h_i, w_i]``) placed at row ``offsets[i, 0]``, column
    ``offsets[i, 1]`` of an all-False ``[height, width]`` image; an empty mask is a ``(0, 0)`` bitmap.
    Memory and the COCO RLE cost follow the boxes, not the image.
    """

    def __init__(self, height: int, width: int, bitmaps: Sequence[np.ndarray], offsets: np.ndarray):
        self.height, self.width = int(height), int(width)
        self.bitmaps = list(bitmaps)
        self.offsets = np.asarray(offsets, np.int64).reshape(len(self.bitmaps), 2)

    @classmethod
    def from_dense(cls, masks: np.ndarray) -> 'MaskCrops':
        """``[n, H, W]`` masks (anything ``!= 0`` is True) -> their crops."""
        masks = np.asarray(masks)
        n, height, width = masks.shape
        bitmaps, offsets = [], np.zeros((n, 2), np.int64)
        for i in range(n):
            m = masks[i] != 0
            rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
            if rows.size == 0:
                bitmaps.append(np.zeros((0, 0), bool))
                continue
            offsets[i] = rows[0], cols[0]
            bitmaps.append(m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy())
        return cls(height, width, bitmaps, offsets)

    def __len__(self) -> int:
        return len(self.bitmaps)

    def __getitem__(self, index) -> 'MaskCrops':
        """A subset (index array, boolean array or slice), in the given order."""
        picked = np.arange(len(self))[index]
        return MaskCrops(self.height, self.width, [self.bitmaps[i] for i in picked],
                         self.offsets[picked])

    def dense(self, i: int) -> np.ndarray:
        """Mask ``i`` at the image's size, ``[H, W]`` bool."""
        out = np.zeros((self.height, self.width), bool)
        self._paste(out, i)
        return out

    def to_dense(self) -> np.ndarray:
        """All masks at the image's size, ``[n, H, W]`` bool."""
        out = np.zeros((len(self), self.height, self.width), bool)
        for i in range(len(self)):
            self._paste(out[i], i)
        return out

    def _paste(self, out: np.ndarray, i: int) -> None:
        (y, x), b = self.offsets[i], self.bitmaps[i]
        out[y:y + b.shape[0], x:x + b.shape[1]] = b

    def area(self, i: int) -> int:
        return int(np.count_nonzero(self.bitmaps[i]))

    def rle_counts(self, i: int) -> List[int]:
        """Uncompressed COCO RLE of mask ``i``: run lengths over the column-major pixels of the whole
        image, starting with a (possibly empty) run of zeros, computed from the crop alone."""
        total = self.height * self.width
        b = self.bitmaps[i]
        if not b.any():
            return [total]
        (y0, x0), (h, w) = self.offsets[i], b.shape
        # One False row above and below each crop column: runs never cross a padded column.
        padded = np.zeros((w, h + 2), np.int8)
        padded[:, 1:-1] = b.T
        edges = np.diff(padded.ravel())
        starts, ends = np.flatnonzero(edges == 1) + 1, np.flatnonzero(edges == -1) + 1
        # Padded flat index -> index in the image's column-major order.
        to_global = (lambda p: (x0 + p // (h + 2)) * self.height + y0 + p % (h + 2) - 1)
        starts, ends = to_global(starts), to_global(ends - 1) + 1
        # A run that ends at the bottom of a column and one starting at the top of the next are one run
        # in the image (only possible when the crop spans the whole height).
        join = np.flatnonzero(ends[:-1] == starts[1:])
        if join.size:
            starts, ends = np.delete(starts, join + 1), np.delete(ends, join)
        bounds = np.empty(2 * starts.size + 2, np.int64)
        bounds[0], bounds[1:-1:2], bounds[2:-1:2], bounds[-1] = 0, starts, ends, total
        counts = np.diff(bounds).tolist()
        return counts[:-1] if counts[-1] == 0 else counts  # no empty run at the end (pycocotools)

    def rle(self, i: int) -> dict:
        """COCO RLE of mask ``i`` (``{'size': [H, W], 'counts': str}``), identical to
        ``pycocotools.mask.encode`` of the full mask without ever making the full mask."""
        from pycocotools import mask as mask_util
        rle = mask_util.frPyObjects({'size': [self.height, self.width], 'counts': self.rle_counts(i)},
                                    self.height, self.width)
        return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


class ImageDetections:
    """Final detections of one image, sorted by box score (descending).

    boxes ``[n, 4]`` int32 (x1 y1 x2 y2 pixels), classes ``[n]`` int64 (0-based index into
    class_names), scores ``[n]`` float32 (box score), mask_scores ``[n]`` float32 (YOLACT++ re-scored
    mask score, == scores otherwise). The masks are kept compact (:attr:`mask_crops`, one box-cropped
    bitmap per detection); :attr:`masks` makes the ``[n, H, W]`` bool array on first access.
    Pass either ``masks`` (dense) or ``mask_crops``.
    """

    def __init__(self, boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray,
                 mask_scores: np.ndarray, masks: Optional[np.ndarray] = None,
                 class_names: Sequence[str] = (), *, mask_crops: Optional[MaskCrops] = None):
        if (masks is None) == (mask_crops is None):
            raise ValueError('ImageDetections needs exactly one of masks and mask_crops')
        self.boxes, self.classes, self.scores, self.mask_scores = boxes, classes, scores, mask_scores
        self.class_names = class_names
        self._dense = None if masks is None else np.asarray(masks, bool)
        self._crops = mask_crops

    @property
    def image_size(self) -> Tuple[int, int]:
        """(height, width) of the image the masks belong to."""
        if self._crops is not None:
            return self._crops.height, self._crops.width
        return tuple(int(s) for s in self._dense.shape[1:])

    @property
    def mask_crops(self) -> MaskCrops:
        if self._crops is None:
            self._crops = MaskCrops.from_dense(self._dense)
        return self._crops

    @property
    def masks(self) -> np.ndarray:
        """``[n, H, W]`` bool, made from the crops on first access (then kept)."""
        if self._dense is None:
            self._dense = self._crops.to_dense()
        return self._dense

    def subset(self, keep) -> 'ImageDetections':
        """The detections at ``keep`` (index array, boolean array or slice), masks kept compact."""
        common = dict(boxes=self.boxes[keep], classes=self.classes[keep], scores=self.scores[keep],
                      mask_scores=self.mask_scores[keep], class_names=self.class_names)
        if self._crops is None:
            return ImageDetections(masks=self._dense[keep], **common)
        return ImageDetections(mask_crops=self._crops[keep], **common)

    def mask_rle(self, i: int) -> dict:
        """COCO RLE ``{'size': [H, W], 'counts': str}`` of mask ``i``, written from its crop."""
        return self.mask_crops.rle(i)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def labels(self) -> List[str]:
        return [self.class_names[c] if 0 <= c < len(self.class_names) else str(c)
                for c in self.classes]

    def to_coco(self, image_id: int, category_ids: Sequence[int]) -> List[dict]:
        """COCO results (one bbox and one segm entry per detection, RLE masks), as the official
        ``--output_coco_json`` writes them: bbox with the box score, segm with the mask score."""
        from .results import coco_results
        return coco_results(self, image_id, category_ids)


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize ``[n, h, w]`` float masks to ``[n, height, width]`` (half-pixel centres) over the
    whole image: the reference that :func:`crop_resize_masks` reproduces bit for bit.

    OpenCV's generic float path (separable, OpenCV's tables; an exact 2x downscale switches to its
    2x2 area average). OpenCV computes 1, 3 and 4 channel images differently (up to 1e-5 apart), so
    a chunk of that many masks gets zero channels added: a mask never depends on how many others
    the image has.
    """
    n = masks.shape[0]
    if n == 0:
        return np.zeros((0, height, width), np.float32)
    out = np.empty((n, height, width), np.float32)
    step = 128  # OpenCV 5 handles at most 128 channels per call (OpenCV 4: 512)
    for start in range(0, n, step):
        chunk = np.ascontiguousarray(masks[start:start + step].transpose(1, 2, 0), np.float32)
        count = chunk.shape[2]
        if count in (1, 3, 4):
            chunk = np.concatenate([chunk, np.zeros(chunk.shape[:2] + (5 - count,), np.float32)], 2)
        resized = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
        out[start:start + count] = resized.reshape(height, width, -1)[:, :, :count].transpose(2, 0, 1)
    return out


def _linear_taps(src: int, dst: int, clamp_fraction: bool):
    """OpenCV's INTER_LINEAR tables for one axis: source indices (i0, i1) and float32 weights
    (w0, w1) of every destination index. The coordinate is computed in double and rounded to float;
    horizontally the fraction is zeroed where a neighbour falls outside, vertically only the indices
    are clamped (as OpenCV does)."""
    scale = 1.0 / (dst / src)
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f -= s.astype(np.float32)
    if clamp_fraction:
        outside = (s < 0) | (s >= src - 1)
        f[outside] = 0
        s = np.clip(s, 0, src - 1)
    i0, i1 = np.clip(s, 0, src - 1), np.clip(s + 1, 0, src - 1)
    return i0, i1, np.float32(1) - f, f


def _window_values(masks: np.ndarray, height: int, width: int):
    """Yields ``(y, x, values)`` per mask: the float32 values of ``resize_masks(masks, height,
    width)[i]`` in the window at (y, x) outside which that resize is exactly 0 (``values`` is None
    when it is 0 everywhere)."""
    n, src_h, src_w = masks.shape
    nonzero = masks != 0
    rows_any, cols_any = nonzero.any(axis=2), nonzero.any(axis=1)
    area2x = src_h == 2 * height and src_w == 2 * width  # OpenCV: INTER_AREA's 2x2 average
    if not area2x:
        xi0, xi1, xw0, xw1 = _linear_taps(src_w, width, True)
        yi0, yi1, yw0, yw1 = _linear_taps(src_h, height, False)
    for i in range(n):
        rows, cols = np.flatnonzero(rows_any[i]), np.flatnonzero(cols_any[i])
        if rows.size == 0:
            yield 0, 0, None
            continue
        r0, r1, c0, c1 = rows[0], rows[-1], cols[0], cols[-1]
        m = masks[i]
        if area2x:  # destination pixel d reads source pixels 2d and 2d + 1
            y_lo, y_hi, x_lo, x_hi = r0 // 2, r1 // 2 + 1, c0 // 2, c1 // 2 + 1
            s = m[2 * y_lo:2 * y_hi, 2 * x_lo:2 * x_hi]
            # Summed in OpenCV's order: ((s00 + s01) + s10) + s11, then * 0.25.
            vals = (((s[0::2, 0::2] + s[0::2, 1::2]) + s[1::2, 0::2]) + s[1::2, 1::2]) * np.float32(0.25)
            yield y_lo, x_lo, vals
            continue
        # Output columns/rows whose taps reach [c0, c1] / [r0, r1] (the taps are monotonic).
        x_lo, x_hi = np.searchsorted(xi1, c0, 'left'), np.searchsorted(xi0, c1, 'right')
        y_lo, y_hi = np.searchsorted(yi1, r0, 'left'), np.searchsorted(yi0, r1, 'right')
        if x_lo >= x_hi or y_lo >= y_hi:
            yield 0, 0, None
            continue
        top, bottom = yi0[y_lo], yi1[y_hi - 1] + 1
        band = m[top:bottom]
        horiz = (band[:, xi0[x_lo:x_hi]] * xw0[x_lo:x_hi]
                 + band[:, xi1[x_lo:x_hi]] * xw1[x_lo:x_hi])
        # r0 * b0 + r1 * b1 in float32: each product rounded, then the sum (in place, fewer copies).
        vals = np.take(horiz, yi0[y_lo:y_hi] - top, axis=0)
        vals *= yw0[y_lo:y_hi, None]
        second = np.take(horiz, yi1[y_lo:y_hi] - top, axis=0)
        second *= yw1[y_lo:y_hi, None]
        vals += second
        yield y_lo, x_lo, vals


def crop_resize_masks(masks: np.ndarray, height: int, width: int,
                      threshold: float = 0.5) -> MaskCrops:
    """``resize_masks(masks, height, width) > threshold`` computed only where it can be True.

    A prototype-resolution mask is exactly 0 outside its crop box, and a bilinear sample of zeros is
    exactly 0; so only the output pixels whose taps touch the mask's nonzero rows/columns are
    computed, with the same float32 operations (same order, no fused multiply-add) as OpenCV, and
    the result is identical bit for bit. The work follows the boxes, not the image.
    """
    masks = np.asarray(masks, np.float32)
    bitmaps, offsets = [], np.zeros((masks.shape[0], 2), np.int64)
    thr = np.float32(threshold)
    for i, (y, x, vals) in enumerate(_window_values(masks, height, width)):
        bits = None if vals is None else vals > thr
        rows = np.flatnonzero(bits.any(axis=1)) if bits is not None else ()
        if len(rows) == 0:
            bitmaps.append(np.zeros((0, 0), bool))
            continue
        cols = np.flatnonzero(bits.any(axis=0))
        offsets[i] = y + rows[0], x + cols[0]
        bitmaps.append(bits[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    return MaskCrops(height, width, bitmaps, offsets)


def sanitize_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    x1, x2 = boxes[:, 0] * width, boxes[:, 2] * width
    y1, y2 = boxes[:, 1] * height, boxes[:, 3] * height
    out = np.stack([np.clip(np.minimum(x1, x2), 0, None), np.clip(np.minimum(y1, y2), 0, None),
                    np.clip(np.maximum(x1, x2), None, width), np.clip(np.maximum(y1, y2), None, height)],
                   axis=1)
    return np.trunc(out).astype(np.int32)


def finalize(outputs: Dict[str, np.ndarray], image_sizes: Sequence[Tuple[int, int]],
             class_names: Sequence[str], score_threshold: float = 0.0,
             top_k: Optional[int] = None, full_image_masks: bool = False) -> List[ImageDetections]:
    """Engine-contract outputs (batched numpy) -> one :class:`ImageDetections` per image.

    ``outputs`` needs ``num_detections [B]``, ``boxes [B,K,4]`` (relative), ``scores [B,K]``,
    ``classes [B,K]``, ``masks [B,K,Hp,Wp]`` and optionally ``mask_scores [B,K]``.
    ``full_image_masks=True`` takes the old path (every mask resized over the whole image, dense
    result): the reference of the tests and benchmarks, identical in content and slower.
    """
    results = []
    for b, (height, width) in enumerate(image_sizes):
        n = int(np.asarray(outputs['num_detections']).reshape(len(image_sizes), -1)[b, 0])
        scores = np.asarray(outputs['scores'][b, :n], np.float32)
        mask_scores = np.asarray(outputs.get('mask_scores', outputs['scores'])[b, :n], np.float32)
        keep = np.nonzero(scores > score_threshold)[0]
        if top_k is not None:
            keep = keep[:top_k]
        boxes = np.asarray(outputs['boxes'][b, keep], np.float32)
        masks = np.asarray(outputs['masks'][b, keep], np.float32)
        if full_image_masks:
            found = {'masks': resize_masks(masks, height, width) > 0.5}
        else:
            found = {'mask_crops': crop_resize_masks(masks, height, width)}
        results.append(ImageDetections(
            boxes=sanitize_boxes(boxes, height, width),
            classes=np.asarray(outputs['classes'][b, keep]).astype(np.int64),
            scores=scores[keep], mask_scores=mask_scores[keep], class_names=tuple(class_names),
            **found))
    return results
