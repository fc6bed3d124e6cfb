from .backbones import build_backbone, register_backbone, stage_downsamples
from .yolact import Yolact
from . import efficientnet_lite  # noqa: F401  (registers the 'efficientnet_lite' backbone)

__all__ = ['Yolact', 'build_backbone', 'register_backbone', 'stage_downsamples']
