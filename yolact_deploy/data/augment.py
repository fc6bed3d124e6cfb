"""SSD-style training augmentation, as the official YOLACT training pipeline applies it.

Order: photometric distortion -> expand (zoom out) -> random sample crop -> horizontal mirror ->
resize to ``size x size`` (aspect ratio not kept, like the official training and inference).
Boxes, masks, labels and crowd flags move together. Every random draw comes from the
``numpy.random.Generator`` passed in, so a sample is reproducible from its seed.

Arrays: image float32 BGR ``[H, W, 3]`` in 0..255; masks uint8 ``[N, H, W]``; boxes float32
``[N, 4]`` absolute x1y1x2y2; labels int64 ``[N]``; crowd bool ``[N]``.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..config import MEANS_BGR


def _maybe(rng) -> bool:
    return bool(rng.integers(2))


def photometric_distort(image: np.ndarray, rng) -> np.ndarray:
    """Brightness, then contrast before or after HSV saturation/hue jitter (official ranges)."""
    image = image.astype(np.float32, copy=True)
    if _maybe(rng):
        image += rng.uniform(-32, 32)
    contrast_first = _maybe(rng)
    if contrast_first and _maybe(rng):
        image *= rng.uniform(0.5, 1.5)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)   # float: H in [0, 360), S in [0, 1]
    if _maybe(rng):
        hsv[:, :, 1] *= rng.uniform(0.5, 1.5)
    if _maybe(rng):
        hsv[:, :, 0] = np.mod(hsv[:, :, 0] + rng.uniform(-18, 18), 360.0)
    image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first and _maybe(rng):
        image *= rng.uniform(0.5, 1.5)
    return image


def expand(image, masks, boxes, rng, mean=MEANS_BGR):
    """With probability 1/2, place the image at a random spot of a canvas up to 4x larger,
    filled with the mean pixel (a zoom-out for small-object training)."""
    if _maybe(rng):
        return image, masks, boxes
    h, w, c = image.shape
    ratio = rng.uniform(1, 4)
    left = int(rng.uniform(0, w * ratio - w))
    top = int(rng.uniform(0, h * ratio - h))
    canvas = np.empty((int(h * ratio), int(w * ratio), c), dtype=image.dtype)
    canvas[:] = mean
    canvas[top:top + h, left:left + w] = image
    new_masks = np.zeros((masks.shape[0], canvas.shape[0], canvas.shape[1]), dtype=masks.dtype)
    new_masks[:, top:top + h, left:left + w] = masks
    boxes = boxes + np.array([left, top, left, top], dtype=boxes.dtype)
    return canvas, new_masks, boxes


def _iou_with_rect(boxes, rect):
    ix1 = np.maximum(boxes[:, 0], rect[0])
    iy1 = np.maximum(boxes[:, 1], rect[1])
    ix2 = np.minimum(boxes[:, 2], rect[2])
    iy2 = np.minimum(boxes[:, 3], rect[3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_r = (rect[2] - rect[0]) * (rect[3] - rect[1])
    return inter / np.maximum(area_b + area_r - inter, 1e-9)


_CROP_MODES = (None, (0.1, None), (0.3, None), (0.7, None), (0.9, None), (None, None))


def random_sample_crop(image, masks, boxes, labels, crowd, rng, max_modes=20):
    """SSD random crop: keep the whole image or cut a patch (0.3..1 of each side, aspect 1/2..2)
    that keeps every object whose box centre lies inside it, at least one of them not a crowd.

    The IoU constraint is evaluated the way the official code evaluates it (``min < lo and
    hi < max`` rejects almost nothing); the official authors kept it because "fixing" it halved mAP.
    The official loop retries forever; we give up after ``max_modes`` modes and keep the image.
    """
    h, w = image.shape[:2]
    for _ in range(max_modes):
        mode = _CROP_MODES[rng.integers(len(_CROP_MODES))]
        if mode is None:
            break
        lo = -np.inf if mode[0] is None else mode[0]
        hi = np.inf if mode[1] is None else mode[1]
        for _ in range(50):
            cw = rng.uniform(0.3 * w, w)
            ch = rng.uniform(0.3 * h, h)
            if ch / cw < 0.5 or ch / cw > 2:
                continue
            left = rng.uniform(0, w - cw)
            top = rng.uniform(0, h - ch)
            rect = np.array([int(left), int(top), int(left + cw), int(top + ch)])
            overlap = _iou_with_rect(boxes, rect)
            if overlap.min() < lo and hi < overlap.max():
                continue
            centers = (boxes[:, :2] + boxes[:, 2:]) / 2
            keep = ((rect[0] < centers[:, 0]) & (rect[1] < centers[:, 1]) &
                    (rect[2] > centers[:, 0]) & (rect[3] > centers[:, 1]))
            if not keep.any() or not (keep & ~crowd).any():
                continue
            new_boxes = boxes[keep].copy()
            new_boxes[:, :2] = np.maximum(new_boxes[:, :2], rect[:2]) - rect[:2]
            new_boxes[:, 2:] = np.minimum(new_boxes[:, 2:], rect[2:]) - rect[:2]
            return (image[rect[1]:rect[3], rect[0]:rect[2]],
                    masks[keep][:, rect[1]:rect[3], rect[0]:rect[2]],
                    new_boxes, labels[keep], crowd[keep])
    return image, masks, boxes, labels, crowd


def mirror(image, masks, boxes, rng):
    if _maybe(rng):
        w = image.shape[1]
        image = image[:, ::-1]
        masks = masks[:, :, ::-1]
        boxes = boxes.copy()
        boxes[:, 0::2] = w - boxes[:, 2::-2]
    return image, masks, boxes


def resize(image, masks, boxes, size: int):
    """Resize to ``size x size`` (bilinear; masks re-binarised) and scale the boxes."""
    h, w = image.shape[:2]
    image = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_LINEAR)
    if masks.shape[0]:
        # cv2 resizes up to 512 channels at once; go mask by mask to stay general.
        masks = np.stack([cv2.resize(np.ascontiguousarray(m), (size, size),
                                     interpolation=cv2.INTER_LINEAR) for m in masks])
    else:
        masks = np.zeros((0, size, size), dtype=np.uint8)
    boxes = boxes * np.array([size / w, size / h, size / w, size / h], dtype=np.float32)
    return image, masks, boxes


def ssd_augment(image, masks, boxes, labels, crowd, size: int, rng, *, min_box: float = 4.0,
                photometric=True, expand_=True, crop=True, flip=True):
    """The full training augmentation. Returns (image [S,S,3] float32 BGR, masks [N,S,S] uint8,
    boxes [N,4] float32 relative x1y1x2y2, labels, crowd) with boxes under ``min_box`` pixels (at
    the network size) dropped; crowds are kept as long as any box is kept."""
    image = image.astype(np.float32)
    boxes = boxes.astype(np.float32)
    if photometric:
        image = photometric_distort(image, rng)
    if expand_:
        image, masks, boxes = expand(image, masks, boxes, rng)
    if crop:
        image, masks, boxes, labels, crowd = random_sample_crop(image, masks, boxes, labels, crowd,
                                                                rng)
    if flip:
        image, masks, boxes = mirror(image, masks, boxes, rng)
    image, masks, boxes = resize(image, masks, boxes, size)
    # The official Resize compares pixel sizes with 4/550 (a no-op); we drop what is under 4 px.
    wh = boxes[:, 2:] - boxes[:, :2]
    keep = (wh[:, 0] > min_box) & (wh[:, 1] > min_box)
    boxes = np.clip(boxes[keep] / size, 0, 1).astype(np.float32)
    return image, masks[keep], boxes, labels[keep], crowd[keep]
