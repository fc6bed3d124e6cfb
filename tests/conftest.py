"""Shared fixtures: small random-but-lively models saved as checkpoints, and the bundled samples."""
from __future__ import annotations

import os

import pytest
import torch

from yolact_deploy import config
from yolact_deploy.assets import default_sample, sample_images
from yolact_deploy.checkpoint import save_checkpoint
from yolact_deploy.model import Yolact
from yolact_deploy.testing import lively_random_init
from yolact_deploy.transforms import load_image, preprocess

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                                           'coco_mini'))


def make_model(preset: str = 'yolact_resnet50', max_size: int = 256, seed: int = 0) -> Yolact:
    """A small-input model of an official preset with lively random weights (eval mode)."""
    cfg = config.get_preset(preset).replace(max_size=max_size)
    example = preprocess([load_image(default_sample())], cfg)
    torch.manual_seed(seed)
    return lively_random_init(Yolact(cfg).eval(), seed=seed, example=example)


@pytest.fixture(scope='session')
def small_checkpoint(tmp_path_factory) -> str:
    """yolact_resnet50 at 256 px, saved in our checkpoint format."""
    path = str(tmp_path_factory.mktemp('ckpt') / 'small_resnet50.pth')
    save_checkpoint(path, make_model('yolact_resnet50', 256))
    return path


@pytest.fixture(scope='session')
def small_plus_checkpoint(tmp_path_factory) -> str:
    """yolact_plus_resnet50 (DCN + mask re-scoring) at 256 px."""
    path = str(tmp_path_factory.mktemp('ckpt') / 'small_plus_resnet50.pth')
    save_checkpoint(path, make_model('yolact_plus_resnet50', 256))
    return path


@pytest.fixture(scope='session')
def samples() -> list:
    return sample_images()
