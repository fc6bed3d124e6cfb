"""The YOLACT / YOLACT++ network with the official parameter names."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import YolactConfig
from ..errors import ConfigError
from ..ops.boxes import decode
from ..ops.masks import assemble_masks
from ..ops.nms import Detections, clamp_index, fast_nms
from ..ops.priors import make_priors, priors_per_cell
from .backbones import build_backbone, feature_map_sizes
from .heads import FPN, FastMaskIoUNet, PredictionModule, make_net


def check_input_size(config: YolactConfig) -> None:
    """YOLACT++'s re-scoring net has five unpadded stride-2 3x3 convs: it needs prototypes of at least
    63x63 pixels, i.e. an input of at least 249 px for the official layouts."""
    if config.use_maskiou:
        proto = 2 * min(feature_map_sizes(config, config.max_size, config.max_size)[0])
        if proto < 63:
            raise ConfigError(f"preset '{config.name}' with max_size {config.max_size} gives "
                              f'{proto}x{proto} prototypes; mask re-scoring needs at least 63x63 '
                              '(max_size >= 249)')


class Yolact(nn.Module):
    """YOLACT network.

    ``forward`` returns the raw head outputs as a dict:

    - ``loc`` ``[B, N, 4]`` box regressions, ``conf`` ``[B, N, C]`` class scores (softmax in eval mode,
      logits in training mode; column 0 is background), ``mask`` ``[B, N, D]`` tanh coefficients,
      ``priors`` ``[N, 4]``, ``proto`` ``[B, Hp, Wp, D]`` prototypes (channels last, after ReLU);
    - in training mode also ``segm`` ``[B, C-1, H3, W3]`` semantic-segmentation logits.

    :meth:`detect` turns them into fixed-size final detections (Fast NMS, masks, re-scoring).
    """

    def __init__(self, config: YolactConfig):
        super().__init__()
        self.config = config
        check_input_size(config)
        self.backbone = build_backbone(config.backbone)
        src_channels = [self.backbone.channels[i] for i in config.backbone.selected_layers]
        self.fpn = FPN(src_channels, config.fpn)
        nf = config.fpn.num_features
        self.proto_net, mask_dim = make_net(nf, config.proto_net, include_last_relu=False)
        b = config.backbone
        self.num_levels = len(b.selected_layers) + config.fpn.num_downsample
        counts = [priors_per_cell(b.pred_aspect_ratios[i], b.pred_scales[i])
                  for i in range(self.num_levels)]
        if config.share_prediction_module:
            if len(set(counts)) != 1:
                raise ValueError('a shared prediction module needs the same prior count per level')
            heads = [PredictionModule(nf, config.extra_head_channels, counts[0], config.num_classes,
                                      mask_dim)]
        else:
            heads = [PredictionModule(nf, config.extra_head_channels, n, config.num_classes, mask_dim)
                     for n in counts]
        self.prediction_layers = nn.ModuleList(heads)
        if config.use_semantic_segmentation_loss:
            self.semantic_seg_conv = nn.Conv2d(nf, config.num_classes - 1, kernel_size=1)
        if config.use_maskiou:
            self.maskiou_net = FastMaskIoUNet(config.maskiou_net, config.num_classes)
        self._prior_cache: Dict[tuple, torch.Tensor] = {}

    # -- network -----------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Backbone + FPN: the FPN levels P3..P7."""
        outs = self.backbone(x)
        return self.fpn([outs[i] for i in self.config.backbone.selected_layers])

    def priors_for(self, sizes, device) -> torch.Tensor:
        key = (tuple(sizes), str(device))
        if key not in self._prior_cache:
            self._prior_cache[key] = make_priors(self.config, sizes).to(device)
        return self._prior_cache[key]

    def heads(self, fpn_outs: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Protonet and prediction heads on the FPN levels (raw, pre-softmax ``conf``)."""
        proto = F.relu(self.proto_net(fpn_outs[self.config.proto_src]))
        locs, confs, coeffs = [], [], []
        for level, feat in enumerate(fpn_outs):
            head = self.prediction_layers[0 if self.config.share_prediction_module else level]
            loc, conf, coeff = head(feat)
            locs.append(loc)
            confs.append(conf)
            coeffs.append(coeff)
        sizes = [tuple(f.shape[-2:]) for f in fpn_outs]
        return {'loc': torch.cat(locs, 1), 'conf': torch.cat(confs, 1),
                'mask': torch.cat(coeffs, 1), 'priors': self.priors_for(sizes, proto.device),
                'proto': proto.permute(0, 2, 3, 1).contiguous()}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        fpn_outs = self.features(x)
        out = self.heads(fpn_outs)
        if self.training:
            if self.config.use_semantic_segmentation_loss:
                out['segm'] = self.semantic_seg_conv(fpn_outs[0])
        else:
            out['conf'] = F.softmax(out['conf'], -1)
        return out

    # -- detection ---------------------------------------------------------------------------
    def detect(self, raw: Dict[str, torch.Tensor], *, cross_class: bool = False,
               max_detections: Optional[int] = None, crop_masks: bool = True) -> Dict[str, torch.Tensor]:
        """Fast NMS, mask assembly and (YOLACT++) mask re-scoring at prototype resolution.

        Returns fixed-size tensors (the engine contract): ``num_detections [B]``, ``boxes [B,K,4]``
        (relative x1y1x2y2), ``scores [B,K]`` (box scores), ``mask_scores [B,K]`` (re-scored for
        YOLACT++, else equal to ``scores``), ``classes [B,K]`` (-1 pads), ``indices [B,K]`` (prior
        index), ``masks [B,K,Hp,Wp]`` (cropped mask probabilities, zero for pads).
        """
        cfg = self.config
        k = max_detections or cfg.max_num_detections
        boxes = decode(raw['loc'], raw['priors'])
        dets: Detections = fast_nms(boxes, raw['conf'][..., 1:], conf_thresh=cfg.nms_conf_thresh,
                                    iou_threshold=cfg.nms_thresh, top_k=cfg.nms_top_k,
                                    max_detections=k, cross_class=cross_class)
        idx = clamp_index(dets.indices, low=0)
        coeffs = torch.gather(raw['mask'], 1, idx[..., None].expand(-1, -1, raw['mask'].shape[-1]))
        valid = (dets.classes >= 0).to(coeffs.dtype)
        masks = assemble_masks(raw['proto'], coeffs, dets.boxes, crop_masks=crop_masks)
        masks = masks * valid[..., None, None]
        mask_scores = dets.scores
        if cfg.use_maskiou and cfg.rescore_mask:
            mask_scores = dets.scores * self.mask_iou(masks, dets.classes)
        return {'num_detections': dets.num_detections, 'boxes': dets.boxes, 'scores': dets.scores,
                'mask_scores': mask_scores, 'classes': dets.classes, 'indices': dets.indices,
                'masks': masks}

    def mask_iou(self, masks: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Predicted mask IoU of each detection for its own class: masks ``[B,K,Hp,Wp]``."""
        batch, k, hp, wp = masks.shape
        iou = self.maskiou_net(masks.reshape(batch * k, 1, hp, wp)).reshape(batch, k, -1)
        return torch.gather(iou, 2, clamp_index(classes, low=0)[..., None]).squeeze(-1)
