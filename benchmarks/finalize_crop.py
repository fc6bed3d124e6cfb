"""Final masks inside their boxes (``finalize``) against the full-image path, and what it changes.

    nice -n 0 python benchmarks/finalize_crop.py --threads 2 --json benchmarks/results/finalize_crop.json

Three parts (each can be skipped):

- ``finalize``: :func:`yolact_deploy.postprocess.finalize` at 640x480 and 1920x1080 with 5, 20 and
  100 detections, against ``finalize(..., full_image_masks=True)`` (every mask resized over the
  whole image: the old path). The boxes are drawn from the coco_mini val2017 ground truth (relative
  boxes of non-crowd annotations, so their sizes follow COCO's); the masks are smooth random
  probabilities at 138x138 (yolact_resnet50's prototypes) zeroed outside the box with ``ops.crop``
  (padding 1), as the model makes them. Also the COCO RLE of those masks (what ``--save-json``,
  ``yolact-eval`` and the service write): from the crops against pycocotools on the full masks.
  Every case asserts identical masks and identical RLE strings.
- ``onnxruntime``: ``yolact-bench``'s figures (end to end, inference, host post-processing) for
  yolact_resnet50 (lively random weights in the official layout, 550 px) on ONNX Runtime with the
  given threads on a busy coco_mini val image, plus the full-image path's post-processing there.
- ``identity``: the bundled model on the 80 coco_mini val2017 images (score threshold 0: every
  detection the model keeps): the masks and RLE strings of the two paths; asserts 0 differing pixels.

The CPU is shared: the load average is recorded next to the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

from yolact_deploy.bench import machine_facts, summarize, timed  # noqa: E402

COCO_MINI = '/work/shared/data/coco_mini'
BUSY_IMAGE = '000000006818.jpg'   # the official-parity image (many objects)
PROTO = 138


def gt_relative_boxes(path: str) -> np.ndarray:
    """x1 y1 x2 y2 relative boxes of every non-crowd val annotation."""
    with open(path) as f:
        data = json.load(f)
    size = {im['id']: (im['width'], im['height']) for im in data['images']}
    out = []
    for a in data['annotations']:
        if a.get('iscrowd'):
            continue
        w, h = size[a['image_id']]
        x, y, bw, bh = a['bbox']
        out.append([x / w, y / h, (x + bw) / w, (y + bh) / h])
    return np.array(out, np.float32)


def contract(rng, boxes: np.ndarray) -> dict:
    """Engine-contract outputs of one image with these boxes (cropped smooth random masks)."""
    import cv2
    import torch

    from yolact_deploy.ops.boxes import crop
    n = len(boxes)
    logits = rng.normal(0, 4, (n, 12, 12)).astype(np.float32)
    smooth = np.stack([cv2.resize(m, (PROTO, PROTO), interpolation=cv2.INTER_CUBIC) for m in logits])
    probs = torch.sigmoid(torch.from_numpy(smooth) + 2)
    masks = crop(probs, torch.from_numpy(boxes)).numpy()
    scores = np.sort(rng.uniform(0.2, 1, n).astype(np.float32))[::-1].copy()
    return {'num_detections': np.array([n]), 'boxes': boxes[None], 'scores': scores[None],
            'classes': rng.integers(0, 80, (1, n)), 'masks': masks[None]}


def old_rle(masks: np.ndarray) -> list:
    from pycocotools import mask as mask_util
    out = []
    for m in masks:
        r = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append(r['counts'].decode('ascii'))
    return out


def bench_finalize(boxes_pool: np.ndarray, warmup: int, iters: int) -> list:
    from yolact_deploy.postprocess import finalize
    rng = np.random.default_rng(0)
    rows = []
    for h, w in [(480, 640), (1080, 1920)]:
        for n in (5, 20, 100):
            boxes = boxes_pool[rng.choice(len(boxes_pool), n, replace=False)]
            out = contract(rng, boxes)
            new = finalize(out, [(h, w)], [])[0]
            ref = finalize(out, [(h, w)], [], full_image_masks=True)[0]
            assert np.array_equal(new.masks, ref.masks), (h, w, n)
            crops = new.mask_crops
            assert [crops.rle(i)['counts'] for i in range(n)] == old_rle(ref.masks), (h, w, n)
            t_new = summarize(timed(lambda: finalize(out, [(h, w)], []), warmup, iters))
            t_old = summarize(timed(lambda: finalize(out, [(h, w)], [], full_image_masks=True),
                                    warmup, iters))
            r_new = summarize(timed(lambda: [crops.rle(i) for i in range(n)], warmup, iters))
            r_old = summarize(timed(lambda: old_rle(ref.masks), warmup, iters))
            row = {'image_hw': [h, w], 'detections': n,
                   'mean_box_area_frac': float(np.mean((boxes[:, 2] - boxes[:, 0])
                                                       * (boxes[:, 3] - boxes[:, 1]))),
                   'crop_pixels_frac': sum(b.size for b in crops.bitmaps) / (n * h * w),
                   'finalize_ms': {'in_boxes': t_new['p50_ms'], 'full_image': t_old['p50_ms']},
                   'speedup': t_old['p50_ms'] / t_new['p50_ms'],
                   'rle_ms': {'from_crops': r_new['p50_ms'], 'pycocotools_full_masks': r_old['p50_ms']},
                   'rle_speedup': r_old['p50_ms'] / r_new['p50_ms'],
                   'identical_masks': True, 'identical_rle': True, 'runs': t_new['runs'],
                   'loadavg': list(os.getloadavg())}
            print(f"finalize {w}x{h}, {n:3d} detections: in boxes {t_new['p50_ms']:7.2f} ms, full image "
                  f"{t_old['p50_ms']:7.2f} ms (x{row['speedup']:.1f}); RLE from crops "
                  f"{r_new['p50_ms']:6.2f} ms vs {r_old['p50_ms']:6.2f} ms (x{row['rle_speedup']:.1f}) "
                  f"[load {os.getloadavg()[0]:.2f}]", flush=True)
            rows.append(row)
    return rows


def bench_onnxruntime(threads: int, warmup: int, iters: int, workdir: str) -> dict:
    import torch

    from yolact_deploy.bench import bench_predictor
    from yolact_deploy.config import get_preset
    from yolact_deploy.export import ExportOptions, export_onnx
    from yolact_deploy.model import Yolact
    from yolact_deploy.postprocess import finalize
    from yolact_deploy.runtime.onnxruntime_backend import OnnxRuntimePredictor
    from yolact_deploy.testing import lively_random_init
    from yolact_deploy.transforms import load_image, preprocess
    torch.set_num_threads(threads)
    image = load_image(os.path.join(COCO_MINI, 'val2017', BUSY_IMAGE))
    cfg = get_preset('yolact_resnet50')
    torch.manual_seed(0)
    model = lively_random_init(Yolact(cfg).eval(), seed=0, example=preprocess([image], cfg))
    path = os.path.join(workdir, 'yolact_resnet50.onnx')
    export_onnx(model, path, ExportOptions(), quiet=True)
    del model
    pred = OnnxRuntimePredictor(path, threads=threads)
    threshold = 0.15   # yolact-bench's default
    res = bench_predictor(pred, [image], [1], warmup=warmup, iters=iters,
                          score_threshold=threshold)['results'][0]
    dets, _ = pred.run([image])
    full = summarize(timed(lambda: finalize(dets, [image.shape[:2]], pred.class_names,
                                            score_threshold=threshold, full_image_masks=True),
                           warmup, iters))
    e2e = res['end_to_end']['p50_ms']
    out = {'model': 'yolact_resnet50 (lively random weights, 550 px)', 'threads': threads,
           'image': BUSY_IMAGE, 'image_hw': list(image.shape[:2]), 'score_threshold': threshold,
           'detections': res['detections_per_image'][0],
           'end_to_end': res['end_to_end'], 'inference': res['inference'],
           'postprocess': res['postprocess'],
           'postprocess_share_of_end_to_end': res['postprocess_share_of_end_to_end'],
           'full_image_postprocess': full,
           'full_image_postprocess_share_estimate': full['p50_ms'] / (e2e - res['postprocess']['p50_ms']
                                                                     + full['p50_ms']),
           'loadavg': list(os.getloadavg())}
    print(f"onnxruntime yolact_resnet50 ({threads} threads, {out['detections']} detections): end to end "
          f"{e2e:.0f} ms, host post-processing {res['postprocess']['p50_ms']:.1f} ms "
          f"({100 * out['postprocess_share_of_end_to_end']:.1f}%); full-image path "
          f"{full['p50_ms']:.1f} ms (~{100 * out['full_image_postprocess_share_estimate']:.1f}%) "
          f"[load {os.getloadavg()[0]:.2f}]", flush=True)
    return out


def identity(threshold: float = 0.0) -> dict:
    import glob

    from yolact_deploy.postprocess import finalize
    from yolact_deploy.runtime.predictor import load_predictor
    from yolact_deploy.transforms import load_image
    pred = load_predictor()   # the bundled model, PyTorch
    files = sorted(glob.glob(os.path.join(COCO_MINI, 'val2017', '*.jpg')))
    masks = pixels = differing = rle_differing = 0
    t0 = time.time()
    for f in files:
        image = load_image(f)
        dets, _ = pred.run([image])
        size = [image.shape[:2]]
        new = finalize(dets, size, pred.class_names, score_threshold=threshold)[0]
        ref = finalize(dets, size, pred.class_names, score_threshold=threshold,
                       full_image_masks=True)[0]
        differing += int(np.count_nonzero(new.masks != ref.masks))
        rle_differing += sum(a != b for a, b in zip([new.mask_rle(i)['counts'] for i in range(len(new))],
                                                    old_rle(ref.masks)))
        masks += len(new)
        pixels += new.masks.size
    out = {'model': 'bundled (yolact_deploy/assets)', 'images': len(files), 'score_threshold': threshold,
           'masks': masks, 'pixels_compared': pixels, 'differing_pixels': differing,
           'differing_rle_strings': rle_differing, 'seconds': round(time.time() - t0, 1)}
    print(f"identity on {len(files)} coco_mini val images: {masks} masks, {pixels} pixels, "
          f"{differing} differing pixels, {rle_differing} differing RLE strings", flush=True)
    assert differing == 0 and rle_differing == 0 and masks > 0
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--ort-iters', type=int, default=5)
    p.add_argument('--skip', nargs='*', default=[], choices=['finalize', 'onnxruntime', 'identity'])
    p.add_argument('--json', default=os.path.join(HERE, 'results', 'finalize_crop.json'))
    args = p.parse_args()
    import cv2
    import torch
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    report = {'what': __doc__.split('\n\n')[0].strip(),
              'targets': {'finalize_speedup_1920x1080_20_detections': '>= 5x',
                          'onnxruntime_postprocess_share': '<= 10%'},
              'machine': machine_facts(), 'threads': args.threads}
    if 'finalize' not in args.skip:
        pool = gt_relative_boxes(os.path.join(COCO_MINI, 'annotations', 'instances_val2017.json'))
        report['finalize'] = bench_finalize(pool, args.warmup, args.iters)
    if 'onnxruntime' not in args.skip:
        with tempfile.TemporaryDirectory(prefix='finalize_crop_') as workdir:
            report['onnxruntime'] = bench_onnxruntime(args.threads, 1, args.ort_iters, workdir)
    if 'identity' not in args.skip:
        report['identity'] = identity()
    report['loadavg_end'] = list(os.getloadavg())
    tmp = args.json + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, args.json)
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
