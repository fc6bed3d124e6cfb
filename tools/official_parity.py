#!/usr/bin/env python
"""Parity of our PyTorch reference model with the official dbolya/yolact implementation.

    python tools/official_parity.py --official-dir /tmp/official [--presets yolact_base ...]
                                    [--image IMG] --json benchmarks/results/official_parity.json

For each preset this

1. runs the *official* code in a subprocess (``--_worker``) on the CPU: builds the official model,
   fills it with deterministic random weights in the official key layout (BatchNorm statistics
   calibrated on a second image, non-zero DCN offsets, class biases so that real detections
   survive the thresholds), saves its state dict as ``<preset>_54_800000.pth``, preprocesses IMG with
   the official ``FastBaseTransform`` and records the backbone stages, FPN levels, raw head outputs
   (class logits included), the final detections of ``Detect`` (Fast NMS, the official eval default)
   plus ``layers.output_utils.postprocess`` at full image resolution;
2. loads that file with :func:`yolact_deploy.checkpoint.load_model` (strict keys, preset inferred from
   the file name), feeds the official input tensor and compares every output, relative to that
   output's largest magnitude;
3. runs our own pipeline from the image file (our preprocessing, ``Yolact.detect``, our full-resolution
   post-processing) and compares the final detections.

The official code is never copied: the worker imports it at run time from ``--official-dir``, with
process-local CPU patches (``torch.cuda.current_device`` and ``Tensor.cuda`` become no-ops) and a CPU
``dcn_v2`` module written by this file (our own port of the DCNv2 im2col kernel *semantics*, kept
independent of ``yolact_deploy.ops.dcn`` on purpose, so the comparison is not ours against ours).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_IMAGE = '/work/shared/data/coco_mini/val2017/000000006818.jpg'
DEFAULT_CALIB_IMAGE = '/work/shared/data/coco_mini/val2017/000000011813.jpg'
OFFICIAL_PRESETS = ('yolact_base', 'yolact_im400', 'yolact_im700', 'yolact_resnet50',
                    'yolact_darknet53', 'yolact_plus_base', 'yolact_plus_resnet50')

# Acceptance (issue 2).
TOL_RAW_REL = 1e-4          # max |ours - official| / max |official|, per output
TOL_SCORE = 5e-4            # final scores
TOL_BOX_PX = 1              # final boxes (integers after truncation)
TOL_MASK_FRAC = 0.005       # disagreeing mask pixels

# Files of the official tree whose hash identifies the version we compared with.
_OFFICIAL_FILES = ('yolact.py', 'backbone.py', 'data/config.py', 'layers/box_utils.py',
                   'layers/functions/detection.py', 'layers/output_utils.py',
                   'utils/augmentations.py', 'utils/functions.py',
                   'external/DCNv2/src/cuda/dcn_v2_im2col_cuda.cu')


# --------------------------------------------------------------------------------------------
# CPU stand-in for the official DCNv2 CUDA extension (written to a temp dir as ``dcn_v2.py``).
# Our own code: a vectorised port of modulated_deformable_im2col_gpu_kernel / dmcn_im2col_bilinear
# followed by the GEMM of dcn_v2_cuda_forward. Deliberately does not import yolact_deploy.
# --------------------------------------------------------------------------------------------
DCN_SHIM_SOURCE = r'''
"""CPU DCNv2 for running the official YOLACT++ code (written by tools/official_parity.py)."""
import math

import torch
import torch.nn as nn
from torch.nn.modules.utils import _pair

STATS = []  # one entry per DCN call: how much the deformation really did


def _read(flat, hi, wi, ok, width):
    # flat: [N, Cg, H*W]; hi, wi, ok: [N, L]. A neighbour outside the image reads as 0.
    idx = torch.where(ok, hi * width + wi, torch.zeros_like(hi))
    vals = torch.gather(flat, 2, idx[:, None, :].expand(flat.shape[0], flat.shape[1], idx.shape[1]))
    return vals * ok[:, None, :].to(flat.dtype)


def _bilinear(im, h, w, inside):
    """dmcn_im2col_bilinear for every channel of one deformable group at positions [N, L]; the
    kernel calls it only where ``inside``, elsewhere the sample is 0."""
    n, cg, height, width = im.shape
    h_low_f, w_low_f = torch.floor(h), torch.floor(w)
    lh, lw = h - h_low_f, w - w_low_f
    hh, hw = 1 - lh, 1 - lw
    h_low, w_low = h_low_f.long(), w_low_f.long()
    h_high, w_high = h_low + 1, w_low + 1
    flat = im.reshape(n, cg, height * width)
    v1 = _read(flat, h_low, w_low, inside & (h_low >= 0) & (w_low >= 0), width)
    v2 = _read(flat, h_low, w_high, inside & (h_low >= 0) & (w_high <= width - 1), width)
    v3 = _read(flat, h_high, w_low, inside & (h_high <= height - 1) & (w_low >= 0), width)
    v4 = _read(flat, h_high, w_high, inside & (h_high <= height - 1) & (w_high <= width - 1),
               width)
    w1, w2, w3, w4 = hh * hw, hh * lw, lh * hw, lh * lw
    return (w1[:, None] * v1 + w2[:, None] * v2 + w3[:, None] * v3 + w4[:, None] * v4)


def dcn_v2_conv(input, offset, mask, weight, bias, stride, padding, dilation, deformable_groups):
    n, c, height, width = input.shape
    c_out, _, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    h_out = (height + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    w_out = (width + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    length = h_out * w_out
    cpg = c // deformable_groups
    taps = kh * kw
    h_in = (torch.arange(h_out) * sh - ph).to(input.dtype)[:, None].expand(h_out, w_out).reshape(-1)
    w_in = (torch.arange(w_out) * sw - pw).to(input.dtype)[None, :].expand(h_out, w_out).reshape(-1)
    # columns[b, ch * taps + t, l], the layout dcn_v2_cuda_forward hands to its GEMM
    cols = input.new_zeros(n, c, taps, length)
    outside = 0
    for g in range(deformable_groups):
        off = offset[:, g * 2 * taps:(g + 1) * 2 * taps].reshape(n, 2 * taps, length)
        msk = mask[:, g * taps:(g + 1) * taps].reshape(n, taps, length)
        im = input[:, g * cpg:(g + 1) * cpg]
        for i in range(kh):
            for j in range(kw):
                t = i * kw + j
                h_im = h_in + i * dh + off[:, 2 * t]
                w_im = w_in + j * dw + off[:, 2 * t + 1]
                inside = (h_im > -1) & (w_im > -1) & (h_im < height) & (w_im < width)
                outside += int((~inside).sum())
                val = _bilinear(im, h_im, w_im, inside)
                cols[:, g * cpg:(g + 1) * cpg, t] = val * msk[:, t][:, None, :]
    out = torch.matmul(weight.reshape(c_out, c * taps), cols.reshape(n, c * taps, length))
    out = out + bias.reshape(1, c_out, 1)
    frac = offset - torch.round(offset)
    STATS.append({'abs_offset_max': float(offset.abs().max()),
                  'abs_offset_mean': float(offset.abs().mean()),
                  'fraction_non_integer': float((frac.abs() > 1e-3).float().mean()),
                  'fraction_samples_outside': outside / float(n * deformable_groups * taps * length),
                  'mask_min': float(mask.min()), 'mask_max': float(mask.max())})
    return out.reshape(n, c_out, h_out, w_out)


class DCN(nn.Module):
    """Same parameters as the official DCN: weight, bias, conv_offset_mask."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation=1,
                 deformable_groups=1):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        channels = deformable_groups * 3 * self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset_mask = nn.Conv2d(in_channels, channels, kernel_size=self.kernel_size,
                                          stride=self.stride, padding=self.padding, bias=True)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, input):
        o1, o2, mask = torch.chunk(self.conv_offset_mask(input), 3, dim=1)
        return dcn_v2_conv(input, torch.cat((o1, o2), dim=1), torch.sigmoid(mask), self.weight,
                           self.bias, self.stride, self.padding, self.dilation,
                           self.deformable_groups)


