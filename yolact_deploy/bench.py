"""Latency and throughput of any backend (.pth, .onnx, .plan): the library behind ``yolact-bench``.

Method (the same for every backend, so numbers compare):
- the inputs are a real photo (a bundled COCO sample unless ``images`` is given), the same array
  repeated to the batch size, resized once beforehand when ``image_size`` is set;
- ``warmup`` untimed runs first (lazy initialisation, allocator growth, cuDNN/TensorRT autotuning,
  CUDA graph capture), then ``iters`` timed runs with ``time.perf_counter``;
- per batch size: ``end_to_end`` = ``Predictor.predict_batch`` (host preprocessing, inference, the
  shared numpy post-processing to final masks at image size); ``inference`` = ``Predictor.run``
  (no final post-processing); ``postprocess`` = that host post-processing alone
  (:func:`~yolact_deploy.postprocess.finalize` of the batch's engine-contract outputs, the same
  code for every backend; ``postprocess_per_image_ms`` = its p50 / batch); for TensorRT also GPU-only times from CUDA events, with and without
  the H2D/D2H copies; for PyTorch the time of each stage (the split of
  benchmarks/torch_cpu_stages.py: preprocess, backbone, FPN, protonet, heads, detect);
- statistics: mean, standard deviation, min, p50, p90, p99, max over the timed runs (p99 of fewer
  than 100 runs is close to the max: the JSON says how many runs there were); throughput =
  batch / mean latency;
- machine facts at start and the load average at start and end (a busy machine inflates numbers).
"""
from __future__ import annotations

import datetime
import glob
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import __version__
from .errors import InputError

# ---------------------------------------------------------------------------------------------------
# Timing and statistics (shared with benchmarks/torch_cpu_stages.py)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted sequence."""
    if not sorted_values:
        raise ValueError('no values')
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarize(samples_s: Sequence[float]) -> dict:
    """Seconds -> milliseconds statistics. ``median_ms`` (= ``p50_ms``) is kept for older readers."""
    ms = sorted(float(s) * 1000.0 for s in samples_s)
    if not ms:
        raise ValueError('no timed runs')
    out = {'runs': len(ms), 'mean_ms': statistics.fmean(ms),
           'std_ms': statistics.pstdev(ms) if len(ms) > 1 else 0.0, 'min_ms': ms[0],
           'p50_ms': percentile(ms, 50), 'p90_ms': percentile(ms, 90), 'p99_ms': percentile(ms, 99),
           'max_ms': ms[-1]}
    out['median_ms'] = out['p50_ms']
    return out


