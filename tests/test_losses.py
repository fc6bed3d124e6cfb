"""Matching and loss functions on constructed cases."""
from __future__ import annotations

import math

import pytest
import torch

from yolact_deploy import config
from yolact_deploy.ops.boxes import center_size
from yolact_deploy.train import YolactLoss, lr_at, mask_iou, match, ohem_conf_loss
from yolact_deploy.train.loss import semantic_segmentation_loss


def grid_priors(n=8, size=0.25):
    """n x n priors of side ``size`` centred on a regular grid (cx, cy, w, h)."""
    c = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    cy, cx = torch.meshgrid(c, c, indexing='ij')
    return torch.stack([cx.flatten(), cy.flatten(), torch.full((n * n,), size),
                        torch.full((n * n,), size)], 1)


def test_match_thresholds_and_forced_best_prior():
    priors = torch.tensor([[0.25, 0.25, 0.5, 0.5],     # equals truth 0
                           [0.30, 0.25, 0.5, 0.5],     # shifted: IoU 0.667 with truth 0
                           [0.45, 0.25, 0.5, 0.5],     # IoU ~0.43: neutral
                           [0.75, 0.75, 0.5, 0.5],     # far from truth 0, close to nothing
                           [0.90, 0.10, 0.05, 0.05]])  # best prior of the tiny truth 1 (low IoU)
    truths = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.80, 0.0, 1.0, 0.2]])
    labels = torch.tensor([3, 7])
    loc, conf, idx = match(truths, labels, priors, pos_thresh=0.5, neg_thresh=0.4)
    assert conf.tolist() == [4, 4, -1, 0, 8]       # labels + 1; truth 1 forced onto prior 4
    assert idx[4] == 1
    assert torch.allclose(loc[0], torch.zeros(4), atol=1e-6)   # perfect prior: zero offsets


def test_match_crowd_priors_are_ignored():
    priors = grid_priors(4, 0.25)
    truths = torch.tensor([[0.0, 0.0, 0.25, 0.25]])
    crowd = torch.tensor([[0.5, 0.5, 1.0, 1.0]])            # bottom-right quarter
    _, conf, _ = match(truths, torch.tensor([0]), priors, crowd_boxes=crowd, crowd_thresh=0.7)
    cx, cy = priors[:, 0], priors[:, 1]
    inside = (cx > 0.5) & (cy > 0.5)
    assert (conf[inside] == -1).all()
    assert conf[0] == 1 and (conf[~inside][1:] == 0).all()


def test_ohem_keeps_three_negatives_per_positive():
    torch.manual_seed(0)
    conf = torch.randn(2, 50, 5)
    conf_t = torch.zeros(2, 50, dtype=torch.long)
    conf_t[0, :2] = 1
    conf_t[1, :3] = 2
    conf_t[0, 2:10] = -1                                  # neutrals never become negatives
    loss, pos, neg = ohem_conf_loss(conf, conf_t, negpos_ratio=3)
    assert pos.sum(1).tolist() == [2, 3]
    assert neg.sum(1).tolist() == [6, 9]
    assert not (neg & (conf_t < 0)).any() and not (neg & pos).any()
    # The chosen negatives are the hardest: highest -log p(background).
    bg = torch.logsumexp(conf, -1) - conf[..., 0]
    for b in range(2):
        cand = (conf_t[b] == 0)
        chosen = bg[b][neg[b]].min()
        assert (bg[b][cand & ~neg[b]] <= chosen + 1e-6).all()
    expected = torch.nn.functional.cross_entropy(conf[pos | neg], conf_t[pos | neg], reduction='sum')
    assert torch.allclose(loss, expected)


def test_ohem_with_few_negatives_uses_what_exists():
    conf = torch.randn(1, 6, 3)
    conf_t = torch.tensor([[1, 1, 0, 0, -1, -1]])
    _, pos, neg = ohem_conf_loss(conf, conf_t, 3)
    assert neg.sum() == 2 and pos.sum() == 2


def _batch_case(perfect: bool, hp: int = 32):
    """One image, one square object; priors on a grid; prototypes that can reproduce the mask."""
    cfg = config.get_preset('yolact_lite0_256').replace(use_semantic_segmentation_loss=False)
    wp = hp
    mask = torch.zeros(64, 64)
    mask[16:48, 8:40] = 1
    box = torch.tensor([[8 / 64, 16 / 64, 40 / 64, 48 / 64]])
    priors = grid_priors(8, 0.5)
    proto = torch.full((1, hp, wp, 4), -1.0)
    small = torch.nn.functional.interpolate(mask[None, None], (hp, wp), mode='bilinear',
                                            align_corners=False)[0, 0] > 0.5
    proto[0, ..., 0] = torch.where(small, 1.0, -1.0)
    n = priors.shape[0]
    coeffs = torch.zeros(1, n, 4)
    coeffs[..., 0] = 30.0 if perfect else -30.0          # sigmoid(+-30): ~0/1 masks
    out = {'loc': torch.zeros(1, n, 4), 'conf': torch.zeros(1, n, cfg.num_classes),
           'mask': coeffs, 'priors': priors, 'proto': proto}
    targets = [{'boxes': box, 'labels': torch.tensor([5]), 'masks': mask[None], 'num_crowds': 0}]
    return cfg, out, targets


def test_perfect_mask_prediction_gives_near_zero_mask_loss():
    cfg, out, targets = _batch_case(perfect=True)
    losses = YolactLoss(cfg)(out, targets)
    assert losses['M'].item() < 1e-3
    cfg, bad_out, targets = _batch_case(perfect=False)
    assert YolactLoss(cfg)(bad_out, targets)['M'].item() > 10


