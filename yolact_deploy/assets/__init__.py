"""Files shipped inside the package: sample images and the bundled default model."""
from __future__ import annotations

import glob
import os

from ..errors import YolactError

ASSETS_DIR = os.path.dirname(os.path.abspath(__file__))
SAMPLES_DIR = os.path.join(ASSETS_DIR, 'samples')
SAMPLE_ANNOTATIONS = os.path.join(SAMPLES_DIR, 'instances_val2017_tiny8.json')
DEFAULT_WEIGHTS_NAME = 'yolact_lite0_coco_mini.pth'


def sample_images() -> list:
    return sorted(glob.glob(os.path.join(SAMPLES_DIR, '*.jpg')))


def default_sample() -> str:
    """A bundled real photo (COCO val2017 000000311002: people playing baseball)."""
    return os.path.join(SAMPLES_DIR, '000000311002.jpg')


def default_weights() -> str:
    path = os.path.join(ASSETS_DIR, DEFAULT_WEIGHTS_NAME)
    if not os.path.exists(path):
        raise YolactError(f'the bundled model {DEFAULT_WEIGHTS_NAME} is missing from this install; '
                          'pass --weights')
    return path
