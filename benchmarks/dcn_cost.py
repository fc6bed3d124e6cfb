"""Cost of the plugin-free DCN (``--dcn gridsample``) against ONNX ``DeformConv`` on ONNX Runtime CPU
(and the gridsample form on OpenVINO CPU), per deformable conv layer of YOLACT++ at 550 px.

Each distinct DCN layer of the ResNet backbones (channels, input size, stride) is exported alone, the
way ``yolact-export`` writes it (``conv_offset_mask`` + the deformable conv; ``--dcn deformconv`` vs
``--dcn gridsample``), and timed at batch 1 with 2 threads, runs interleaved across the variants (a
shared machine's load falls on all alike). The per-model estimate sums layer times times the number of
such layers in ``yolact_plus_resnet50`` / ``yolact_plus_base``.

    python benchmarks/dcn_cost.py [--runs 7] [--threads 2] [--json benchmarks/results/dcn_cost.json]
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def dcn_layers(preset: str) -> collections.Counter:
    """(channels, input size, stride) -> count of the DCN convs of ``preset`` at its input size."""
    # The input size of stage k (k >= 1) is ceil(s0 / 2**(k-1)) with s0 = 138 at
    # 550; its first block has stride 2.
    from yolact_deploy.config import get_preset
    from yolact_deploy.model.backbones import uses_dcn
    cfg = get_preset(preset)
    b = cfg.backbone
    s0 = -(-cfg.max_size // 4)
    out = collections.Counter()
    for stage, (blocks, n_dcn) in enumerate(zip(b.layers, b.dcn_layers)):
        planes = 64 * 2 ** stage
        size_in = s0 if stage <= 1 else -(-s0 // 2 ** (stage - 1))
        size_out = size_in if stage == 0 else -(-size_in // 2)
        for i in range(blocks):
            if n_dcn and uses_dcn(i, blocks, n_dcn, b.dcn_interval):
                out[(planes, size_in, 2) if i == 0 and stage else (planes, size_out, 1)] += 1
    return out


def export_layer(channels: int, size: int, stride: int, dcn: str, path: str) -> None:
    import torch

    from yolact_deploy.export.dcn_gridsample import dcn_as_gridsample
    from yolact_deploy.export.translations import portable_table
    from yolact_deploy.model.backbones import ModulatedDeformConv
    torch.manual_seed(0)
    layer = ModulatedDeformConv(channels, channels, 3, stride=stride, padding=1).eval()
    torch.nn.init.normal_(layer.conv_offset_mask.weight, std=0.01)
    x = torch.randn(1, channels, size, size)
    routing = dcn_as_gridsample() if dcn == 'gridsample' else contextlib.nullcontext()
    with torch.no_grad(), routing, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        program = torch.onnx.export(layer, (x,), dynamo=True, opset_version=19,
                                    input_names=['x'], custom_translation_table=portable_table(),
                                    optimize=True, verbose=False)
    program.save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=7)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', default=os.path.join(HERE, 'results', 'dcn_cost.json'))
    args = p.parse_args()
    import numpy as np
    import onnxruntime as ort
    try:
        import openvino as ov
    except ImportError:
        ov = None
    presets = ('yolact_plus_resnet50', 'yolact_plus_base')
    counts = {name: dcn_layers(name) for name in presets}
    shapes = sorted(set().union(*counts.values()))
    rows = []
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix='dcn_cost_') as work:
        for channels, size, stride in shapes:
            runners = {}
            x = np.random.default_rng(0).standard_normal((1, channels, size, size), np.float32)
            for dcn in ('deformconv', 'gridsample'):
                path = os.path.join(work, f'{channels}_{size}_{stride}_{dcn}.onnx')
                export_layer(channels, size, stride, dcn, path)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
                sess = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
                runners[f'onnxruntime_{dcn}'] = lambda s=sess: s.run(None, {'x': x})
                if ov is not None and dcn == 'gridsample':
                    compiled = ov.Core().compile_model(path, 'CPU', {
                        'INFERENCE_NUM_THREADS': args.threads, 'INFERENCE_PRECISION_HINT': 'f32'})
                    req = compiled.create_infer_request()
                    runners['openvino_gridsample'] = lambda r=req: r.infer({0: x})
            outs = {k: np.asarray(f()[0]) for k, f in runners.items()}   # warm-up + agreement
            ref = outs['onnxruntime_deformconv']
            times = {k: [] for k in runners}
            for _ in range(args.runs):
                for k, f in runners.items():
                    t0 = time.perf_counter()
                    f()
                    times[k].append((time.perf_counter() - t0) * 1000)
            row = {'channels': channels, 'input_size': size, 'stride': stride,
                   'median_ms': {k: round(float(np.median(v)), 2) for k, v in times.items()},
                   'max_abs_vs_deformconv': {k: float(np.abs(v - ref).max())
                                             for k, v in outs.items()}}
            rows.append(row)
            print(f'{channels}ch {size}px s{stride}: {row["median_ms"]}', file=sys.stderr,
                  flush=True)
    per_model = {}
    for name in presets:
        total = collections.Counter()
        for row in rows:
            n = counts[name].get((row['channels'], row['input_size'], row['stride']), 0)
            for k, v in row['median_ms'].items():
                total[k] += n * v
        per_model[name] = {'dcn_layers': sum(counts[name].values()),
                           'sum_median_ms': {k: round(v, 1) for k, v in total.items()}}
    doc = {'what': __doc__.splitlines()[0], 'method': 'batch 1, one layer per graph, median of '
           f'{args.runs} interleaved runs after one warm-up, {args.threads} threads',
           'machine': {'cpu': platform.processor() or platform.machine(), 'cores': os.cpu_count(),
                       'loadavg_1min': [round(load_start, 2), round(os.getloadavg()[0], 2)],
                       'onnxruntime': ort.__version__, 'openvino': ov.__version__ if ov else None},
           'layers': rows, 'per_model': per_model}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    tmp = args.json + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, args.json)
    print(json.dumps(per_model, indent=1))
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
