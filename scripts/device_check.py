"""GPU part of scripts/device_check.sh (a GPU with nvcc and PyTorch, no TensorRT needed).

Runs the CUDA instance (libyolact_plugins_cuda.so, through its C API on PyTorch's CUDA memory and
stream) against the CPU instance on the plugin test cases, captures each plugin call into a CUDA
graph at the profile maximum, times each kernel, and runs the PyTorch model FP32/FP16 on the GPU
against the CPU. Prints one JSON object. --cases-only: just the case comparison (what
compute-sanitizer runs, small so that it stays within minutes).
"""
import argparse
import ctypes
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'tests' / 'plugins')]

from plugin_cases import dcn_case, nms_case, random_boxes  # noqa: E402
from yolact_deploy import plugins as P  # noqa: E402
from yolact_deploy.ops.dcn import output_size  # noqa: E402

vp, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_float
DT = {np.float32: 0, np.float16: 1}


def load(path):
    lib = ctypes.CDLL(str(path))
    lib.yd_last_error.restype = ctypes.c_char_p
    lib.yd_deform_im2col_cuda.restype = i32
    lib.yd_deform_im2col_cuda.argtypes = [i32, vp, vp, vp, vp] + [i64] * 6 + [i32] * 9 + [vp]
    lib.yd_fast_nms_cuda_workspace_bytes.restype = i64
    lib.yd_fast_nms_cuda_workspace_bytes.argtypes = [i64, i64, i64, i32, i32]
    lib.yd_fast_nms_cuda.restype = i32
    lib.yd_fast_nms_cuda.argtypes = ([i32, vp, vp, i64, i64, i64, f32, f32, i32, i32, i32, i32, vp, i64]
                                     + [vp] * 5 + [vp])
    return lib


def ptr(t):
    return ctypes.c_void_p(t.data_ptr())


def stream():
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


def check(lib, status):
    if status != 0:
        raise RuntimeError(f'status {status}: {lib.yd_last_error().decode()}')


def im2col_gpu(lib, x, off, mask, attrs):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (attrs[k] for k in ('kernel_size', 'stride', 'padding', 'dilation'))
    xt, ot, mt = (torch.from_numpy(np.ascontiguousarray(a)).cuda() for a in (x, off, mask))
    b, c, h, w = x.shape
    dg = mask.shape[1] // (kh * kw)
    ho, wo = off.shape[2], off.shape[3]
    out = torch.empty((b, c * kh * kw, ho * wo), dtype=xt.dtype, device='cuda')
    call = lambda: check(lib, lib.yd_deform_im2col_cuda(DT[x.dtype.type], ptr(xt), ptr(ot), ptr(mt), ptr(out), b, c, h, w, ho, wo,  # noqa: E731
                                                        kh, kw, sh, sw, ph, pw, dh, dw, dg, stream()))
    return out, call


def nms_gpu(lib, boxes, scores, attrs):
    b, n, c = scores.shape
    k = attrs.get('max_detections', 100)
    bt, st = (torch.from_numpy(np.ascontiguousarray(a)).cuda() for a in (boxes, scores))
    ws_bytes = lib.yd_fast_nms_cuda_workspace_bytes(b, n, c, attrs.get('top_k', 200), int(attrs.get('cross_class', False)))
    if ws_bytes < 0:
        raise RuntimeError(lib.yd_last_error().decode())
    ws = torch.empty(max(ws_bytes, 1), dtype=torch.uint8, device='cuda')
    outs = [torch.empty((b, 1), dtype=torch.int32, device='cuda'), torch.empty((b, k, 4), dtype=bt.dtype, device='cuda'),
            torch.empty((b, k), dtype=bt.dtype, device='cuda'), torch.empty((b, k), dtype=torch.int32, device='cuda'),
            torch.empty((b, k), dtype=torch.int32, device='cuda')]
    call = lambda: check(lib, lib.yd_fast_nms_cuda(  # noqa: E731
        DT[boxes.dtype.type], ptr(bt), ptr(st), b, n, c, attrs.get('conf_thresh', 0.05), attrs.get('iou_threshold', 0.5),
        attrs.get('top_k', 200), k, int(attrs.get('cross_class', False)), int(attrs.get('second_threshold', False)),
        ptr(ws), ws_bytes, *[ptr(o) for o in outs], stream()))
    return outs, call, ws_bytes


def compare_cases(lib, n_cases):
    """CUDA vs CPU instance: bit-identical in FP32 and FP16 (both compute in FP32 with the same operation
    order and no FMA; FP16 is loaded exactly and stored with round-to-nearest-even on both)."""
    res = {}
    for dtype in (np.float32, np.float16):
        bad = []
        for i in range(n_cases):
            x, off, mask, attrs = dcn_case(i, dtype)
            out, call = im2col_gpu(lib, x, off, mask, attrs)
            call()
            want = P.deform_im2col_cpu(x, off, mask, **attrs)
            if not np.array_equal(out.cpu().numpy().view(np.uint8), want.view(np.uint8)):
                bad.append(i)
        res[f'deform_im2col_{np.dtype(dtype).name}'] = {'cases': n_cases, 'mismatched': bad}
        bad = []
        for i in range(n_cases):
            boxes, scores, attrs = nms_case(i, dtype)
            outs, call, _ = nms_gpu(lib, boxes, scores, attrs)
            call()
            want = P.fast_nms_cpu(boxes, scores, **attrs)
            if not all(np.array_equal(o.cpu().numpy().view(np.uint8), np.asarray(w).view(np.uint8)) for o, w in zip(outs, want)):
                bad.append(i)
        res[f'fast_nms_{np.dtype(dtype).name}'] = {'cases': n_cases, 'mismatched': bad}
    torch.cuda.synchronize()
    return res


