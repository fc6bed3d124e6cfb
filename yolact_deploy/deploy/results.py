"""Result JSON, one writer for every tool: COCO results (yolact-infer --save-json, yolact-eval) and the
service's per-image layout (yolact-serve, the same as the C++ service's engines/src/results.cpp).
Masks are COCO RLE, written by :meth:`ImageDetections.mask_rle` from each box-cropped mask."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np


def encode_rle(mask: np.ndarray) -> dict:
    """``[H, W]`` bool mask -> COCO RLE ``{'size': [H, W], 'counts': str}``."""
    from pycocotools import mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


def _box(det, i: int):
    x1, y1, x2, y2 = (int(v) for v in det.boxes[i])
    return x1, y1, x2, y2


def coco_results(det, image_id: int, category_ids: Sequence[int]) -> List[dict]:
    """COCO results (one bbox and one segm entry per detection, RLE masks), as the official
    ``--output_coco_json`` writes them: bbox with the box score, segm with the mask score."""
    out = []
    for i in range(len(det)):
        x1, y1, x2, y2 = _box(det, i)
        if (x2 - x1) * (y2 - y1) <= 0:
            continue
        cat = int(category_ids[int(det.classes[i])])
        out.append({'image_id': int(image_id), 'category_id': cat,
                    'bbox': [x1, y1, x2 - x1, y2 - y1], 'score': float(det.scores[i])})
        out.append({'image_id': int(image_id), 'category_id': cat,
                    'segmentation': det.mask_rle(i), 'score': float(det.mask_scores[i])})
    return out


def detections_json(det, height: int, width: int, category_ids, masks: bool) -> dict:
    """One image's result in the service's layout."""
    out = []
    labels = det.labels()
    for i in range(len(det)):
        x1, y1, x2, y2 = _box(det, i)
        cls = int(det.classes[i])
        entry = {'class_id': cls,
                 'category_id': int(category_ids[cls]) if 0 <= cls < len(category_ids) else None,
                 'label': labels[i], 'score': float(det.scores[i]),
                 'mask_score': float(det.mask_scores[i]), 'box': [x1, y1, x2, y2],
                 'bbox': [x1, y1, x2 - x1, y2 - y1]}
        if masks:
            entry['mask'] = det.mask_rle(i)  # from the box-cropped mask
        out.append(entry)
    return {'width': int(width), 'height': int(height), 'detections': out}
