"""Drawing detections: translucent masks, boxes, class names and scores."""
from __future__ import annotations

import cv2
import numpy as np

from .postprocess import ImageDetections

# Distinct BGR colours (cycled per detection).
_PALETTE = np.array([
    (244, 67, 54), (233, 30, 99), (156, 39, 176), (103, 58, 183), (63, 81, 181), (33, 150, 243),
    (3, 169, 244), (0, 188, 212), (0, 150, 136), (76, 175, 80), (139, 195, 74), (205, 220, 57),
    (255, 235, 59), (255, 193, 7), (255, 152, 0), (255, 87, 34), (121, 85, 72), (158, 158, 158),
    (96, 125, 139)], dtype=np.uint8)[:, ::-1]


def color(i: int) -> tuple:
    return tuple(int(c) for c in _PALETTE[(i * 5) % len(_PALETTE)])


def draw_detections(image: np.ndarray, dets: ImageDetections, mask_alpha: float = 0.45,
                    draw_boxes: bool = True, draw_text: bool = True) -> np.ndarray:
    """Returns a copy of the BGR image with the detections drawn (lowest score drawn first)."""
    out = image.astype(np.float32)
    order = np.argsort(-dets.mask_scores, kind='stable')[::-1]
    crops = dets.mask_crops  # blend inside each mask's box only
    for i in order:
        (y, x), m = crops.offsets[i], crops.bitmaps[i]
        region = out[y:y + m.shape[0], x:x + m.shape[1]]
        region[m] = region[m] * (1 - mask_alpha) + np.array(color(int(i)), np.float32) * mask_alpha
    out = np.clip(out, 0, 255).astype(np.uint8)
    labels = dets.labels()
    for i in order:
        x1, y1, x2, y2 = (int(v) for v in dets.boxes[i])
        c = color(int(i))
        if draw_boxes:
            cv2.rectangle(out, (x1, y1), (x2, y2), c, 1)
        if draw_text:
            text = f'{labels[i]}: {dets.mask_scores[i]:.2f}'
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 0.5, 1)
            y_text = max(y1, th + 4)
            x_text = max(0, min(x1, out.shape[1] - tw))  # keep the label inside the image
            cv2.rectangle(out, (x_text, y_text - th - 4), (x_text + tw, y_text), c, -1)
            cv2.putText(out, text, (x_text, y_text - 3), cv2.FONT_HERSHEY_DUPLEX, 0.5, (255, 255, 255),
                        1, cv2.LINE_AA)
    return out
