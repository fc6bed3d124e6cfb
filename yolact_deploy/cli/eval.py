"""``yolact-eval``: COCO box and mask mAP of a model on a COCO-format set.

Example::

    yolact-eval --weights yolact_deploy/assets/yolact_lite0_coco_mini.pth \
        --images ../shared/data/coco_mini/val2017 \
        --annotations ../shared/data/coco_mini/annotations/instances_val2017.json
"""
from __future__ import annotations

import json

from .common import ArgumentParser, batch_size, positive_int
from .common import cli_main, require_torch, run_cli


def build_parser():
    p = ArgumentParser(prog='yolact-eval', description=__doc__.split('\n\n')[0])
    p.add_argument('--weights', help='.pth (ours or official), .onnx or .plan; default: the bundled model')
    p.add_argument('--config', help='preset for an official checkpoint whose name does not tell it')
    p.add_argument('--images', required=True, help='image folder')
    p.add_argument('--annotations', required=True, help='COCO instances json')
    p.add_argument('--batch-size', type=batch_size, default=1)
    p.add_argument('--limit', type=positive_int, help='evaluate only the first N images (by id)')
    p.add_argument('--device', help="torch device, e.g. 'cpu' or 'cuda'")
    p.add_argument('--output-json', help='write the COCO-format detections here')
    p.add_argument('--metrics-json', help='write the metrics (percent) here')
    p.add_argument('--no-progress', action='store_true')
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    require_torch('yolact-eval')
    from ..errors import InputError
    from ..evaluation import evaluate, format_table
    if args.batch_size < 1:
        raise InputError('--batch-size must be at least 1')
    options = {}
    if args.config:
        options['config'] = args.config
    if args.device:
        options['device'] = args.device
    metrics = evaluate(args.weights, args.images, args.annotations, batch_size=args.batch_size,
                       limit=args.limit, output_json=args.output_json,
                       progress=not args.no_progress, **options)
    print()
    print(format_table(metrics))
    if args.output_json:
        print(f'detections: {args.output_json}')
    if args.metrics_json:
        from .common import atomic_output, check_output_file
        check_output_file(args.metrics_json)
        with atomic_output(args.metrics_json) as tmp:
            with open(tmp, 'w') as f:
                json.dump(metrics, f, indent=2)
        print(f'metrics: {args.metrics_json}')
    return 0


if __name__ == '__main__':
    run_cli(main)
