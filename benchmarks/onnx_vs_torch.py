"""End-to-end CPU latency: ONNX Runtime (exported graph) against PyTorch, same threads, same input.

    python benchmarks/onnx_vs_torch.py --presets yolact_resnet50 yolact_plus_resnet50 --threads 2 \
        --iters 5 --json benchmarks/results/onnx_vs_torch.json

Per model, on one bundled COCO photo (640x480, batch 1), warm-up runs excluded:

- ``end_to_end``: BGR uint8 image -> contract outputs. PyTorch: ``TorchPredictor.run``
  (preprocessing, network, decode + Fast NMS + mask assembly + re-scoring). ONNX Runtime: one run
  of the end-to-end graph (all of that in-graph);
- ``network``: PyTorch preprocessing + forward; ONNX Runtime: the ``--raw`` graph (preprocessing +
  network). ``post = end_to_end - network`` and its share of the total is the in-graph
  post-processing cost;
- ``finalize``: the shared numpy step to per-image results (identical for every backend; reported
  once, not in the ratio).

Weights are lively random in the official layout (yolact_deploy.testing), or the bundled model
(``--bundled``). The machine is shared: the load average is recorded with the numbers.
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

import torch  # noqa: E402

from yolact_deploy.bench import machine_facts, summarize, timed  # noqa: E402


def _model(name: str):
    from yolact_deploy.assets import default_sample, default_weights
    from yolact_deploy.checkpoint import load_model
    from yolact_deploy.config import get_preset
    from yolact_deploy.model import Yolact
    from yolact_deploy.testing import lively_random_init
    from yolact_deploy.transforms import load_image, preprocess
    if name == 'bundled':
        return load_model(default_weights())
    cfg = get_preset(name)
    torch.manual_seed(0)
    return lively_random_init(Yolact(cfg).eval(), seed=0,
                              example=preprocess([load_image(default_sample())], cfg))


def bench(name: str, threads: int, warmup: int, iters: int, workdir: str) -> dict:
    from yolact_deploy.assets import default_sample
    from yolact_deploy.export import ExportOptions, export_onnx
    from yolact_deploy.postprocess import finalize
    from yolact_deploy.runtime.onnxruntime_backend import OnnxRuntimePredictor
    from yolact_deploy.runtime.torch_backend import TorchPredictor
    from yolact_deploy.transforms import load_image, preprocess
    torch.set_num_threads(threads)
    model = _model(name)
    image = load_image(default_sample())
    e2e_path = os.path.join(workdir, f'{name}.onnx')
    raw_path = os.path.join(workdir, f'{name}_raw.onnx')
    export_onnx(model, e2e_path, ExportOptions(), quiet=True)
    export_onnx(model, raw_path, ExportOptions(raw=True), quiet=True)
    tp = TorchPredictor(model)
    e2e = OnnxRuntimePredictor(e2e_path, threads=threads)
    raw = OnnxRuntimePredictor(raw_path, threads=threads)
    batch = image[None]

    def torch_network():
        with torch.no_grad():
            return model(preprocess([image], model.config))

    dets, _ = tp.run([image])
    out = {
        'model': name, 'preset': model.config.name, 'max_size': model.config.max_size,
        'threads': threads, 'image_hw': list(image.shape[:2]),
        'detections': int(dets['num_detections'][0]),
        'torch': {'end_to_end': summarize(timed(lambda: tp.run([image]), warmup, iters)),
                  'network': summarize(timed(torch_network, warmup, iters))},
        'onnxruntime': {'end_to_end': summarize(timed(lambda: e2e.run_graph(batch), warmup, iters)),
                        'network': summarize(timed(lambda: raw.run_graph(batch), warmup, iters))},
        'finalize': summarize(timed(lambda: finalize(dets, [image.shape[:2]], model.config.class_names),
                                    1, iters)),
    }
    for side in ('torch', 'onnxruntime'):
        total = out[side]['end_to_end']['p50_ms']
        post = max(total - out[side]['network']['p50_ms'], 0.0)
        out[side]['post_ms'] = round(post, 2)
        out[side]['post_share'] = round(post / total, 4) if total else None
    out['ratio_ort_over_torch'] = round(out['onnxruntime']['end_to_end']['p50_ms']
                                        / out['torch']['end_to_end']['p50_ms'], 3)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--presets', nargs='+', default=['yolact_resnet50', 'yolact_plus_resnet50'],
                   help="official presets, or 'bundled'")
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--json', default=os.path.join(HERE, 'results', 'onnx_vs_torch.json'))
    args = p.parse_args()
    report = {'what': __doc__.split('\n\n')[0].strip(), 'target': 'onnxruntime <= 0.6x torch',
              'machine': machine_facts(), 'results': []}
    with tempfile.TemporaryDirectory(prefix='onnx_bench_') as workdir:
        for name in args.presets:
            t0 = time.time()
            r = bench(name, args.threads, args.warmup, args.iters, workdir)
            report['results'].append(r)
            print(f"{name}: torch {r['torch']['end_to_end']['p50_ms']:.0f} ms, onnxruntime "
                  f"{r['onnxruntime']['end_to_end']['p50_ms']:.0f} ms (x{r['ratio_ort_over_torch']}); "
                  f"post-processing share torch {r['torch']['post_share']}, onnxruntime "
                  f"{r['onnxruntime']['post_share']} ({time.time() - t0:.0f}s)", flush=True)
    report['loadavg_end'] = list(os.getloadavg())
    tmp = args.json + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, args.json)
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
