"""FP16 acceptance: the mixed FP16 graph on ONNX Runtime CPU against PyTorch FP32 on coco_mini val2017.

    python benchmarks/onnx_fp16_coco.py [--weights CKPT] [--limit N]
        [--out benchmarks/results/onnx_fp16_coco_mini.json]

Default weights: the bundled model; when it is not in the checkout, lively random weights of its
preset (``--preset``, default yolact_lite0_256) -- then the mask-IoU agreement is meaningful but the
mAP of both sides is ~0 and its delta says nothing (recorded as such). The FP32 graph is validated
the same way for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'shared', 'data', 'coco_mini')


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--weights')
    p.add_argument('--preset', default='yolact_lite0_256')
    p.add_argument('--data', default=DATA)
    p.add_argument('--limit', type=int, default=0)
    p.add_argument('--out', default=os.path.join(HERE, 'results', 'onnx_fp16_coco_mini.json'))
    args = p.parse_args()
    import torch

    from yolact_deploy import validate as V
    from yolact_deploy.checkpoint import load_model, save_checkpoint
    from yolact_deploy.export import ExportOptions, export_onnx
    from yolact_deploy.runtime.onnxruntime_backend import OnnxRuntimePredictor
    from yolact_deploy.runtime.torch_backend import TorchPredictor
    weights, note = args.weights, None
    with tempfile.TemporaryDirectory(prefix='onnx_fp16_') as work:
        if weights is None:
            try:
                from yolact_deploy.assets import default_weights
                weights = default_weights()
            except Exception as exc:   # not bundled yet: lively random weights of its preset
                from yolact_deploy.assets import default_sample
                from yolact_deploy.config import get_preset
                from yolact_deploy.model import Yolact
                from yolact_deploy.testing import lively_random_init
                from yolact_deploy.transforms import load_image, preprocess
                cfg = get_preset(args.preset)
                torch.manual_seed(0)
                model = lively_random_init(Yolact(cfg).eval(), seed=0, example=preprocess(
                    [load_image(default_sample())], cfg))
                weights = os.path.join(work, f'{args.preset}_random.pth')
                save_checkpoint(weights, model)
                note = (f'{exc}; used lively random weights of {args.preset}: mask-IoU agreement is '
                        'meaningful, the mAP delta is not (both mAPs ~0)')
        ann = os.path.join(args.data, 'annotations', 'instances_val2017.json')
        images, ids = V.coco_images(ann, os.path.join(args.data, 'val2017'), args.limit)
        doc = {'weights': os.path.basename(weights), 'note': note, 'images': len(images),
               'data': 'coco_mini/val2017', 'runs': {}}
        for precision in ('fp16', 'fp32'):
            model = load_model(weights)
            path = os.path.join(work, f'model_{precision}.onnx')
            export_onnx(model, path, ExportOptions(fp16=precision == 'fp16'), quiet=True)
            report = V.compare_predictors(TorchPredictor(load_model(weights)),
                                          OnnxRuntimePredictor(path), images,
                                          annotation_file=ann, image_ids=ids)
            violations = V.check(report, V.TOLERANCES[precision])
            report.pop('per_image')
            doc['runs'][precision] = {'passed': not violations, 'violations': violations,
                                      'tolerances': V.tolerances_dict(V.TOLERANCES[precision]),
                                      'onnx_mib': round(os.path.getsize(path) / 2 ** 20, 1),
                                      'report': report}
            print(precision, '\n'.join(V.report_lines(report, violations, precision)), flush=True)
    with open(args.out + '.tmp', 'w') as f:
        json.dump(doc, f, indent=1)
    os.replace(args.out + '.tmp', args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
