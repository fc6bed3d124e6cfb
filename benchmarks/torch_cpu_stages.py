"""PyTorch CPU latency per stage (backbone, FPN, protonet, heads, post-processing) and Fast NMS
against standard class-wise NMS (torchvision batched_nms) on the same candidates.

    python benchmarks/torch_cpu_stages.py --presets yolact_resnet50 yolact_plus_resnet50 \
        --threads 2 --iters 10 --json benchmarks/results/torch_cpu_stages.json

Weights are lively random (yolact_deploy.testing) in the official layout: latency does not depend on
the weight values except through the number of NMS candidates, which is reported. Warm-up runs are
excluded; the median, p90, p99, min, max and standard deviation over the timed runs are reported
(yolact_deploy.bench.summarize).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from yolact_deploy import __version__, config  # noqa: E402
from yolact_deploy.assets import default_sample  # noqa: E402
from yolact_deploy.model import Yolact  # noqa: E402
from yolact_deploy.ops.boxes import decode  # noqa: E402
from yolact_deploy.ops.nms import fast_nms, standard_nms  # noqa: E402
from yolact_deploy.postprocess import finalize  # noqa: E402
from yolact_deploy.testing import lively_random_init  # noqa: E402
from yolact_deploy.transforms import load_image, preprocess  # noqa: E402


# Timing helpers are shared with yolact-bench (interpolated percentiles, plus p50/p99/mean/max).
from yolact_deploy.bench import summarize, timed  # noqa: E402


@torch.no_grad()
def bench_preset(name, warmup, iters):
    cfg = config.get_preset(name)
    image = load_image(default_sample())
    x = preprocess([image], cfg)
    model = lively_random_init(Yolact(cfg).eval(), example=x)
    sel = cfg.backbone.selected_layers
    state = {}

    def backbone():
        state['b'] = model.backbone(x)

    def fpn():
        state['f'] = model.fpn([state['b'][i] for i in sel])

    def proto():
        model.proto_net(state['f'][cfg.proto_src])

    def heads():
        state['raw'] = model.heads(state['f'])
        state['raw']['conf'] = torch.softmax(state['raw']['conf'], -1)

    def post():
        d = model.detect(state['raw'])
        finalize({k: v.numpy() for k, v in d.items()}, [image.shape[:2]], cfg.class_names)

    stages = {}
    for stage, fn in (('backbone', backbone), ('fpn', fpn), ('protonet', proto), ('heads', heads),
                      ('postprocess', post)):
        stages[stage] = summarize(timed(fn, warmup, iters))
    # 'heads' includes the protonet (it is part of Yolact.heads); report the prediction heads alone.
    total = summarize(timed(lambda: (backbone(), fpn(), heads(), post()), warmup, iters))

    raw = state['raw']
    boxes = decode(raw['loc'], raw['priors'])
    scores = raw['conf'][..., 1:]
    candidates = int((scores.max(-1).values > cfg.nms_conf_thresh).sum())
    fast = fast_nms(boxes, scores, conf_thresh=cfg.nms_conf_thresh, iou_threshold=cfg.nms_thresh,
                    top_k=cfg.nms_top_k, max_detections=cfg.max_num_detections)
    std = standard_nms(boxes, scores, conf_thresh=cfg.nms_conf_thresh, iou_threshold=cfg.nms_thresh,
                       max_detections=cfg.max_num_detections)
    fast_set = {(int(c), int(i)) for c, i in zip(fast.classes[0], fast.indices[0]) if c >= 0}
    std_set = {(int(c), int(i)) for c, i in zip(std.classes[0], std.indices[0]) if c >= 0}
    nms = {
        'candidates_above_conf_thresh': candidates,
        'fast_nms': summarize(timed(lambda: fast_nms(
            boxes, scores, conf_thresh=cfg.nms_conf_thresh, iou_threshold=cfg.nms_thresh,
            top_k=cfg.nms_top_k, max_detections=cfg.max_num_detections), warmup, iters)),
        'standard_nms_torchvision': summarize(timed(lambda: standard_nms(
            boxes, scores, conf_thresh=cfg.nms_conf_thresh, iou_threshold=cfg.nms_thresh,
            max_detections=cfg.max_num_detections), warmup, iters)),
        'detections_fast': len(fast_set), 'detections_standard': len(std_set),
        'detections_in_both': len(fast_set & std_set),
    }
    return {'preset': name, 'input': cfg.max_size, 'stages': stages,
            'note': "'heads' = protonet + prediction heads (+ softmax); 'protonet' alone is also shown",
            'end_to_end': total, 'nms': nms}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--presets', nargs='+', default=['yolact_resnet50', 'yolact_plus_resnet50'])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--json', help='write results here')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    results = {'machine': {'cpu': platform.processor() or platform.machine(),
                           'cores': os.cpu_count(), 'threads': args.threads,
                           'loadavg_at_start': load, 'torch': torch.__version__,
                           'numpy': np.__version__, 'yolact_deploy': __version__},
               'results': []}
    for name in args.presets:
        r = bench_preset(name, args.warmup, args.iters)
        results['results'].append(r)
        s = r['stages']
        print(f"{name} @ {r['input']}: " + ', '.join(f"{k} {v['median_ms']:.1f} ms" for k, v in s.items())
              + f" | end-to-end {r['end_to_end']['median_ms']:.1f} ms"
              + f" | Fast NMS {r['nms']['fast_nms']['median_ms']:.1f} ms vs standard "
              f"{r['nms']['standard_nms_torchvision']['median_ms']:.1f} ms "
              f"({r['nms']['candidates_above_conf_thresh']} candidates)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