def profile_max_inputs():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 8, 57744).astype(np.float32)
    logits = torch.from_numpy(rng.standard_normal((8, 57744, 81)).astype(np.float32) * 3)
    scores = torch.softmax(logits, -1)[..., 1:].numpy()
    ho = output_size(35, 3, 2, 1, 1)
    dcn = (rng.standard_normal((8, 512, 35, 35)).astype(np.float32),
           (rng.standard_normal((8, 18, ho, ho)) * 3).astype(np.float32), rng.random((8, 9, ho, ho)).astype(np.float32),
           dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1)))
    return boxes, scores, dcn


def graphs_and_timing(lib):
    """Each call captured into a CUDA graph at the profile maximum (capture fails on any host sync),
    replayed and compared with the eager result; per-kernel times from the PyTorch profiler."""
    boxes, scores, (x, off, mask, attrs) = profile_max_inputs()
    out = {}
    for name, (outs, call) in {
            'fast_nms_b8_57744x80': nms_gpu(lib, boxes, scores, {})[:2],
            'deform_im2col_b8_512x35x35_s2': (lambda o, c: ([o], c))(*im2col_gpu(lib, x, off, mask, attrs))}.items():
        call()
        torch.cuda.synchronize()
        eager = [o.clone() for o in outs]
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        g = torch.cuda.CUDAGraph()
        entry = {}
        try:
            with torch.cuda.stream(s):
                with torch.cuda.graph(g, stream=s):
                    call()
            for o in outs:
                o.zero_()
            g.replay()
            torch.cuda.synchronize()
            entry['graph_capture'] = 'ok'
            entry['graph_equals_eager'] = all(torch.equal(a, b) for a, b in zip(outs, eager))
        except Exception as e:  # capture refused: a sync, an allocation or a host copy inside
            entry['graph_capture'] = f'failed: {e}'
        kernels = {}
        try:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                for _ in range(10):
                    call()
                torch.cuda.synchronize()
            for ev in prof.key_averages():
                t = getattr(ev, 'device_time_total', None)
                t = getattr(ev, 'cuda_time_total', 0) if t is None else t
                if t > 0:
                    kernels[ev.key[:120]] = round(t / 10, 2)   # µs per plugin call
        except Exception as e:  # the profiler needs CUPTI; the event timing below does not
            kernels = {'error': f'{type(e).__name__}: {e}'}
        entry['kernel_us_per_call'] = kernels
        t0 = torch.cuda.Event(enable_timing=True)
        t1 = torch.cuda.Event(enable_timing=True)
        t0.record()
        for _ in range(20):
            call()
        t1.record()
        torch.cuda.synchronize()
        entry['call_ms'] = round(t0.elapsed_time(t1) / 20, 4)
        out[name] = entry
    return out


def model_check():
    """The PyTorch model (a YOLACT++ preset with DCN, random lively weights) FP32/FP16 on the GPU vs FP32 on the CPU."""
    from yolact_deploy.testing import make_test_model
    torch.manual_seed(0)
    model = make_test_model('yolact_plus_resnet50', max_size=256)
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ref = model(x)
        gpu = model.cuda()(x.cuda())
        half = model.half()(x.cuda().half())
    flat = lambda o: [t for t in (o.values() if isinstance(o, dict) else (o if isinstance(o, (list, tuple)) else [o]))  # noqa: E731
                      if torch.is_tensor(t)]
    res = {}
    for name, out in (('fp32', gpu), ('fp16', half)):
        diffs = [float((a.float().cpu() - b.float()).abs().max()) for a, b in zip(flat(out), flat(ref)) if a.numel()]
        res[name] = {'outputs': len(diffs), 'max_abs_diff': max(diffs) if diffs else None}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lib', required=True)
    ap.add_argument('--cases', type=int, default=200)
    ap.add_argument('--cases-only', action='store_true')
    a = ap.parse_args()
    lib = load(a.lib)
    t = time.time()
    res = {'gpu': torch.cuda.get_device_name(), 'capability': list(torch.cuda.get_device_capability()),
           'torch': torch.__version__, 'cuda': torch.version.cuda, 'cases': compare_cases(lib, a.cases)}
    if not a.cases_only:
        res['profile_max'] = graphs_and_timing(lib)
        try:
            res['model'] = model_check()
        except Exception as e:
            res['model'] = {'error': f'{type(e).__name__}: {e}'}
    res['seconds'] = round(time.time() - t, 1)
    print(json.dumps(res))


if __name__ == '__main__':
    main()
