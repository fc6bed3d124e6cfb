from .backbones import build_backbone, register_backbone, stage_downsamples
from .yolact import Yolact

__all__ = ['Yolact', 'build_backbone', 'register_backbone', 'stage_downsamples']
