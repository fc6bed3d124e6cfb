"""From fixed-size detections at prototype resolution to final per-image results.

This is the last step of the official evaluation path (``layers/output_utils.postprocess``) and is
shared by every backend (PyTorch, ONNX Runtime, TensorRT): it takes the engine-contract outputs as
numpy arrays, so no backend needs PyTorch for it.

- keep detections whose (box) score is ``> score_threshold`` (strict, as official);
- boxes: relative -> pixels, ordered, clamped to the image, truncated to integers;
- masks: bilinear resize (half-pixel centres, like ``F.interpolate(align_corners=False)``) of the cropped
  probabilities to the image size, then ``> 0.5``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np


@dataclass
class ImageDetections:
    """Final detections of one image, sorted by box score (descending)."""

    boxes: np.ndarray          # [n, 4] int32, x1 y1 x2 y2 in pixels
    classes: np.ndarray        # [n] int64, 0-based index into class_names
    scores: np.ndarray         # [n] float32, box score
    mask_scores: np.ndarray    # [n] float32, YOLACT++ re-scored mask score (== scores otherwise)
    masks: np.ndarray          # [n, H, W] bool
    class_names: Sequence[str] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def labels(self) -> List[str]:
        return [self.class_names[c] if 0 <= c < len(self.class_names) else str(c)
                for c in self.classes]

    def to_coco(self, image_id: int, category_ids: Sequence[int]) -> List[dict]:
        """COCO results (one bbox and one segm entry per detection, RLE masks), as the official
        ``--output_coco_json`` writes them: bbox with the box score, segm with the mask score."""
        from pycocotools import mask as mask_util
        out = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (int(v) for v in self.boxes[i])
            if (x2 - x1) * (y2 - y1) <= 0:
                continue
            cat = int(category_ids[int(self.classes[i])])
            out.append({'image_id': int(image_id), 'category_id': cat,
                        'bbox': [x1, y1, x2 - x1, y2 - y1], 'score': float(self.scores[i])})
            rle = mask_util.encode(np.asfortranarray(self.masks[i].astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            out.append({'image_id': int(image_id), 'category_id': cat, 'segmentation': rle,
                        'score': float(self.mask_scores[i])})
        return out


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize ``[n, h, w]`` float masks to ``[n, height, width]`` (half-pixel centres)."""
    n = masks.shape[0]
    if n == 0:
        return np.zeros((0, height, width), np.float32)
    out = np.empty((n, height, width), np.float32)
    step = 128  # OpenCV 5 handles at most 128 channels per call (OpenCV 4: 512)
    for start in range(0, n, step):
        chunk = np.ascontiguousarray(masks[start:start + step].transpose(1, 2, 0), np.float32)
        resized = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
        out[start:start + step] = resized.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def sanitize_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    x1, x2 = boxes[:, 0] * width, boxes[:, 2] * width
    y1, y2 = boxes[:, 1] * height, boxes[:, 3] * height
    out = np.stack([np.clip(np.minimum(x1, x2), 0, None), np.clip(np.minimum(y1, y2), 0, None),
                    np.clip(np.maximum(x1, x2), None, width), np.clip(np.maximum(y1, y2), None, height)],
                   axis=1)
    return np.trunc(out).astype(np.int32)


def finalize(outputs: Dict[str, np.ndarray], image_sizes: Sequence[Tuple[int, int]],
             class_names: Sequence[str], score_threshold: float = 0.0,
             top_k: Optional[int] = None) -> List[ImageDetections]:
    """Engine-contract outputs (batched numpy) -> one :class:`ImageDetections` per image.

    ``outputs`` needs ``num_detections [B]``, ``boxes [B,K,4]`` (relative), ``scores [B,K]``,
    ``classes [B,K]``, ``masks [B,K,Hp,Wp]`` and optionally ``mask_scores [B,K]``.
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
        masks = resize_masks(np.asarray(outputs['masks'][b, keep], np.float32), height, width)
        results.append(ImageDetections(
            boxes=sanitize_boxes(boxes, height, width),
            classes=np.asarray(outputs['classes'][b, keep]).astype(np.int64),
            scores=scores[keep], mask_scores=mask_scores[keep], masks=masks > 0.5,
            class_names=tuple(class_names)))
    return results
