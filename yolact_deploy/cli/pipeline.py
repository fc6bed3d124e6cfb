"""yolact-pipeline: the whole deployment path on one model, and where every file went.

    yolact-pipeline                      # the bundled model, outputs in ./yolact_pipeline/
    yolact-pipeline --weights my.pth --out runs/deploy --iters 20

Steps: (1) export the end-to-end ONNX graph; (2) with TensorRT and a GPU, build an FP16 engine
(otherwise say why and continue with ONNX Runtime); (3) validate every deployed model against
PyTorch on the bundled sample images; (4) benchmark PyTorch, ONNX Runtime (and TensorRT);
(5) print every file written. Exit codes: 0 all steps passed, 1 a validation out of tolerance,
2 bad input.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..errors import InputError
from .common import ArgumentParser, int_range, non_negative_int
from .common import check_writable_dir, cli_main, require_torch, run_cli

FALLBACK_PRESET = 'yolact_lite0_256'


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog='yolact-pipeline',
        description='Export -> (TensorRT engine when available) -> validate against PyTorch -> '
                    'benchmark, on one checkpoint; prints where every file went.')
    p.add_argument('--weights', help='checkpoint (default: the bundled model)')
    p.add_argument('--config', help='preset for official checkpoints whose name does not tell it')
    p.add_argument('--out', default='yolact_pipeline', help='output folder (default ./yolact_pipeline)')
    p.add_argument('--iters', type=int_range(2), default=10, help='timed benchmark runs per mode (default 10)')
    p.add_argument('--batch', default='1', help='benchmark batch sizes (default 1)')
    p.add_argument('--threads', type=non_negative_int, default=0, help='CPU threads (default: library default)')
    p.add_argument('--images', nargs='+', help='validation images (default: the bundled samples)')
    p.add_argument('--no-trt', action='store_true', help='skip TensorRT even where it is available')
    p.add_argument('--preset', default='desktop_fp16', help='TensorRT deployment preset')
    return p


def _step(n: int, total: int, text: str) -> float:
    print(f'\n[{n}/{total}] {text}', file=sys.stderr, flush=True)
    return time.time()


def _checkpoint(args, out: str) -> str:
    if args.weights:
        if not os.path.isfile(args.weights):
            raise InputError(f'checkpoint not found: {args.weights}')
        return args.weights
    from ..assets import default_weights
    from ..errors import YolactError
    try:
        return default_weights()
    except YolactError:
        pass
    # A fresh clone without the bundled model: keep the pipeline runnable, and say so loudly.
    from ..checkpoint import save_checkpoint
    from .bench import random_predictor
    path = os.path.join(out, f'{FALLBACK_PRESET}_random.pth')
    print(f'note: the bundled model is not in this install; using lively RANDOM weights of '
          f'{FALLBACK_PRESET} ({path}): the pipeline runs, accuracy numbers mean nothing',
          file=sys.stderr)
    save_checkpoint(path, random_predictor(FALLBACK_PRESET).model)
    return path


def _tensorrt_status(no_trt: bool) -> tuple:
    if no_trt:
        return False, '--no-trt given'
    from ..deploy import trt_compat as compat
    try:
        version = compat.version_string()
        gpu = compat.gpu_info(0)
    except Exception as exc:   # noqa: BLE001 - any reason is reported, in one line
        return False, str(exc).splitlines()[0]
    return True, f'TensorRT {version} on {gpu["name"]}'


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    require_torch('yolact-pipeline')
    from . import bench as bench_cli
    from . import export as export_cli
    from . import validate as validate_cli
    if args.iters < 2:
        raise InputError(f'--iters must be >= 2, got {args.iters}')
    bench_cli.parse_batches(args.batch)
    if args.images:  # bad images fail now, not after minutes of export
        from ..transforms import load_image
        for path in validate_cli._collect_images(args.images):
            load_image(path)
    out = os.path.abspath(args.out)
    check_writable_dir(out)
    files = []
    trt_ok, trt_why = _tensorrt_status(args.no_trt)
    total = 5
    t0 = time.time()

    _step(1, total, 'export the end-to-end ONNX graph')
    weights = _checkpoint(args, out)
    stem = os.path.splitext(os.path.basename(weights))[0]
    onnx_path = os.path.join(out, f'{stem}.onnx')
    common = ['--weights', weights] + (['--config', args.config] if args.config else [])
    code = export_cli.main(common + ['--to', 'onnx', '-o', onnx_path, '-q'])
    if code:
        return code
    files.append(('ONNX graph (FP32, portable)', onnx_path))

    _step(2, total, 'TensorRT engine')
    plan_path = None
    if trt_ok:
        plan_path = os.path.join(out, f'{stem}_fp16.plan')
        code = export_cli.main(common + ['--to', 'trt', '--preset', args.preset, '-o', plan_path,
                                         '--timing-cache', os.path.join(out, 'timing.cache')])
        if code:
            return code
        files += [('TensorRT engine (FP16)', plan_path),
                  ('engine sidecar', plan_path + '.json'),
                  ('ONNX graph the engine was built from', os.path.join(out, f'{stem}_fp16.onnx')),
                  ('timing cache', os.path.join(out, 'timing.cache'))]
    else:
        print(f'no TensorRT engine: {trt_why}; using ONNX Runtime (CPU)', file=sys.stderr)

    _step(3, total, 'validate against PyTorch')
    results = {}
    models = [onnx_path] + ([plan_path] if plan_path else [])
    threads = ['--threads', str(args.threads)] if args.threads else []
    images = ['--images', *args.images] if args.images else \
        ['--images', os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  'assets', 'samples')]
    for model in models:
        report = os.path.splitext(model)[0] + '_validate.json'
        code = validate_cli.main([model] + common + images + threads + ['--json', report, '-q'])
        if code == 2:
            return code
        results[model] = 'within tolerance' if code == 0 else 'OUT OF TOLERANCE'
        files.append((f'validation report ({os.path.basename(model)})', report))

    _step(4, total, 'benchmark')
    bench_json = os.path.join(out, 'bench.json')
    bench_csv = os.path.join(out, 'bench.csv')
    code = bench_cli.main([weights] + models + ['--batch', args.batch, '--iters', str(args.iters),
                                                '--warmup', '2', '--json', bench_json,
                                                '--csv', bench_csv, '-q'] + threads)
    if code:
        return code
    files += [('benchmark (JSON)', bench_json), ('benchmark (CSV)', bench_csv)]

    _step(5, total, f'done in {time.time() - t0:.0f}s')
    print('\nvalidation:')
    for model, verdict in results.items():
        print(f'  {os.path.basename(model)}: {verdict}')
    print(f'TensorRT: {"engine built" if plan_path else "not used (" + trt_why + ")"}')
    print('files:')
    print(f'  {"checkpoint":<38} {weights}')
    for what, path in files:
        if path and os.path.exists(path):
            print(f'  {what:<38} {path}')
    return 0 if all(v == 'within tolerance' for v in results.values()) else 1


if __name__ == '__main__':
    run_cli(main)
