"""Turns a finished ``yolact-train`` run into the bundled default model.

    python tools/bundle_model.py RUN/yolact_lite0_256_final.pth --metrics RUN/metrics.json \
        --command "yolact-train ..." --data "coco_mini/train2017 (212 images with annotations)"

Writes ``yolact_deploy/assets/yolact_lite0_coco_mini.pth`` (or ``--out``): the weights in fp16
(half the size; every tool loads them back into fp32), the model's config, and a ``training`` record
(command, iterations, seed, batch size, data, the val metrics from ``yolact-eval --metrics-json``).
The optimizer state of the training checkpoint is dropped. Writing is atomic.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None) -> int:
    from yolact_deploy.cli.common import cli_main

    @cli_main
    def run(argv):
        p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        p.add_argument('checkpoint', help='training checkpoint (yolact-train output)')
        p.add_argument('--metrics', required=True, help='yolact-eval --metrics-json output')
        p.add_argument('--command', required=True, help='the exact yolact-train command of the run')
        p.add_argument('--data', required=True, help='what the run was trained on')
        p.add_argument('--out', default=os.path.join(os.path.dirname(HERE), 'yolact_deploy',
                                                     'assets', 'yolact_lite0_coco_mini.pth'))
        args = p.parse_args(argv)
        from yolact_deploy.checkpoint import _load_file, load_model, save_checkpoint
        from yolact_deploy.errors import InputError
        try:
            with open(args.metrics) as f:
                metrics = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(f'cannot read metrics {args.metrics}: {exc}') from None
        if not isinstance(metrics, dict) or not {'box', 'mask'} <= set(metrics):
            raise InputError(f'{args.metrics} is not yolact-eval --metrics-json output '
                             '(no box/mask entries)')
        state = _load_file(args.checkpoint).get('train_state') or {}
        model = load_model(args.checkpoint)
        record = {'command': args.command, 'iterations': state.get('iteration'),
                  'seed': state.get('seed'), 'batch_size': state.get('batch_size'),
                  'optimizer': state.get('optimizer_name', 'sgd'), 'data': args.data,
                  'val_metrics_percent': metrics}
        save_checkpoint(args.out, model, extra={'training': record}, half=True)
        print(f'wrote {args.out} ({os.path.getsize(args.out) / 2 ** 20:.1f} MiB)')

    return run(argv)


if __name__ == '__main__':
    sys.exit(main())
