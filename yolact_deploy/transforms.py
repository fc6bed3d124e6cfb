"""Image loading and the official inference preprocessing.

Official ``FastBaseTransform``: BGR uint8 image -> float -> bilinear resize (``align_corners=False``, no
antialiasing, aspect ratio not kept) to ``max_size x max_size`` -> per-channel normalisation in BGR
order -> BGR to RGB, channels first.
"""
from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .config import MEANS_BGR, STD_BGR, YolactConfig
from .errors import InputError
from .imageheader import jpeg_truncated

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def load_image(path: str) -> np.ndarray:
    """Reads an image as BGR uint8 ``[H, W, 3]`` (grayscale and alpha are converted)."""
    if not os.path.exists(path):
        raise InputError(f'image not found: {path}')
    if os.path.isdir(path):
        raise InputError(f'expected an image file, got a directory: {path}')
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f'cannot read image {path}: {exc.strerror}') from None
    if jpeg_truncated(data):  # decodable, but the lower part would be made-up grey
        raise InputError(f'truncated JPEG (no end-of-image marker after its last scan): {path}')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f'cannot decode image (not an image or corrupt): {path}')
    return image


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


def preprocess(images: Sequence[np.ndarray], config: YolactConfig, device='cpu') -> torch.Tensor:
    """BGR uint8 images (any sizes) -> ``[B, 3, S, S]`` network input, exactly as the official code."""
    size = (config.max_size, config.max_size)
    batch = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f'expected a BGR image [H, W, 3], got shape {tuple(image.shape)}')
        t = torch.from_numpy(np.ascontiguousarray(image)).to(device).float()
        t = t.permute(2, 0, 1)[None]
        batch.append(F.interpolate(t, size, mode='bilinear', align_corners=False))
    return normalize_tensor(torch.cat(batch, 0), config)