def timed(fn: Callable[[], object], warmup: int, iters: int) -> List[float]:
    """Runs ``fn`` ``warmup`` times untimed, then ``iters`` times; returns the timed durations (s)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def throughput(summary: dict, batch: int) -> float:
    """Images per second at the mean latency."""
    return batch * 1000.0 / summary['mean_ms'] if summary['mean_ms'] > 0 else float('inf')


# ---------------------------------------------------------------------------------------------------
# Machine facts

def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read('/proc/cpuinfo') or ''
    for line in text.splitlines():
        if line.lower().startswith(('model name', 'hardware', 'cpu model')):
            return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(module: str) -> Optional[str]:
    try:
        mod = __import__(module)
    except Exception:   # noqa: BLE001 - absent or broken: not installed for our purpose
        return None
    return getattr(mod, '__version__', 'unknown')


def jetson_facts() -> Optional[dict]:
    """Power mode and clocks on a Jetson (None elsewhere); every field None when unreadable."""
    release = _read('/etc/nv_tegra_release')
    model = (_read('/proc/device-tree/model') or '').replace('\x00', '')
    if release is None and 'jetson' not in model.lower() and 'tegra' not in model.lower():
        return None
    facts = {'model': model or None, 'l4t_release': release.splitlines()[0] if release else None,
             'nvpmodel': None, 'gpu_freq_hz': None, 'cpu_freq_khz': None}
    if shutil.which('nvpmodel'):
        try:
            out = subprocess.run(['nvpmodel', '-q'], capture_output=True, text=True, timeout=5)
            facts['nvpmodel'] = ' '.join(out.stdout.split()) or out.stderr.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    for dev in sorted(glob.glob('/sys/class/devfreq/*')):
        name = os.path.basename(dev)
        if any(k in name for k in ('gpu', 'ga10b', 'gv11b', 'gp10b', 'gb10b')):
            cur, lo, hi = (_read(os.path.join(dev, f)) for f in ('cur_freq', 'min_freq', 'max_freq'))
            facts['gpu_freq_hz'] = {'device': name, 'cur': cur, 'min': lo, 'max': hi}
            if cur and hi:
                facts['gpu_clock_at_max'] = cur == hi   # jetson_clocks locks cur to max
            break
    cpus = {}
    for cpu in sorted(glob.glob('/sys/devices/system/cpu/cpu[0-9]*/cpufreq')):
        cur = _read(os.path.join(cpu, 'scaling_cur_freq'))
        if cur:
            cpus[cpu.split('/')[-2]] = int(cur)
    facts['cpu_freq_khz'] = cpus or None
    return facts


def machine_facts() -> dict:
    """CPU, memory, load, library versions, GPU and Jetson facts (missing ones are None)."""
    mem = None
    text = _read('/proc/meminfo') or ''
    for line in text.splitlines():
        if line.startswith('MemTotal:'):
            mem = round(int(line.split()[1]) / 2 ** 20, 1)
    facts = {
        'platform': platform.platform(), 'machine': platform.machine(), 'cpu': cpu_model(),
        'cpu_cores': os.cpu_count(), 'memory_gib': mem,
        'loadavg_start': list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
        'python': platform.python_version(),
        'versions': {'yolact_deploy': __version__, 'numpy': np.__version__,
                     'torch': _version('torch'), 'onnxruntime': _version('onnxruntime'),
                     'openvino': _version('openvino'),
                     'tensorrt': None, 'cuda_python': None, 'opencv': _version('cv2')},
        'gpu': None, 'gpu_note': None, 'jetson': jetson_facts(),
    }
    from .deploy import trt_compat as compat
    try:
        facts['versions']['tensorrt'] = compat.version_string()
    except Exception as exc:   # noqa: BLE001
        facts['versions']['tensorrt'] = None
        facts['gpu_note'] = str(exc).splitlines()[0][:200]
    try:
        import cuda.bindings
        facts['versions']['cuda_python'] = getattr(cuda.bindings, '__version__', 'unknown')
    except ImportError:
        pass
    try:
        facts['gpu'] = compat.gpu_info(0)
    except Exception as exc:   # noqa: BLE001 - no GPU, no driver, no cuda-python
        facts['gpu_note'] = str(exc).splitlines()[0][:200]
    torch_mod = sys.modules.get('torch')
    if torch_mod is not None:
        facts['torch_threads'] = torch_mod.get_num_threads()
    return facts


# ---------------------------------------------------------------------------------------------------
# Inputs

def bench_images(paths: Optional[Sequence[str]] = None, image_size=None) -> List[np.ndarray]:
    """The input photos (default: one bundled COCO sample), resized to ``(H, W)`` if given."""
    import cv2

    from .deploy.media import load_image
    if not paths:
        from .assets import default_sample
        paths = [default_sample()]
    images = []
    for p in paths:
        if not os.path.isfile(p):
            raise InputError(f'image not found: {p}')
        im = load_image(p)
        if image_size:
            h, w = image_size
            im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
        images.append(im)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise InputError(f'benchmark images differ in size {sorted(shapes)}: pass --image-size '
                         f'HxW so every batch is one call')
    return images


def make_batch(images: Sequence[np.ndarray], batch: int) -> List[np.ndarray]:
    return [images[i % len(images)] for i in range(batch)]


# ---------------------------------------------------------------------------------------------------
# Per-stage PyTorch times (same split as benchmarks/torch_cpu_stages.py)

def torch_stage_functions(model, images: Sequence[np.ndarray], device: str = 'cpu') -> dict:
    """Closures for each stage, run in order: preprocess, backbone, fpn, protonet, heads, detect.

    ``heads`` includes the protonet (it is part of ``Yolact.heads``), so ``protonet`` is also shown
    alone; their sum is not the total.
    """
    import torch

    from .transforms import preprocess
    cfg = model.config
    sel = cfg.backbone.selected_layers
    state: dict = {}

    @torch.no_grad()
    def pre():
        state['x'] = preprocess(images, cfg, device)

    @torch.no_grad()
    def backbone():
        state['b'] = model.backbone(state['x'])

    @torch.no_grad()
    def fpn():
        state['f'] = model.fpn([state['b'][i] for i in sel])

    @torch.no_grad()
    def proto():
        model.proto_net(state['f'][cfg.proto_src])

    @torch.no_grad()
    def heads():
        raw = model.heads(state['f'])
        raw['conf'] = torch.softmax(raw['conf'], -1)
        state['raw'] = raw

    @torch.no_grad()
    def detect():
        model.detect(state['raw'])

    return {'preprocess': pre, 'backbone': backbone, 'fpn': fpn, 'protonet': proto,
            'heads': heads, 'detect': detect}


def torch_stage_times(model, images, warmup: int, iters: int, device: str = 'cpu') -> dict:
    fns = torch_stage_functions(model, images, device)
    for fn in fns.values():          # fill the state once, in order
        fn()
    return {name: summarize(timed(fn, warmup, iters)) for name, fn in fns.items()}


# ---------------------------------------------------------------------------------------------------
# One model

def describe_predictor(predictor) -> dict:
    meta = dict(getattr(predictor, 'meta', {}) or {})
    out = {'backend': predictor.backend, 'input_size': getattr(predictor, 'input_size', None),
           'preset': meta.get('preset'), 'precision': meta.get('precision'),
           'flavour': meta.get('flavour'), 'graph': meta.get('graph')}
    if predictor.backend == 'torch':
        out.update(preset=predictor.config.name, precision='fp32', flavour='pytorch')
    if predictor.backend == 'tensorrt':
        sc = predictor.sidecar
        out.update(precision=sc.get('precision'), tensorrt=sc.get('tensorrt_version'),
                   profile=sc.get('profiles'), plugins=bool(sc.get('plugin_library')),
                   cuda_graph=predictor.use_cuda_graph)
    return out


def bench_predictor(predictor, images: Sequence[np.ndarray], batches: Sequence[int], *,
                    warmup: int = 3, iters: int = 20, score_threshold: float = 0.15,
                    stages: bool = True, progress: Optional[Callable[[str], None]] = None) -> dict:
    """Every mode for every batch size (see the module docstring)."""
    say = progress or (lambda text: None)
    results = []
    for b in batches:
        batch = make_batch(images, b)
        entry: Dict[str, object] = {'batch': b}
        say(f'batch {b}: end-to-end')
        e2e = summarize(timed(lambda: predictor.predict_batch(batch, score_threshold),
                              warmup, iters))
        say(f'batch {b}: inference')
        inf = summarize(timed(lambda: predictor.run(batch), warmup, iters))
        entry['end_to_end'] = e2e
        entry['inference'] = inf
        entry['images_per_s'] = {'end_to_end': throughput(e2e, b), 'inference': throughput(inf, b)}
        say(f'batch {b}: host post-processing')
        post = _postprocess_times(predictor, batch, score_threshold, warmup, iters)
        entry['postprocess'] = post
        entry['postprocess_per_image_ms'] = post['p50_ms'] / b
        entry['postprocess_share_of_end_to_end'] = post['p50_ms'] / e2e['p50_ms']
        out = predictor.predict_batch(batch, score_threshold)
        entry['detections_per_image'] = [len(r) for r in out.results][:8]
        if predictor.backend == 'tensorrt':
            entry['gpu'] = _gpu_times(predictor, batch, warmup, iters)
        if stages and predictor.backend == 'torch':
            say(f'batch {b}: PyTorch stages')
            entry['stages'] = torch_stage_times(predictor.model, batch, warmup, iters,
                                                predictor.device)
        results.append(entry)
    return {'results': results}


def _postprocess_times(predictor, batch, score_threshold: float, warmup: int, iters: int) -> dict:
    """Host post-processing of one batch: ``finalize`` on the contract outputs of one run."""
    from .postprocess import finalize
    detections, _ = predictor.run(batch)
    sizes = [im.shape[:2] for im in batch]
    return summarize(timed(lambda: finalize(detections, sizes, predictor.class_names,
                                            score_threshold=score_threshold), warmup, iters))


def _gpu_times(predictor, batch, warmup: int, iters: int) -> dict:
    """TensorRT: CUDA-event times of one batch (ms): with transfers, compute only, copies."""
    arr = np.ascontiguousarray(np.stack(batch))
    samples: Dict[str, List[float]] = {}
    for i in range(warmup + iters):
        predictor.infer(arr, timed=True)
        if i >= warmup:
            for key, value in predictor.last_timing.items():
                samples.setdefault(key, []).append(value / 1000.0)
    out = {f'{k}': summarize(v) for k, v in samples.items()}
    names = {'total': 'with_transfers', 'compute': 'compute_only', 'h2d': 'h2d', 'd2h': 'd2h'}
    return {names.get(k, k): v for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------
# Output

CSV_FIELDS = ('model', 'backend', 'precision', 'batch', 'mode', 'runs', 'mean_ms', 'std_ms', 'min_ms',
              'p50_ms', 'p90_ms', 'p99_ms', 'max_ms', 'images_per_s')


def csv_rows(report: dict) -> List[dict]:
    rows = []
    for m in report['models']:
        for r in m['results']:
            modes = [('end_to_end', r['end_to_end']), ('inference', r['inference'])]
            if 'postprocess' in r:
                modes.append(('postprocess', r['postprocess']))
            modes += [(f'gpu_{k}', v) for k, v in r.get('gpu', {}).items()]
            modes += [(f'stage_{k}', v) for k, v in r.get('stages', {}).items()]
            for mode, s in modes:
                row = {'model': m['model'], 'backend': m['backend'], 'precision': m.get('precision'),
                       'batch': r['batch'], 'mode': mode}
                row.update({k: round(s[k], 3) if isinstance(s[k], float) else s[k]
                            for k in CSV_FIELDS if k in s})
                row['images_per_s'] = round(throughput(s, r['batch']), 2) \
                    if mode in ('end_to_end', 'inference') or mode.startswith('gpu_') else ''
                rows.append(row)
    return rows


def write_csv(report: dict, path: str) -> None:
    import csv

    from .deploy.fileio import atomic_output
    with atomic_output(path, suffix='.csv') as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for row in csv_rows(report):
                writer.writerow(row)


def new_report(settings: dict) -> dict:
    return {'tool': 'yolact-bench', 'yolact_deploy': __version__,
            'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'settings': settings, 'machine': machine_facts(), 'models': []}


def finish_report(report: dict) -> dict:
    report['machine']['loadavg_end'] = list(os.getloadavg()) if hasattr(os, 'getloadavg') else None
    return report


def summary_lines(report: dict) -> List[str]:
    lines = []
    for m in report['models']:
        head = f"{m['model']} ({m['backend']}, {m.get('preset') or '?'}, {m.get('precision') or '?'})"
        lines.append(head)
        for r in m['results']:
            e, i = r['end_to_end'], r['inference']
            text = (f"  batch {r['batch']:>2}: end-to-end p50 {e['p50_ms']:8.1f} ms "
                    f"(p90 {e['p90_ms']:.1f}, p99 {e['p99_ms']:.1f}, sd {e['std_ms']:.1f}) "
                    f"{r['images_per_s']['end_to_end']:7.1f} img/s | inference p50 "
                    f"{i['p50_ms']:8.1f} ms {r['images_per_s']['inference']:7.1f} img/s")
            if 'postprocess' in r:
                text += (f" | host post-processing {r['postprocess_per_image_ms']:.1f} ms/image "
                         f"({100 * r['postprocess_share_of_end_to_end']:.0f}% of end-to-end)")
            gpu = r.get('gpu')
            if gpu:
                text += (f" | GPU {gpu['with_transfers']['p50_ms']:.2f} ms with copies"
                         + (f", {gpu['compute_only']['p50_ms']:.2f} compute"
                            if 'compute_only' in gpu else ''))
            lines.append(text)
            if r.get('stages'):
                lines.append('    stages p50: ' + ', '.join(
                    f"{k} {v['p50_ms']:.1f}" for k, v in r['stages'].items()) + ' ms')
    return lines
