"""yolact-bench: latency and throughput of .pth, .onnx and .plan models, per batch size.

    yolact-bench model.onnx model.pth --batch 1,2,4 --iters 30 --json bench.json --csv bench.csv
    yolact-bench random:yolact_resnet50         # lively random weights, when no checkpoint is at hand
    yolact-bench portable.plan plugins.plan --batch 1,8 --cuda-graph   # compare engine variants

Warm-up runs are excluded; p50/p90/p99, standard deviation and throughput are reported per batch
size; see yolact_deploy/bench.py for the exact method. Exit codes: 0 done, 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import InputError
from .common import MAX_BATCH, ArgumentParser, non_negative_int, positive_int, probability
from .common import (atomic_output, check_output_file, cli_main, have_torch, open_model,
                     require_torch, run_cli)

RANDOM_PREFIX = 'random:'


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog='yolact-bench',
        description='Benchmark YOLACT models: .pth (PyTorch), .onnx (ONNX Runtime or OpenVINO), '
                    '.plan (TensorRT). Warm-up excluded; p50/p90/p99, spread and throughput per batch.')
    p.add_argument('models', nargs='*', metavar='MODEL',
                   help="model files, or random:PRESET for lively random PyTorch weights "
                        "(default: the bundled model)")
    p.add_argument('--backend', default=None, metavar='NAME[,NAME]',
                   help='backends for .onnx models: onnxruntime (default), openvino; several, '
                        'comma separated, benchmark each .onnx model once per backend')
    p.add_argument('--batch', default='1', help='batch sizes, comma separated (default 1)')
    p.add_argument('--warmup', type=non_negative_int, default=3, help='untimed runs first (default 3)')
    p.add_argument('--iters', type=positive_int, default=20, help='timed runs per mode (default 20)')
    p.add_argument('--images', nargs='+', metavar='PATH',
                   help='input photos (default: a bundled COCO sample, repeated to the batch size)')
    p.add_argument('--image-size', metavar='HxW', help='resize the inputs to HxW first')
    p.add_argument('--threads', type=non_negative_int, default=0,
                   help='CPU threads for PyTorch and ONNX Runtime (default: library default)')
    p.add_argument('--score-threshold', type=probability, default=0.15,
                   help='end-to-end mode keeps detections above this score (default 0.15, as '
                        'yolact-infer)')
    p.add_argument('--no-stages', action='store_true', help='skip per-stage PyTorch times')
    p.add_argument('--device', help='cpu or cuda[:N] (default: cpu for .pth/.onnx; TensorRT always '
                                    'runs on the GPU)')
    p.add_argument('--cuda-graph', action='store_true', help='TensorRT: replay a CUDA graph')
    p.add_argument('--plugin-library', help='TensorRT: libyolact_plugins.so')
    p.add_argument('--json', metavar='FILE', help='write the full report (JSON)')
    p.add_argument('--csv', metavar='FILE', help='write one row per model, batch and mode (CSV)')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress lines')
    return p


def parse_batches(text: str):
    try:
        vals = [int(v) for v in str(text).replace(' ', '').split(',') if v]
    except ValueError:
        raise InputError(f'--batch expects comma-separated integers, got {text!r}') from None
    if not vals or min(vals) < 1 or max(vals) > MAX_BATCH:
        raise InputError(f'--batch sizes must be in 1..{MAX_BATCH}, got {text!r}')
    return vals


def random_predictor(preset: str, threads: int = 0):
    """A PyTorch predictor with lively random weights of ``preset`` (yolact_deploy.testing)."""
    require_torch(f'{RANDOM_PREFIX}{preset}')
    from ..assets import default_sample
    from ..config import get_preset
    from ..model import Yolact
    from ..torch_runtime import TorchPredictor
    from ..testing import lively_random_init
    from ..deploy.media import load_image
    from ..transforms import preprocess
    cfg = get_preset(preset)
    example = preprocess([load_image(default_sample())], cfg)
    model = lively_random_init(Yolact(cfg).eval(), example=example)
    return TorchPredictor(model, 'cpu')


ONNX_BACKENDS = ('onnxruntime', 'openvino')


def parse_backends(text):
    if not text:
        return [None]
    names = [v for v in str(text).replace(' ', '').split(',') if v]
    bad = [n for n in names if n not in ONNX_BACKENDS]
    if not names or bad:
        raise InputError(f"--backend expects {' or '.join(ONNX_BACKENDS)} (comma separated), "
                         f'got {text!r}')
    return names


def runs_for(models, backends):
    """(model, backend) pairs: each .onnx model once per --backend, other files by extension."""
    return [(m, b) for m in models
            for b in (backends if m.lower().endswith('.onnx') else [None])]


def load_for_bench(model: str, args, backend=None):
    if model.startswith(RANDOM_PREFIX):
        return random_predictor(model[len(RANDOM_PREFIX):])
    if not os.path.exists(model):
        raise InputError(f'model file not found: {model}')
    options = {'device': args.device}
    if args.threads:
        options['threads'] = args.threads
    if args.cuda_graph:
        options['cuda_graph'] = True
    if args.plugin_library:
        options['plugin_library'] = args.plugin_library
    return open_model(model, backend, **options)


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from .. import bench as B
    batches = parse_batches(args.batch)
    backends = parse_backends(args.backend)
    if args.warmup < 0:
        raise InputError(f'--warmup must be >= 0, got {args.warmup}')
    if args.iters < 2:
        raise InputError(f'--iters must be >= 2 (a spread needs several runs), got {args.iters}')
    for out in (args.json, args.csv):
        if out:
            check_output_file(out)
    image_size = None
    if args.image_size:
        from ..export.trt_config import BuildError, parse_size
        try:
            image_size = parse_size(args.image_size)
        except BuildError as exc:
            raise InputError(str(exc)) from None
    models = args.models
    if not models:
        from ..assets import default_weights
        models = [default_weights()]
    for m in models:   # every file checked before the first long run
        if not m.startswith(RANDOM_PREFIX) and not os.path.exists(m):
            raise InputError(f'model file not found: {m}')
    if args.threads and have_torch():
        import torch
        torch.set_num_threads(args.threads)
    images = B.bench_images(args.images, image_size)
    say = (lambda text: None) if args.quiet else \
        (lambda text: print(f'  {text}', file=sys.stderr, flush=True))
    settings = {'batches': batches, 'warmup': args.warmup, 'iters': args.iters,
                'threads': args.threads or None, 'score_threshold': args.score_threshold,
                'image_size': list(images[0].shape[:2]),
                'images': [os.path.basename(p) for p in args.images] if args.images
                else ['bundled sample 000000311002.jpg'],
                'cuda_graph': args.cuda_graph, 'device': args.device}
    report = B.new_report(settings)
    for model, backend in runs_for(models, backends):
        predictor = load_for_bench(model, args, backend)
        if predictor.backend == 'tensorrt':
            from ..runtime.tensorrt_backend import check_input
            for b in batches:
                check_input((b, *images[0].shape), predictor.profile)
        if not args.quiet:
            print(f'bench: {model} ({predictor.backend}), batches {batches}, '
                  f'{args.warmup} warm-up + {args.iters} timed runs per mode', file=sys.stderr)
        entry = {'model': model, **B.describe_predictor(predictor)}
        entry.update(B.bench_predictor(predictor, images, batches, warmup=args.warmup,
                                       iters=args.iters, score_threshold=args.score_threshold,
                                       stages=not args.no_stages, progress=say))
        report['models'].append(entry)
        if hasattr(predictor, 'close'):
            predictor.close()
    B.finish_report(report)
    for line in B.summary_lines(report):
        print(line)
    load = report['machine'].get('loadavg_start')
    if load and report['machine'].get('cpu_cores') and load[0] > report['machine']['cpu_cores']:
        print(f"note: load average {load[0]:.1f} on {report['machine']['cpu_cores']} cores at the "
              f"start: other work was running; CPU numbers are inflated", file=sys.stderr)
    if args.json:
        with atomic_output(args.json, suffix='.json') as tmp:
            with open(tmp, 'w') as f:
                json.dump(report, f, indent=1)
                f.write('\n')
        print(f'wrote {args.json}')
    if args.csv:
        B.write_csv(report, args.csv)
        print(f'wrote {args.csv}')
    return 0


if __name__ == '__main__':
    run_cli(main)
