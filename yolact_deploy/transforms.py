"""The official inference preprocessing, in PyTorch (image files: :mod:`yolact_deploy.deploy.media`).

Official ``FastBaseTransform``: BGR uint8 image -> float -> bilinear resize (``align_corners=False``, no
antialiasing, aspect ratio not kept) to ``max_size x max_size`` -> per-channel normalisation in BGR
order -> BGR to RGB, channels first.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import MEANS_BGR, STD_BGR, YolactConfig
from .deploy.media import IMAGE_EXTENSIONS, load_image  # noqa: F401  (moved; kept importable here)
from .errors import InputError


def normalize_tensor(images: torch.Tensor, config: YolactConfig) -> torch.Tensor:
    """``[B, 3, H, W]`` float BGR (0..255) -> network input (normalised, RGB)."""
    if config.backbone.transform == 'normalize':
        mean = images.new_tensor(MEANS_BGR).view(1, 3, 1, 1)
        std = images.new_tensor(STD_BGR).view(1, 3, 1, 1)
        images = (images - mean) / std
    elif config.backbone.transform == 'to_float':
        images = images / 255
    else:
        raise ValueError(f'unknown transform {config.backbone.transform!r}')
    return images[:, [2, 1, 0]].contiguous()


def network_input(images: torch.Tensor, config: YolactConfig) -> torch.Tensor:
    """``[B, 3, H, W]`` float BGR (0..255), any H, W -> network input ``[B, 3, S, S]``.

    The one definition of the official ``FastBaseTransform`` after decoding: bilinear resize to
    ``max_size x max_size`` (half-pixel centres, no antialias, aspect ratio not kept), normalise, RGB.
    The PyTorch path (:func:`preprocess`) and the exported graph (``export/wrapper.py``) both call it.
    """
    size = (config.max_size, config.max_size)
    images = F.interpolate(images, size, mode='bilinear', align_corners=False)
    return normalize_tensor(images, config)


def preprocess(images: Sequence[np.ndarray], config: YolactConfig, device='cpu') -> torch.Tensor:
    """BGR uint8 images (any sizes) -> ``[B, 3, S, S]`` network input, exactly as the official code."""
    batch = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f'expected a BGR image [H, W, 3], got shape {tuple(image.shape)}')
        t = torch.from_numpy(np.ascontiguousarray(image)).to(device).float()
        batch.append(network_input(t.permute(2, 0, 1)[None], config))
    return torch.cat(batch, 0)
