"""Backbones with the official module names, so official state dicts load with strict matching.

ResNet (optionally with modulated deformable convs in the official "last N blocks, every k-th"
pattern) and DarkNet-53 follow dbolya/yolact's ``backbone.py``. Each backbone returns one feature map
per stage and exposes ``channels`` (per stage).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..ops.dcn import modulated_deform_conv2d, split_offset_mask
from ..ops.priors import priors_per_cell


class ModulatedDeformConv(nn.Module):
    """DCNv2 as in the official ``DCN`` module: parameters ``weight``, ``bias``, ``conv_offset_mask``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1,
                 deformable_groups=1):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        taps = deformable_groups * kernel_size * kernel_size
        self.conv_offset_mask = nn.Conv2d(in_channels, 3 * taps, kernel_size, stride=stride,
                                          padding=padding, bias=True)
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        # Zero offsets and mask logits: starts as a plain conv scaled by sigmoid(0) = 0.5.
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x):
        offset, mask = split_offset_mask(self.conv_offset_mask(x))
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride,
                                       self.padding, self.dilation)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, use_dcn=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        if use_dcn:
            self.conv2 = ModulatedDeformConv(planes, planes, 3, stride=stride, padding=1)
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


def uses_dcn(block_index: int, num_blocks: int, dcn_layers: int, dcn_interval: int) -> bool:
    """Official rule: the first block uses DCN only if the whole stage does; block i > 0 when it is
    among the last ``dcn_layers`` blocks and ``i`` is a multiple of ``dcn_interval``."""
    if block_index == 0:
        return dcn_layers >= num_blocks
    return block_index + dcn_layers >= num_blocks and block_index % dcn_interval == 0


class ResNetBackbone(nn.Module):
    def __init__(self, layers, dcn_layers=(0, 0, 0, 0), dcn_interval=1):
        super().__init__()
        self.layers = nn.ModuleList()
        self.channels = []
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            self._make_layer(planes, blocks, 1 if i == 0 else 2, dcn_layers[i], dcn_interval)

    def _make_layer(self, planes, blocks, stride, dcn_layers, dcn_interval):
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))
        modules = [Bottleneck(self.inplanes, planes, stride, downsample,
                              uses_dcn(0, blocks, dcn_layers, dcn_interval))]
        self.inplanes = planes * 4
        modules += [Bottleneck(self.inplanes, planes,
                               use_dcn=uses_dcn(i, blocks, dcn_layers, dcn_interval))
                    for i in range(1, blocks)]
        self.layers.append(nn.Sequential(*modules))
        self.channels.append(planes * 4)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


def darknet_conv(in_channels, out_channels, **kwargs):
    """Conv, BatchNorm, LeakyReLU(0.1), as the official ``darknetconvlayer``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, bias=False, **kwargs),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


class DarkNetBlock(nn.Module):
    expansion = 2

    def __init__(self, in_channels, channels):
        super().__init__()
        self.conv1 = darknet_conv(in_channels, channels, kernel_size=1)
        self.conv2 = darknet_conv(channels, channels * 2, kernel_size=3, padding=1)

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x


class DarkNetBackbone(nn.Module):
    def __init__(self, layers=(1, 2, 8, 8, 4)):
        super().__init__()
        self.layers = nn.ModuleList()
        self.channels = []
        self._preconv = darknet_conv(3, 32, kernel_size=3, padding=1)
        in_channels = 32
        for channels, blocks in zip((32, 64, 128, 256, 512), layers):
            stage = [darknet_conv(in_channels, channels * 2, kernel_size=3, padding=1, stride=2)]
            in_channels = channels * 2
            stage += [DarkNetBlock(in_channels, channels) for _ in range(blocks)]
            self.layers.append(nn.Sequential(*stage))
            self.channels.append(in_channels)

    def forward(self, x):
        x = self._preconv(x)
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


_BUILDERS = {}


def register_backbone(kind, builder, downsamples):
    """Registers a backbone kind: ``builder(backbone_config) -> nn.Module`` and
    ``downsamples(backbone_config) -> [stride-2 layers per stage]``."""
    _BUILDERS[kind] = (builder, downsamples)


register_backbone('resnet', lambda b: ResNetBackbone(b.layers, b.dcn_layers, b.dcn_interval),
                  lambda b: [2] + [1] * (len(b.layers) - 1))
register_backbone('darknet', lambda b: DarkNetBackbone(b.layers), lambda b: [1] * len(b.layers))


def _lookup(kind):
    if kind not in _BUILDERS:
        raise ConfigError(f"unknown backbone kind '{kind}'; known: {', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[kind]


def build_backbone(backbone_config) -> nn.Module:
    return _lookup(backbone_config.kind)[0](backbone_config)


def stage_downsamples(backbone_config) -> list:
    """Number of stride-2 layers in each backbone stage (for computing feature-map sizes)."""
    return _lookup(backbone_config.kind)[1](backbone_config)


# Feature-map geometry: what the backbone and FPN make of an input size (the priors are laid on it).

def feature_map_sizes(config, img_h: int, img_w: int) -> list:
    """FPN level sizes ``[(h, w), ...]`` for an input size, without running the network.

    Every stride-2 layer of the supported backbones (convs with 'same' padding, the 3x3 max-pool with
    padding 1) maps a size ``s`` to ``ceil(s / 2)``.
    """
    h, w = img_h, img_w
    sizes = []
    for stage, downsamples in enumerate(stage_downsamples(config.backbone)):
        for _ in range(downsamples):
            h, w = -(-h // 2), -(-w // 2)
        if stage in config.backbone.selected_layers:
            sizes.append((h, w))
    for _ in range(config.fpn.num_downsample):
        h, w = -(-h // 2), -(-w // 2)
        sizes.append((h, w))
    return sizes


def num_priors(config, img_h: int = None, img_w: int = None) -> int:
    """Number of priors for an input size (the network's ``max_size`` by default)."""
    img_h = img_h or config.max_size
    img_w = img_w or config.max_size
    sizes = feature_map_sizes(config, img_h, img_w)
    b = config.backbone
    return sum(h * w * priors_per_cell(b.pred_aspect_ratios[i], b.pred_scales[i])
               for i, (h, w) in enumerate(sizes))
