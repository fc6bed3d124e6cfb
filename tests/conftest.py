"""Shared fixtures: small random-but-lively models saved as checkpoints, and the bundled samples."""
from __future__ import annotations

import os

import pytest
import torch

from yolact_deploy.assets import sample_images
from yolact_deploy.checkpoint import save_checkpoint
from yolact_deploy.testing import make_test_model

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                                           'coco_mini'))


@pytest.fixture(scope='session')
def small_checkpoint(tmp_path_factory) -> str:
    """yolact_resnet50 at 256 px, saved in our checkpoint format."""
    path = str(tmp_path_factory.mktemp('ckpt') / 'small_resnet50.pth')
    save_checkpoint(path, make_test_model('yolact_resnet50', 256))
    return path


@pytest.fixture(scope='session')
def small_plus_checkpoint(tmp_path_factory) -> str:
    """yolact_plus_resnet50 (DCN + mask re-scoring) at 256 px."""
    path = str(tmp_path_factory.mktemp('ckpt') / 'small_plus_resnet50.pth')
    save_checkpoint(path, make_test_model('yolact_plus_resnet50', 256))
    return path


@pytest.fixture(scope='session')
def samples() -> list:
    return sample_images()