def test_mask_loss_is_normalised_by_box_area():
    # Same per-pixel error inside a box twice as large: the area-normalised loss stays the same.
    cfg = config.get_preset('yolact_lite0_256').replace(use_semantic_segmentation_loss=False)
    priors = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    res = []
    for half in (0.25, 0.5):
        box = torch.tensor([[0.5 - half / 2, 0.5 - half / 2, 0.5 + half / 2, 0.5 + half / 2]])
        priors = center_size(box)
        mask = torch.zeros(1, 64, 64)
        lo, hi = int((0.5 - half / 2) * 64), int((0.5 + half / 2) * 64)
        mask[0, lo:hi, lo:hi] = 1
        out = {'loc': torch.zeros(1, 1, 4), 'conf': torch.zeros(1, 1, cfg.num_classes),
               'mask': torch.zeros(1, 1, 2), 'priors': priors, 'proto': torch.zeros(1, 32, 32, 2)}
        targets = [{'boxes': box, 'labels': torch.tensor([0]), 'masks': mask, 'num_crowds': 0}]
        res.append(YolactLoss(cfg)(out, targets)['M'].item())
    # sigmoid(0) = 0.5: BCE = ln 2 per kept pixel; the official crop keeps the box plus one proto
    # pixel each side, and the sum is divided by the box area (8x8 and 16x16 proto pixels).
    for side, value in zip((8, 16), res):
        assert value == pytest.approx(math.log(2) * cfg.mask_alpha * (side + 2) ** 2 / side ** 2,
                                      rel=1e-3)


def test_crowd_priors_do_not_change_the_class_loss():
    cfg = config.get_preset('yolact_lite0_256').replace(use_semantic_segmentation_loss=False)
    priors = grid_priors(8, 0.25)
    n = priors.shape[0]
    boxes = torch.tensor([[0.0, 0.0, 0.25, 0.25], [0.5, 0.5, 1.0, 1.0]])   # second is a crowd
    masks = torch.zeros(2, 64, 64)
    masks[0, :16, :16] = 1
    masks[1, 32:, 32:] = 1
    targets = [{'boxes': boxes, 'labels': torch.tensor([1, 0]), 'masks': masks, 'num_crowds': 1}]
    torch.manual_seed(0)
    out = {'loc': torch.zeros(1, n, 4), 'conf': torch.randn(1, n, cfg.num_classes),
           'mask': torch.zeros(1, n, 4), 'priors': priors, 'proto': torch.zeros(1, 16, 16, 4)}
    loss_fn = YolactLoss(cfg)
    base = loss_fn(out, targets)['C']
    # priors lying wholly in the crowd region (intersection over prior area 1 > 0.7)
    lo, hi = priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2
    inside = (lo >= 0.5).all(1) & (hi <= 1.0).all(1)
    assert inside.sum() == 4
    changed = dict(out)
    changed['conf'] = out['conf'].clone()
    changed['conf'][0, inside, 1:] += 50.0               # confident false positives in the crowd
    assert torch.allclose(loss_fn(changed, targets)['C'], base)
    # Outside the crowd the same change is punished.
    outside = dict(out)
    outside['conf'] = out['conf'].clone()
    outside['conf'][0, ~inside, 2:] += 50.0
    assert loss_fn(outside, targets)['C'] > base + 1


def test_semantic_loss_perfect_and_wrong():
    masks = [torch.zeros(1, 16, 16)]
    masks[0][0, :8] = 1
    labels = [torch.tensor([2])]
    target = torch.zeros(1, 4, 8, 8)
    target[0, 2, :4] = 1
    good = semantic_segmentation_loss((target * 2 - 1) * 30, masks, labels)
    bad = semantic_segmentation_loss(-(target * 2 - 1) * 30, masks, labels)
    assert good.item() < 1e-6 and bad.item() > 1


def test_mask_iou_and_rescoring_loss_present_for_yolact_plus():
    a = torch.zeros(1, 4, 4)
    a[0, :2] = 1
    b = torch.zeros(1, 4, 4)
    b[0, 1:3] = 1
    assert mask_iou(a, b).item() == pytest.approx(4 / 12)
    from yolact_deploy.model import Yolact
    cfg = config.get_preset('yolact_plus_resnet50').replace(discard_mask_area=-1)
    base_cfg, out, targets = _batch_case(True, hp=96)   # the re-scoring net needs >= ~96 px
    cfg = base_cfg.replace(use_maskiou=True, maskiou_net=cfg.maskiou_net)
    from yolact_deploy.model.heads import FastMaskIoUNet

    class Net:
        maskiou_net = FastMaskIoUNet(cfg.maskiou_net, cfg.num_classes)
    losses = YolactLoss(cfg)(out, targets, net=Net)
    assert 'I' in losses and torch.isfinite(losses['I'])
    # Gradient reaches the re-scoring net, not the mask coefficients.
    out['mask'].requires_grad_(True)
    losses = YolactLoss(cfg)(out, targets, net=Net)
    losses['I'].backward()
    assert out['mask'].grad is None or out['mask'].grad.abs().sum() == 0
    assert losses['I'].requires_grad        # ... it trains the re-scoring net's parameters


def test_lr_schedule_warmup_and_steps():
    cfg = config.get_preset('yolact_base').replace(lr=1e-3, lr_warmup_init=1e-4, lr_warmup_until=10,
                                                   lr_steps=(20, 30), gamma=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1e-4)
    assert lr_at(cfg, 5) == pytest.approx(5.5e-4)
    assert lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 20) == pytest.approx(1e-4)
    assert lr_at(cfg, 35) == pytest.approx(1e-5)
