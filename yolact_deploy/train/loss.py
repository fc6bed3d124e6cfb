"""YOLACT / YOLACT++ training losses (papers' formulation, official normalisation).

- box: smooth-L1 on encoded offsets of positive priors, weight ``bbox_alpha`` (1.5);
- class: softmax cross-entropy on positives plus the hardest negatives, 3 per positive (OHEM),
  weight ``conf_alpha`` (1);
- mask: BCE of the assembled (proto x coefficients, sigmoid) masks against the ground truth at
  prototype resolution, cropped by the ground-truth box and normalised by the box area, weight
  ``mask_alpha`` (6.125);
- semantic segmentation (training only): per-class BCE on P3, weight 1;
- mask IoU (YOLACT++): smooth-L1 between the re-scoring net's prediction and the real IoU of each
  predicted mask, weight ``maskiou_alpha``.

Box, class, mask and mask-IoU losses are divided by the number of positives in the batch, the
semantic loss by the batch size, as in the official code.
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F

from ..ops.boxes import center_size, crop
from .match import match


def ohem_conf_loss(conf: torch.Tensor, conf_t: torch.Tensor, negpos_ratio: int = 3):
    """conf ``[B, P, C]`` logits, conf_t ``[B, P]`` in {-1, 0, 1..}. Returns (summed loss,
    positive mask, selected-negative mask)."""
    pos = conf_t > 0
    with torch.no_grad():
        # Rank background priors by how wrong they are: -log softmax(background).
        bg_loss = torch.logsumexp(conf, -1) - conf[..., 0]
        bg_loss[pos] = 0
        bg_loss[conf_t < 0] = 0
        order = bg_loss.argsort(1, descending=True)
        rank = order.argsort(1)
        num_neg = torch.clamp(negpos_ratio * pos.sum(1, keepdim=True), max=conf.shape[1] - 1)
        neg = (rank < num_neg) & ~pos & (conf_t >= 0)
    keep = pos | neg
    loss = F.cross_entropy(conf[keep].float(), conf_t[keep], reduction='sum')
    return loss, pos, neg


def semantic_segmentation_loss(segm: torch.Tensor, masks: List[torch.Tensor],
                               labels: List[torch.Tensor]) -> torch.Tensor:
    """segm ``[B, C-1, h, w]`` logits; per image, targets are the union of its (non-crowd)
    ground-truth masks per class, downsampled (bilinear, > 0.5)."""
    batch, _, h, w = segm.shape
    total = segm.new_zeros(())
    for b in range(batch):
        target = torch.zeros_like(segm[b])
        if masks[b].shape[0]:
            with torch.no_grad():
                small = F.interpolate(masks[b][None].float(), (h, w), mode='bilinear',
                                      align_corners=False)[0].gt(0.5).to(segm.dtype)
                for m, c in zip(small, labels[b]):
                    target[c] = torch.max(target[c], m)
        total = total + F.binary_cross_entropy_with_logits(segm[b].float(), target.float(),
                                                           reduction='sum')
    return total / (h * w)


def mask_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of binary masks ``[N, h, w]`` pairwise along N."""
    inter = (pred * target).sum((1, 2))
    union = pred.sum((1, 2)) + target.sum((1, 2)) - inter
    return inter / union.clamp(min=1e-6)


