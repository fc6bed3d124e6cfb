"""Prior (anchor) boxes, exactly as the official ``PredictionModule.make_priors``.

Priors are ``[cx, cy, w, h]`` relative to the image. Per feature-map cell the order is: aspect-ratio
group, then scale, then aspect ratio, and cells run row-major; this must match the head's output
layout. The arithmetic is done in float64 and cast to float32, as the official code builds a float32
tensor from Python floats.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import torch


def priors_per_cell(aspect_ratios: Sequence[Sequence[float]], scales: Sequence[float]) -> int:
    return sum(len(group) * len(scales) for group in aspect_ratios)


def _cell_sizes(backbone, level: int) -> list:
    """(w, h) of every prior of one cell of FPN level ``level``, relative to the image."""
    sizes = []
    for group in backbone.pred_aspect_ratios[level]:
        for scale in backbone.pred_scales[level]:
            for ar in group:
                if not backbone.preapply_sqrt:
                    ar = math.sqrt(ar)
                sizes.append((scale, ar))
    return sizes


def make_level_priors(config, level: int, conv_h: int, conv_w: int) -> np.ndarray:
    """Priors of one FPN level as a float32 array ``[conv_h * conv_w * n, 4]``."""
    backbone = config.backbone
    out = []
    for scale, ar in _cell_sizes(backbone, level):
        if backbone.use_pixel_scales:
            w = scale * ar / config.max_size
            h = scale / ar / config.max_size
        else:
            w = scale * ar / conv_w
            h = scale / ar / conv_h
        if backbone.use_square_anchors:  # official backward-compatibility bug, kept on purpose
            h = w
        out.append((w, h))
    wh = np.asarray(out, dtype=np.float64)                        # [n, 2]
    ys, xs = np.meshgrid((np.arange(conv_h) + 0.5) / conv_h, (np.arange(conv_w) + 0.5) / conv_w,
                         indexing='ij')
    centers = np.stack([xs.ravel(), ys.ravel()], axis=1)          # [h*w, 2], row-major cells
    n = wh.shape[0]
    priors = np.concatenate([np.repeat(centers, n, axis=0), np.tile(wh, (centers.shape[0], 1))],
                            axis=1)
    return priors.astype(np.float32)


def make_priors(config, feature_sizes: Sequence[Tuple[int, int]]) -> torch.Tensor:
    """All priors ``[num_priors, 4]`` for the given FPN feature-map sizes ``[(h, w), ...]``."""
    levels = [make_level_priors(config, i, h, w) for i, (h, w) in enumerate(feature_sizes)]
    return torch.from_numpy(np.concatenate(levels, axis=0))