DCNv2 = DCN
'''


# --------------------------------------------------------------------------------------------
# helpers shared by both processes
# --------------------------------------------------------------------------------------------
def state_dict_signature(state_dict) -> dict:
    """Key count and a hash of the sorted ``name:shape`` lines (recorded for tests/test_model.py)."""
    lines = [f'{k}:{tuple(int(s) for s in v.shape)}' for k, v in sorted(state_dict.items())]
    return {'num_keys': len(lines),
            'keys_sha256': hashlib.sha256('\n'.join(lines).encode()).hexdigest()}


def _file_sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def official_tree_hash(official_dir: str) -> str:
    h = hashlib.sha256()
    for rel in _OFFICIAL_FILES:
        path = os.path.join(official_dir, rel)
        if os.path.exists(path):
            h.update(rel.encode())
            with open(path, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# worker: the official model (runs in its own process; patches stay in that process)
# --------------------------------------------------------------------------------------------
def _random_official_weights(net, cfg, seed: int, calib_x: torch.Tensor,
                             x: torch.Tensor) -> dict:
    """Deterministic random weights in the official key layout that behave like a trained net:
    unit-scale activations, real deformation, spread-out class scores. BatchNorm statistics come
    from ``calib_x``; the head's output scales and class biases from the image under test ``x``
    (so that it really has a few confident detections)."""
    import torch.nn as nn
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=gen) * std

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=gen)

    bn_names = {n for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    sd = net.state_dict()
    new = {}
    for key, t in sd.items():
        mod, _, leaf = key.rpartition('.')
        if mod in bn_names:
            if leaf == 'weight':
                # Small gamma on the last BN of a residual branch keeps 23+ blocks from exploding.
                last = mod.endswith('bn3') or mod.endswith('conv2.1')
                new[key] = uniform(t.shape, 0.15, 0.4) if last else uniform(t.shape, 0.5, 1.2)
            elif leaf == 'bias':
                new[key] = normal(t.shape, 0.1)
            else:
                new[key] = t.clone()           # running stats: calibrated below
        elif t.dim() == 4:
            fan_in = t[0].numel()
            if 'conv_offset_mask' in key:
                new[key] = normal(t.shape, 2.0 / fan_in ** 0.5)   # offsets of about a pixel
            else:
                new[key] = normal(t.shape, (2.0 / fan_in) ** 0.5)  # He init
        elif leaf == 'bias':
            std = 0.5 if 'conv_offset_mask' in key else 0.02
            new[key] = normal(t.shape, std)
        else:
            new[key] = t.clone()
    net.load_state_dict(new, strict=True)

    # BatchNorm statistics from one image (the backbone is the only place with BN).
    bns = [m for m in net.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        net.backbone(calib_x)
    for m in bns:
        m.eval()
        m.momentum = 0.1

    # Scale the head's output convs from their statistics on the image.
    with torch.no_grad():
        outs = net.backbone(x)
        fpn = net.fpn([outs[i] for i in cfg.backbone.selected_layers])
        head = net.prediction_layers[0]
        feats = [head.upfeature(f) for f in fpn]
        targets = {'bbox_layer': 0.5, 'conf_layer': 2.0, 'mask_layer': 1.0}
        for name, target in targets.items():
            layer = getattr(head, name)
            y = torch.cat([layer(f).flatten() for f in feats])
            layer.weight.mul_(target / float(y.std()))
            layer.bias.zero_()
        # Class biases: four "active" classes, the rest unlikely, and a background bias chosen so
        # that on the image 1 prior in 2000 has a foreground score above 0.5. The final
        # detections then spread from 0.05 to about 0.8, a few confident, most not, as with a
        # trained model's Fast NMS output.
        c = cfg.num_classes
        bias = torch.full((head.num_priors, c), -3.0)
        for cls in (1, 3, 18, 57):   # person, car, dog, chair (1-based; 0 is background)
            bias[:, cls] = 0.0
        raw = torch.cat([head.conf_layer(f).permute(0, 2, 3, 1).reshape(-1, c) for f in feats])
        lo, hi = -10.0, 30.0
        for _ in range(40):                    # bisection on the background bias
            bias[:, 0] = (lo + hi) / 2
            logits = raw + bias.repeat(raw.shape[0] // head.num_priors, 1)
            top = torch.quantile(logits.softmax(-1)[:, 1:].max(-1).values, 0.9995)
            lo, hi = (float(bias[0, 0]), hi) if top > 0.5 else (lo, float(bias[0, 0]))
        head.conf_layer.bias.copy_(bias.flatten())
        if cfg.use_maskiou:
            # Mask IoU predictions of order one (the net ends in ReLU + max-pool).
            # (a TorchScript module in the official code: reach its parameters by name)
            params = dict(net.maskiou_net.named_parameters())
            last = max((k for k in params if k.endswith('.bias')), key=lambda k: int(k.split('.')[1]))
            params[last].fill_(0.5)
    return net.state_dict()


def _official_worker(args) -> None:
    torch.set_num_threads(args.threads)
    shim_dir = os.path.join(args.out, 'shim')
    os.makedirs(shim_dir, exist_ok=True)
    with open(os.path.join(shim_dir, 'dcn_v2.py'), 'w') as f:
        f.write(DCN_SHIM_SOURCE)
    sys.path[:0] = [shim_dir, args.official_dir]
    sys.dont_write_bytecode = True
    # The official code touches CUDA at import and in FastBaseTransform; make both CPU no-ops.
    torch.cuda.current_device = lambda: 0
    torch.Tensor.cuda = lambda self, *a, **k: self

    import warnings
    warnings.filterwarnings('ignore')
    import cv2
    import dcn_v2  # the shim
    import yolact as official_yolact
    from data.config import cfg, set_cfg
    from layers.output_utils import postprocess
    from utils.augmentations import FastBaseTransform

    set_cfg(args.preset + '_config')
    torch.manual_seed(args.seed)
    net = official_yolact.Yolact()
    net.eval()
    net.detect.use_fast_nms = True          # the official eval default (eval.py --fast_nms=True)
    net.detect.use_cross_class_nms = False
    cfg.mask_proto_debug = False            # eval.py sets this from its (default False) flag

    def load(path):
        frame = torch.from_numpy(cv2.imread(path)).float()
        with torch.no_grad():
            return frame, FastBaseTransform()(frame.unsqueeze(0))

    _, calib_x = load(args.calib_image)
    frame, x = load(args.image)
    state = _random_official_weights(net, cfg, args.seed, calib_x, x)
    pth = os.path.join(args.out, f'{args.preset}_54_800000.pth')
    torch.save(state, pth)

    rec = {}
    hooks = [net.backbone.register_forward_hook(
        lambda m, i, o: rec.__setitem__('backbone', [t.clone() for t in o]))]
    rec['fpn'], rec['conf_logits'] = [], []
    for layer in net.prediction_layers:
        hooks.append(layer.register_forward_pre_hook(lambda m, i: rec['fpn'].append(i[0].clone())))
        hooks.append(layer.register_forward_hook(
            lambda m, i, o: rec['conf_logits'].append(o['conf'].clone())))
    real_detect = net.detect

    def detect(preds, net_):
        rec['raw'] = {k: v.clone() for k, v in preds.items()}
        out = real_detect(preds, net_)
        det = out[0]['detection']
        rec['detect_boxes_rel'] = None if det is None else det['box'].clone()
        return out

    net.detect = detect
    dcn_v2.STATS.clear()
    t0 = time.time()
    with torch.no_grad():
        dets = net(x)
        forward_s = time.time() - t0
        h, w = frame.shape[:2]
        classes, scores, boxes, masks = postprocess(dets, w, h, crop_masks=True, score_threshold=0)
    for hk in hooks:
        hk.remove()
    net.detect = real_detect
    e2e_s = {'official': [], 'ours': [], 'ours_with_dense_masks': []}
    if args.time_iters:
        # End to end from the decoded image to full-resolution results (as eval.py does per image),
        # official and ours alternately in this one process, so both see the same machine load.
        sys.path.insert(0, REPO)
        from yolact_deploy.checkpoint import load_model
        from yolact_deploy.runtime.torch_backend import TorchPredictor
        ours = TorchPredictor(load_model(pth))
        image = cv2.imread(args.image)
        for i in range(args.time_iters + 1):   # the first round is a warm-up
            t0 = time.perf_counter()
            with torch.no_grad():
                fr = torch.from_numpy(image).float()
                d = net(FastBaseTransform()(fr.unsqueeze(0)))
                postprocess(d, w, h, crop_masks=True, score_threshold=0)
            t1 = time.perf_counter()
            r = ours.predict_batch([image], score_threshold=0.0).results[0]
            t2 = time.perf_counter()
            r.masks  # noqa: B018 - the dense [n, H, W] array, as the official returns it
            t3 = time.perf_counter()
            if i:
                e2e_s['official'].append(t1 - t0)
                e2e_s['ours'].append(t2 - t1)
                e2e_s['ours_with_dense_masks'].append(t3 - t1)
    mask_scores = scores
    if isinstance(scores, list):              # YOLACT++: [box scores, mask-rescored scores]
        scores, mask_scores = scores
    raw = rec['raw']
    torch.save({
        'input': x, 'backbone': rec['backbone'], 'fpn': rec['fpn'],
        'conf_logits': torch.cat(rec['conf_logits'], 1),
        'loc': raw['loc'], 'conf': raw['conf'], 'mask': raw['mask'], 'priors': raw['priors'],
        'proto': raw['proto'],
        'final': {'classes': classes.long(), 'scores': scores.float(),
                  'mask_scores': mask_scores.float(), 'boxes': boxes.long(),
                  'masks': masks.bool() if masks.numel() else torch.zeros(0, h, w, dtype=torch.bool),
                  'boxes_rel': rec['detect_boxes_rel']},
        'image_hw': (h, w), 'signature': state_dict_signature(state),
        'dcn_stats': list(dcn_v2.STATS), 'forward_s': forward_s, 'end_to_end_s': e2e_s,
        'max_num_detections': cfg.max_num_detections,
    }, os.path.join(args.out, 'official.pt'))


# --------------------------------------------------------------------------------------------
# main process: our model against the worker's record
# --------------------------------------------------------------------------------------------
def _err(ours: torch.Tensor, ref: torch.Tensor) -> dict:
    ours, ref = ours.detach().double(), ref.detach().double()
    if ours.shape != ref.shape:
        return {'shape_ours': list(ours.shape), 'shape_official': list(ref.shape), 'ok': False}
    err = float((ours - ref).abs().max()) if ref.numel() else 0.0
    mag = float(ref.abs().max()) if ref.numel() else 0.0
    rel = err / mag if mag > 0 else err
    return {'shape': list(ref.shape), 'max_abs_err': err, 'max_abs_official': mag,
            'rel_err': rel, 'ok': rel <= TOL_RAW_REL}


def _match_detections(off: dict, ours: dict) -> dict:
    """Final detections, official vs ours. Both lists are sorted by score; detections are paired in
    order, and where the order differs only among scores closer than TOL_SCORE, by class and box."""
    n_off, n_ours = int(off['scores'].shape[0]), int(ours['scores'].shape[0])
    pairs = []
    in_order = n_off == n_ours and bool((off['classes'].numpy() == ours['classes']).all())
    if in_order:
        pairs = [(i, i) for i in range(n_off)]
    else:
        used = set()
        for i in range(n_off):
            best, best_d = None, None
            for j in range(n_ours):
                if j in used or int(ours['classes'][j]) != int(off['classes'][i]):
                    continue
                if abs(float(ours['scores'][j]) - float(off['scores'][i])) > TOL_SCORE:
                    continue
                d = float(np.abs(ours['boxes'][j].astype(np.int64) - off['boxes'][i].numpy()).max())
                if best is None or d < best_d:
                    best, best_d = j, d
            if best is not None:
                used.add(best)
                pairs.append((i, best))
    h, w = off['masks'].shape[-2:] if off['masks'].dim() == 3 else (0, 0)
    score_err = mask_score_err = box_err = 0.0
    mask_img = mask_union = 0.0
    for i, j in pairs:
        score_err = max(score_err, abs(float(ours['scores'][j]) - float(off['scores'][i])))
        mask_score_err = max(mask_score_err, abs(float(ours['mask_scores'][j])
                                                 - float(off['mask_scores'][i])))
        box_err = max(box_err, float(np.abs(ours['boxes'][j].astype(np.int64)
                                            - off['boxes'][i].numpy()).max()))
        a, b = off['masks'][i].numpy(), ours['masks'][j]
        diff = float(np.count_nonzero(a != b))
        mask_img = max(mask_img, diff / (h * w))
        mask_union = max(mask_union, diff / max(1.0, float(np.count_nonzero(a | b))))
    unmatched_off = sorted(set(range(n_off)) - {i for i, _ in pairs})
    unmatched_ours = sorted(set(range(n_ours)) - {j for _, j in pairs})
    scores = off['scores'].numpy()
    res = {
        'official_count': n_off, 'ours_count': n_ours, 'matched': len(pairs),
        'same_order': in_order,
        'unmatched_official_scores': [float(off['scores'][i]) for i in unmatched_off],
        'unmatched_ours_scores': [float(ours['scores'][j]) for j in unmatched_ours],
        'official_above': {str(t): int((scores > t).sum()) for t in (0.05, 0.15, 0.3, 0.5)},
        'official_top_score': float(scores.max()) if n_off else 0.0,
        'official_classes_present': sorted({int(c) for c in off['classes']}),
        'max_score_err': score_err, 'max_mask_score_err': mask_score_err,
        'max_box_err_px': box_err,
        'max_mask_disagreement_frac_of_image': mask_img,
        'max_mask_disagreement_frac_of_union': mask_union,
    }
    res['ok'] = bool(n_off > 0 and not unmatched_off and not unmatched_ours
                     and score_err <= TOL_SCORE and mask_score_err <= TOL_SCORE
                     and box_err <= TOL_BOX_PX and mask_union <= TOL_MASK_FRAC)
    return res


def _our_final(model, image_path: str) -> tuple:
    """Our pipeline from the image file. Prefers the project's own runtime pieces; falls back to a
    minimal in-harness step (said so in the result) while those modules do not exist."""
    import cv2
    image = cv2.imread(image_path)
    try:
        from yolact_deploy.runtime.torch_backend import TorchPredictor
        from yolact_deploy.transforms import preprocess
    except ImportError:
        TorchPredictor = None
    if TorchPredictor is not None:
        out = TorchPredictor(model).predict_batch([image], score_threshold=0.0)
        r = out.results[0]
        x = preprocess([image], model.config)
        return x, {'classes': r.classes, 'scores': r.scores, 'mask_scores': r.mask_scores,
                   'boxes': r.boxes, 'masks': r.masks}, \
            'yolact_deploy.runtime.torch_backend.TorchPredictor (transforms.preprocess, ' \
            'Yolact.detect, postprocess.finalize)'
    # Fallback: official-style preprocessing and full-resolution step written here.
    import torch.nn.functional as F
    from yolact_deploy.config import MEANS_BGR, STD_BGR
    cfg = model.config
    t = torch.from_numpy(image).float().permute(2, 0, 1)[None]
    t = F.interpolate(t, (cfg.max_size, cfg.max_size), mode='bilinear', align_corners=False)
    if cfg.backbone.transform == 'normalize':
        t = (t - torch.tensor(MEANS_BGR).view(1, 3, 1, 1)) / torch.tensor(STD_BGR).view(1, 3, 1, 1)
    else:
        t = t / 255
    x = t[:, [2, 1, 0]].contiguous()
    with torch.no_grad():
        d = model.detect(model(x))
    n = int(d['num_detections'][0])
    h, w = image.shape[:2]
    b = d['boxes'][0, :n]
    x1, x2 = torch.min(b[:, 0], b[:, 2]) * w, torch.max(b[:, 0], b[:, 2]) * w
    y1, y2 = torch.min(b[:, 1], b[:, 3]) * h, torch.max(b[:, 1], b[:, 3]) * h
    boxes = torch.stack([x1.clamp(min=0), y1.clamp(min=0), x2.clamp(max=w), y2.clamp(max=h)], 1)
    masks = F.interpolate(d['masks'][:, :n], (h, w), mode='bilinear', align_corners=False)[0] > 0.5
    return x, {'classes': d['classes'][0, :n].numpy(), 'scores': d['scores'][0, :n].numpy(),
               'mask_scores': d['mask_scores'][0, :n].numpy(),
               'boxes': boxes.long().numpy(), 'masks': masks.numpy()}, 'harness fallback'


def run_preset(official_dir: str, preset: str, image: str = DEFAULT_IMAGE,
               calib_image: str = DEFAULT_CALIB_IMAGE, seed: int = 0, threads: int = 1,
               workdir: str = None, log=print, time_iters: int = 0) -> dict:
    """Runs the official worker and our model for one preset; returns the result record."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from yolact_deploy.checkpoint import load_model

    torch.set_num_threads(threads)
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix=f'parity-{preset}-', dir=workdir) as tmp:
        cmd = [sys.executable, os.path.abspath(__file__), '--_worker', '--official-dir', official_dir,
               '--preset', preset, '--image', image, '--calib-image', calib_image,
               '--seed', str(seed), '--threads', str(threads), '--out', tmp,
               '--time-iters', str(time_iters)]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1', OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f'official worker failed for {preset}:\n{proc.stderr[-4000:]}')
        off = torch.load(os.path.join(tmp, 'official.pt'), weights_only=False)
        pth = os.path.join(tmp, f'{preset}_54_800000.pth')

        # 1. strict loading, preset from the official file name
        model = load_model(pth)
        res = {'state_dict': dict(off['signature'], strict_load=True,
                                  preset_inferred_from_filename=model.config.name,
                                  ours_matches_official=state_dict_signature(model.state_dict())
                                  == off['signature'])}
        assert model.config.name == preset, (model.config.name, preset)

        # 2. raw outputs on the official input tensor
        rec = {'fpn_levels': None, 'logits': []}
        hooks = [model.backbone.register_forward_hook(
                     lambda m, i, o: rec.__setitem__('backbone', list(o))),
                 model.fpn.register_forward_hook(
                     lambda m, i, o: rec.__setitem__('fpn_levels', list(o)))]
        for layer in model.prediction_layers:
            hooks.append(layer.register_forward_hook(lambda m, i, o: rec['logits'].append(o[1])))
        x = off['input']
        t0 = time.time()
        with torch.no_grad():
            out = model(x)
        ours_forward_s = time.time() - t0
        for hk in hooks:
            hk.remove()
        raw = {}
        for i, (a, b) in enumerate(zip(rec['backbone'], off['backbone'])):
            raw[f'backbone.stage{i}'] = _err(a, b)
        for i, (a, b) in enumerate(zip(rec['fpn_levels'], off['fpn'])):
            raw[f'fpn.P{i + 3}'] = _err(a, b)
        raw['loc'] = _err(out['loc'], off['loc'])
        raw['conf_logits'] = _err(torch.cat(rec['logits'], 1), off['conf_logits'])
        raw['conf_softmax'] = _err(out['conf'], off['conf'])
        raw['mask_coeffs'] = _err(out['mask'], off['mask'])
        raw['priors'] = _err(out['priors'], off['priors'])
        raw['proto'] = _err(out['proto'], off['proto'])
        counts_ok = (len(rec['backbone']) == len(off['backbone'])
                     and len(rec['fpn_levels']) == len(off['fpn']))
        res['raw'] = raw
        res['raw_ok'] = counts_ok and all(v['ok'] for v in raw.values())

        # 3. final detections from the image file with our own pipeline
        x_ours, final, path_used = _our_final(model, image)
        res['preprocessing'] = {'ours_vs_official_input_max_abs': float((x_ours - x).abs().max()),
                                'input_shape': list(x.shape), 'image_hw': list(off['image_hw'])}
        res['detections'] = _match_detections(off['final'], final)
        res['detections']['ours_pipeline'] = path_used
        if off['dcn_stats']:
            s = off['dcn_stats']
            res['dcn'] = {'layers': len(s),
                          'abs_offset_max': max(d['abs_offset_max'] for d in s),
                          'abs_offset_mean': float(np.mean([d['abs_offset_mean'] for d in s])),
                          'fraction_non_integer_min': min(d['fraction_non_integer'] for d in s),
                          'fraction_samples_outside_max': max(d['fraction_samples_outside']
                                                              for d in s),
                          'mask_range': [min(d['mask_min'] for d in s),
                                         max(d['mask_max'] for d in s)]}
        res['seconds'] = {'official_forward': round(off['forward_s'], 2),
                          'ours_forward': round(ours_forward_s, 2),
                          'total': round(time.time() - t_start, 1)}
        if time_iters:
            res['end_to_end'] = _end_to_end_times(off['end_to_end_s'], time_iters)
        res['ok'] = bool(res['raw_ok'] and res['detections']['ok']
                         and res['state_dict']['ours_matches_official'])
    log(_summary_line(preset, res))
    return res


def _end_to_end_times(samples: dict, iters: int) -> dict:
    """Median wall times from the decoded image to final full-resolution results, measured
    alternately in the worker: the official (FastBaseTransform, Yolact, postprocess) and ours
    (TorchPredictor.predict_batch; also with the dense masks materialised, as the official returns
    them). Warm-up round excluded."""
    med = {k: float(np.median(v)) for k, v in samples.items()}
    return {'runs': iters, 'official_ms': round(1000 * med['official'], 1),
            'ours_ms': round(1000 * med['ours'], 1),
            'ours_with_dense_masks_ms': round(1000 * med['ours_with_dense_masks'], 1),
            'ratio_ours_over_official': round(med['ours'] / med['official'], 3),
            'ratio_with_dense_masks': round(med['ours_with_dense_masks'] / med['official'], 3),
            'loadavg_after': [round(v, 2) for v in os.getloadavg()]}


def _summary_line(preset: str, r: dict) -> str:
    worst = max(r['raw'].items(), key=lambda kv: kv[1].get('rel_err', float('inf')))
    d = r['detections']
    return (f"{preset:22s} {'PASS' if r['ok'] else 'FAIL'}  raw max rel err "
            f"{worst[1].get('rel_err', float('nan')):.2e} ({worst[0]})  dets {d['official_count']}/"
            f"{d['ours_count']} matched {d['matched']}  score {d['max_score_err']:.1e} "
            f"box {d['max_box_err_px']:.0f}px  mask {100 * d['max_mask_disagreement_frac_of_union']:.3f}%"
            f"  ({r['seconds']['total']}s)"
            + (f"  end to end: official {r['end_to_end']['official_ms']:.0f} ms, ours "
               f"{r['end_to_end']['ours_ms']:.0f} ms (x{r['end_to_end']['ratio_ours_over_official']})"
               if 'end_to_end' in r else ''))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--official-dir', required=True, help='a checkout of dbolya/yolact (never copied)')
    p.add_argument('--presets', nargs='+', default=list(OFFICIAL_PRESETS))
    p.add_argument('--image', default=DEFAULT_IMAGE)
    p.add_argument('--calib-image', default=DEFAULT_CALIB_IMAGE,
                   help='image used only to set the random model\'s BatchNorm statistics')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', help='write the results here')
    p.add_argument('--time-iters', type=int, default=0,
                   help='also time both pipelines end to end (image -> final masks), N runs each')
    p.add_argument('--_worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--preset', help=argparse.SUPPRESS)
    p.add_argument('--out', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        _official_worker(args)
        return 0
    if not os.path.isfile(os.path.join(args.official_dir, 'yolact.py')):
        print(f'error: {args.official_dir} is not a dbolya/yolact checkout (no yolact.py)',
              file=sys.stderr)
        return 2
    for path in (args.image, args.calib_image):
        if not os.path.isfile(path):
            print(f'error: image not found: {path}', file=sys.stderr)
            return 2
    results = {}
    for preset in args.presets:
        if preset not in OFFICIAL_PRESETS:
            print(f'error: {preset} is not an official preset ({", ".join(OFFICIAL_PRESETS)})',
                  file=sys.stderr)
            return 2
        results[preset] = run_preset(args.official_dir, preset, args.image, args.calib_image,
                                     args.seed, args.threads, time_iters=args.time_iters)
    doc = {
        'generated_by': 'tools/official_parity.py',
        'what': 'our PyTorch reference model vs the official dbolya/yolact code, both on the CPU in '
                'fp32, same random weights in the official key layout (no official weights here)',
        'official_tree_sha256': official_tree_hash(args.official_dir),
        'official_tree_files_hashed': list(_OFFICIAL_FILES),
        'compared': 'backbone stages, FPN levels, loc, class logits, softmax conf, mask '
                    'coefficients, priors and prototypes on the official preprocessed input; then '
                    'final detections (classes, box and mask scores, integer boxes, full-resolution '
                    'masks) of the official Detect (Fast NMS) + postprocess against our pipeline '
                    'from the image file',
        'notes': 'rel_err = max |ours - official| / max |official| per output. "seconds" are wall '
                 'times on a shared CPU, not benchmarks.',
        'image': os.path.basename(args.image), 'image_sha256': _file_sha256(args.image),
        'calib_image': os.path.basename(args.calib_image), 'seed': args.seed,
        'torch': torch.__version__, 'python': platform.python_version(), 'threads': args.threads,
        'tolerances': {'raw_rel_to_max_magnitude': TOL_RAW_REL, 'score_abs': TOL_SCORE,
                       'box_px': TOL_BOX_PX, 'mask_pixels_frac_of_union': TOL_MASK_FRAC},
        'all_ok': all(r['ok'] for r in results.values()),
        'presets': results,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(doc, f, indent=1)
        print(f'wrote {args.json}')
    return 0 if doc['all_ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
