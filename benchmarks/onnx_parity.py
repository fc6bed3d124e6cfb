"""Acceptance run: every official preset (random-init, official-format weights) and the bundled model,
exported to ONNX and run on ONNX Runtime CPU against PyTorch.

For each model: export once (end-to-end graph plus raw outputs, ``--with-raw``), then the same
comparison as ``yolact-validate`` on bundled sample images, with the FP32 tolerances. The plugin
flavour is added when the plugins' ONNX Runtime custom-op library is available.

    python benchmarks/onnx_parity.py [--presets a,b] [--images 3] [--flavours portable,plugins]
        [--out benchmarks/results/onnx_parity.json]

Each model runs in its own process (memory of the R-101 exports is returned between presets).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ORDER = ('yolact_resnet50', 'yolact_plus_resnet50', 'yolact_im400', 'yolact_darknet53',
         'yolact_base', 'yolact_im700', 'yolact_plus_base')


def make_official_checkpoint(preset: str, path: str, seed: int = 0) -> None:
    """Lively random weights of ``preset`` saved as an official flat state dict."""
    import torch

    from yolact_deploy.assets import default_sample
    from yolact_deploy.config import get_preset
    from yolact_deploy.model import Yolact
    from yolact_deploy.testing import lively_random_init
    from yolact_deploy.transforms import load_image, preprocess
    cfg = get_preset(preset)
    torch.manual_seed(seed)
    model = lively_random_init(Yolact(cfg).eval(), seed=seed,
                               example=preprocess([load_image(default_sample())], cfg))
    torch.save(model.state_dict(), path)


def run_one(name: str, flavour: str, images: int, workdir: str, threads: int) -> dict:
    import torch

    from yolact_deploy import validate as V
    from yolact_deploy.assets import sample_images
    from yolact_deploy.checkpoint import load_model
    from yolact_deploy.export import ExportOptions, export_onnx
    from yolact_deploy.runtime.onnxruntime_backend import OnnxRuntimePredictor
    from yolact_deploy.runtime.torch_backend import TorchPredictor
    torch.set_num_threads(threads)
    if name == 'bundled':
        from yolact_deploy.assets import DEFAULT_WEIGHTS_NAME, default_weights
        try:
            weights = default_weights()
        except Exception:
            return {'model': name, 'flavour': flavour, 'passed': None,
                    'skipped': f'the bundled model {DEFAULT_WEIGHTS_NAME} is not in this checkout'}
    else:
        weights = os.path.join(workdir, f'{name}_0_0.pth')   # official file-name pattern
        if not os.path.exists(weights):
            make_official_checkpoint(name, weights)
    model = load_model(weights)
    onnx_path = os.path.join(workdir, f'{name}_{flavour}.onnx')
    t0 = time.time()
    export_onnx(model, onnx_path, ExportOptions(with_raw=True, plugins=flavour == 'plugins'))
    export_s = time.time() - t0
    backend = OnnxRuntimePredictor(onnx_path, threads=threads)
    reference = TorchPredictor(load_model(weights))
    paths = sample_images()[:images]
    report = V.compare_predictors(reference, backend, paths, progress=False)
    violations = V.check(report, V.TOLERANCES['fp32'])
    report.pop('per_image')
    size = os.path.getsize(onnx_path)
    os.unlink(onnx_path)
    return {'model': name, 'preset': model.config.name, 'max_size': model.config.max_size,
            'flavour': flavour, 'export_seconds': round(export_s, 1),
            'onnx_mib': round(size / 2 ** 20, 1), 'images': [os.path.basename(p) for p in paths],
            'passed': not violations, 'violations': violations, 'report': report}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--presets', default=','.join(ORDER + ('bundled',)))
    p.add_argument('--flavours', default='portable,plugins')
    p.add_argument('--images', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=os.path.join(HERE, 'results', 'onnx_parity.json'))
    p.add_argument('--one', nargs=2, metavar=('MODEL', 'FLAVOUR'), help=argparse.SUPPRESS)
    p.add_argument('--workdir', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        result = run_one(args.one[0], args.one[1], args.images, args.workdir, args.threads)
        print('RESULT ' + json.dumps(result))
        return
    flavours = args.flavours.split(',')
    if 'plugins' in flavours:
        try:
            from yolact_deploy import plugins
            plugins.ort_session_options_with_plugins()
        except Exception as exc:  # not built / not there yet: recorded, not hidden
            print(f'plugins flavour skipped: {type(exc).__name__}: {exc}', file=sys.stderr)
            flavours.remove('plugins')
            skipped_plugins = f'{type(exc).__name__}: {exc}'
        else:
            skipped_plugins = None
    else:
        skipped_plugins = 'not requested'
    results = []
    previous = _previous(args.out)
    with tempfile.TemporaryDirectory(prefix='onnx_parity_') as workdir:
        for name in args.presets.split(','):
            for flavour in flavours:
                print(f'== {name} ({flavour})', file=sys.stderr, flush=True)
                t0 = time.time()
                proc = subprocess.run(
                    [sys.executable, __file__, '--one', name, flavour, '--workdir', workdir,
                     '--images', str(args.images), '--threads', str(args.threads)],
                    capture_output=True, text=True)
                lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
                if proc.returncode or not lines:
                    tail = (proc.stderr.strip().splitlines() or ['?'])[-1]
                    results.append({'model': name, 'flavour': flavour, 'passed': False,
                                    'error': tail[:500]})
                else:
                    results.append(json.loads(lines[-1][7:]))
                r = results[-1]
                verdict = {True: 'PASS', False: 'FAIL', None: 'SKIP'}[r['passed']]
                print(f'   {verdict} in {time.time() - t0:.0f}s '
                      f'{r.get("violations") or r.get("error") or r.get("skipped") or ""}', file=sys.stderr, flush=True)
                _write(args.out, _merged(previous, results), skipped_plugins, args)
    print(f'wrote {args.out}')


def _previous(path) -> list:
    """Results already recorded (runs of other presets/flavours are kept, same ones replaced)."""
    try:
        with open(path) as f:
            return json.load(f).get('results', [])
    except (OSError, ValueError):
        return []


def _merged(previous, results) -> list:
    new = {(r['model'], r['flavour']) for r in results}
    return [r for r in previous if (r['model'], r['flavour']) not in new] + results


def _write(path, results, skipped_plugins, args):
    import onnxruntime
    import torch
    doc = {'what': 'ONNX (ONNX Runtime CPU) vs PyTorch FP32, end-to-end graph with raw outputs',
           'tolerances': 'fp32: raw max abs <= 1e-4, identical (prior, class) detections, boxes '
                         'and scores <= 1e-4, mask IoU >= 0.999 excluding pixels within 1e-4 of '
                         'the 0.5 threshold',
           'machine': {'cpu': platform.processor() or platform.machine(),
                       'cores': os.cpu_count(), 'threads': args.threads,
                       'torch': torch.__version__, 'onnxruntime': onnxruntime.__version__},
           'plugins_flavour_skipped': skipped_plugins,
           'all_passed': all(r['passed'] for r in results if r['passed'] is not None),
           'results': results}
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)


if __name__ == '__main__':
    main()
