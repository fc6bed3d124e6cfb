"""FPN, protonet, prediction head and mask re-scoring net (official names and wiring)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FPN(nn.Module):
    """Official YOLACT FPN: lateral 1x1 convs stored in reverse order, 3x3 pred convs with ReLU,
    extra levels from stride-2 3x3 convs on the last level (P6, P7)."""

    def __init__(self, in_channels, fpn_config):
        super().__init__()
        nf = fpn_config.num_features
        self.interpolation_mode = fpn_config.interpolation_mode
        self.relu_pred_layers = fpn_config.relu_pred_layers
        self.lat_layers = nn.ModuleList([nn.Conv2d(c, nf, 1) for c in reversed(in_channels)])
        padding = 1 if fpn_config.pad else 0
        self.pred_layers = nn.ModuleList([nn.Conv2d(nf, nf, 3, padding=padding) for _ in in_channels])
        if fpn_config.use_conv_downsample:
            self.downsample_layers = nn.ModuleList(
                [nn.Conv2d(nf, nf, 3, padding=1, stride=2) for _ in range(fpn_config.num_downsample)])
        else:
            self.downsample_layers = None
        self.num_downsample = fpn_config.num_downsample
        self.input_scales = tuple(float(x) for x in fpn_config.input_scales)
        if self.input_scales and len(self.input_scales) != len(in_channels):
            raise ValueError(f'fpn.input_scales has {len(self.input_scales)} entries for '
                             f'{len(in_channels)} backbone stages')

    def forward(self, convouts):
        if self.input_scales:
            convouts = [c * s for c, s in zip(convouts, self.input_scales)]
        n = len(convouts)
        out = [None] * n
        x = None
        for i, lat_layer in enumerate(self.lat_layers):
            j = n - 1 - i
            lateral = lat_layer(convouts[j])
            if x is None:
                x = lateral
            else:
                h, w = convouts[j].shape[-2:]
                x = F.interpolate(x, size=(h, w), mode=self.interpolation_mode,
                                  align_corners=False) + lateral
            out[j] = x
        for i, pred_layer in enumerate(self.pred_layers):
            j = n - 1 - i
            out[j] = pred_layer(out[j])
            if self.relu_pred_layers:
                out[j] = F.relu(out[j])
        if self.downsample_layers is not None:
            for layer in self.downsample_layers:
                out.append(layer(out[-1]))
        else:
            for _ in range(self.num_downsample):
                out.append(F.max_pool2d(out[-1], 1, stride=2))
        return out


class Interpolate(nn.Module):
    """Bilinear resize by a scale factor (the official ``InterpolateModule``; no parameters)."""

    def __init__(self, scale_factor):
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale_factor, mode='bilinear', align_corners=False)


def make_net(in_channels, spec, include_last_relu=True):
    """Official ``make_net``: (channels, kernel, kwargs) layers each followed by a ReLU; a negative
    kernel with channels None is a bilinear upsample. Returns (nn.Sequential, out_channels)."""
    layers = []
    for channels, kernel, kwargs in spec:
        kwargs = dict(kwargs)
        if kernel > 0:
            layers.append(nn.Conv2d(in_channels, channels, kernel, **kwargs))
        elif channels is None:
            layers.append(Interpolate(-kernel))
        else:
            layers.append(nn.ConvTranspose2d(in_channels, channels, -kernel, **kwargs))
        in_channels = channels if channels is not None else in_channels
        layers.append(nn.ReLU(inplace=True))
    if not include_last_relu:
        layers = layers[:-1]
    return nn.Sequential(*layers), in_channels


class PredictionModule(nn.Module):
    """Shared head: 3x3 conv + ReLU, then box, class and coefficient 3x3 convs."""

    def __init__(self, in_channels, head_channels, num_priors, num_classes, mask_dim):
        super().__init__()
        self.num_classes = num_classes
        self.mask_dim = mask_dim
        self.upfeature, out_channels = make_net(in_channels, ((head_channels, 3, (('padding', 1),)),))
        self.bbox_layer = nn.Conv2d(out_channels, num_priors * 4, 3, padding=1)
        self.conf_layer = nn.Conv2d(out_channels, num_priors * num_classes, 3, padding=1)
        self.mask_layer = nn.Conv2d(out_channels, num_priors * mask_dim, 3, padding=1)

    def forward(self, x):
        batch = x.shape[0]
        x = self.upfeature(x)
        loc = self.bbox_layer(x).permute(0, 2, 3, 1).reshape(batch, -1, 4)
        conf = self.conf_layer(x).permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes)
        coeffs = torch.tanh(self.mask_layer(x).permute(0, 2, 3, 1).reshape(batch, -1, self.mask_dim))
        return loc, conf, coeffs


class FastMaskIoUNet(nn.Module):
    """YOLACT++ mask re-scoring: predicts each class's mask IoU from a cropped mask."""

    def __init__(self, spec, num_classes):
        super().__init__()
        last = ((num_classes - 1, 1, ()),)
        self.maskiou_net, _ = make_net(1, tuple(spec) + last, include_last_relu=True)

    def forward(self, masks):
        x = self.maskiou_net(masks)
        return torch.amax(x, dim=(2, 3))