class YolactLoss:
    """Computes the loss dict for a training batch.

    ``targets``: per image dicts with ``boxes [N, 4]`` relative x1y1x2y2 (crowds last), ``labels
    [N]``, ``masks [N, H, W]`` (input resolution, 0/1), ``num_crowds``.
    """

    def __init__(self, config):
        self.cfg = config

    def match_batch(self, priors, targets):
        cfg = self.cfg
        loc_t, conf_t, idx_t = [], [], []
        for t in targets:
            n = t['boxes'].shape[0] - t['num_crowds']
            crowd = t['boxes'][n:] if t['num_crowds'] else None
            loc, conf, idx = match(t['boxes'][:n], t['labels'][:n], priors,
                                   pos_thresh=cfg.positive_iou_threshold,
                                   neg_thresh=cfg.negative_iou_threshold,
                                   crowd_boxes=crowd, crowd_thresh=cfg.crowd_iou_threshold)
            loc_t.append(loc)
            conf_t.append(conf)
            idx_t.append(idx)
        return torch.stack(loc_t), torch.stack(conf_t), torch.stack(idx_t)

    def __call__(self, out: Dict[str, torch.Tensor], targets: List[dict], net=None) -> Dict[str, torch.Tensor]:
        cfg = self.cfg
        loc, conf, coeffs, priors, proto = out['loc'], out['conf'], out['mask'], out['priors'], out['proto']
        batch = loc.shape[0]
        with torch.no_grad():
            loc_t, conf_t, idx_t = self.match_batch(priors, targets)
        pos = conf_t > 0
        num_pos = pos.sum().clamp(min=1).float()
        losses = {}
        losses['B'] = F.smooth_l1_loss(loc[pos].float(), loc_t[pos], reduction='sum') * cfg.bbox_alpha
        conf_loss, _, _ = ohem_conf_loss(conf, conf_t, cfg.ohem_negpos_ratio)
        losses['C'] = conf_loss * cfg.conf_alpha
        mask_loss, iou_inputs = self.mask_loss(pos, idx_t, coeffs, proto, targets)
        losses['M'] = mask_loss
        if cfg.use_maskiou and net is not None:
            if iou_inputs is not None:
                inputs, iou_t, labels = iou_inputs
                pred = net.maskiou_net(inputs)
                pred = pred.gather(1, labels[:, None]).view(-1)
                losses['I'] = F.smooth_l1_loss(pred.float(), iou_t, reduction='sum') * cfg.maskiou_alpha
            else:
                losses['I'] = proto.new_zeros(())
        for k in list(losses):
            losses[k] = losses[k] / num_pos
        if cfg.use_semantic_segmentation_loss and 'segm' in out:
            n_real = [t['boxes'].shape[0] - t['num_crowds'] for t in targets]
            losses['S'] = semantic_segmentation_loss(
                out['segm'], [t['masks'][:n] for t, n in zip(targets, n_real)],
                [t['labels'][:n] for t, n in zip(targets, n_real)]) \
                * cfg.semantic_segmentation_alpha / batch
        return losses

    def mask_loss(self, pos, idx_t, coeffs, proto, targets):
        cfg = self.cfg
        _, hp, wp, _ = proto.shape
        total = proto.new_zeros((), dtype=torch.float32)
        iou_in, iou_t, iou_labels = [], [], []
        for b, t in enumerate(targets):
            n = t['boxes'].shape[0] - t['num_crowds']
            pos_idx = pos[b].nonzero().squeeze(1)
            if n == 0 or pos_idx.numel() == 0:
                continue
            with torch.no_grad():
                gt = F.interpolate(t['masks'][:n][None].float(), (hp, wp), mode='bilinear',
                                   align_corners=False)[0].gt(0.5).float()
            total_pos = pos_idx.numel()
            if total_pos > cfg.masks_to_train:
                pos_idx = pos_idx[torch.randperm(total_pos, device=pos_idx.device)[:cfg.masks_to_train]]
            gt_idx = idx_t[b, pos_idx]
            gt_boxes = t['boxes'][:n][gt_idx]                          # [K, 4]
            logits = (proto[b].reshape(hp * wp, -1) @ coeffs[b, pos_idx].t()).float()
            logits = logits.t().reshape(-1, hp, wp)                    # [K, hp, wp]
            keep = crop(torch.ones_like(logits), gt_boxes) > 0
            target = gt[gt_idx]
            # = BCE(crop(sigmoid(logits))) of the official code: a cropped-away pixel predicts 0,
            # which costs 100 (PyTorch's log clamp) where the target is 1; inside the box the
            # logits form is used because it is stable and never raises on a diverged value.
            bce = torch.where(keep, F.binary_cross_entropy_with_logits(logits, target, reduction='none'),
                              100.0 * target).sum((1, 2))
            pred = torch.sigmoid(logits) * keep
            if cfg.mask_proto_normalize_emulate_roi_pooling:
                wh = center_size(gt_boxes)[:, 2:] * gt_boxes.new_tensor([wp, hp])
                bce = bce / (wh[:, 0] * wh[:, 1]).clamp(min=1e-6)
            else:
                bce = bce / (hp * wp)
            if total_pos > pos_idx.numel():   # subsampled: rescale to the full count
                bce = bce * (total_pos / pos_idx.numel())
            total = total + bce.sum()
            if cfg.use_maskiou:
                labels = t['labels'][:n][gt_idx]
                sel = target.sum((1, 2)) > cfg.discard_mask_area
                if sel.any():
                    # The re-scoring net learns to judge masks; it does not push the masks.
                    iou_in.append(pred[sel].detach()[:, None])
                    iou_t.append(mask_iou(pred[sel].detach().gt(0.5).float(), target[sel]))
                    iou_labels.append(labels[sel])
        iou = (torch.cat(iou_in), torch.cat(iou_t), torch.cat(iou_labels)) if iou_in else None
        return total * cfg.mask_alpha, iou
