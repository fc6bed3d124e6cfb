"""The TensorRT backend: runs engines built by ``yolact-export --to trt`` (TensorRT 10.3+ / 11.x).

- Before anything touches the GPU, the engine's sidecar (``model.plan.json``) is checked against the
  engine file, the installed TensorRT, the GPU and the plugin library: :func:`check_compatibility`
  (pure, tested without a GPU) turns each mismatch into one clear line.
- Memory and streams through cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` on older
  cuda-python): device buffers, pinned (page-locked) host buffers, one non-blocking stream,
  asynchronous H2D copy -> ``execute_async_v3`` -> D2H copies, one synchronisation per batch.
  Optional CUDA graph per input shape (``cuda_graph=True``). pycuda is not used.
- The engine's outputs are the engine contract; :func:`.predictor.normalize_contract` and the shared
  :func:`yolact_deploy.postprocess.finalize` make the final results, exactly as for ONNX Runtime.
"""
from __future__ import annotations

import copy
import ctypes
import hashlib
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..deploy import trt_compat as compat
from ..deploy.contract import INPUT_NAME
from ..deploy.plugin_library import load_trt_plugins
from ..deploy.sidecar import (SIDECAR_KIND, SIDECAR_SCHEMA, EngineError,  # noqa: F401  (API)
                              check_compatibility, elf_machine, host_machine, profile_of,
                              read_sidecar, sha256_file, sidecar_path)
from ..errors import InputError, YolactError
from .predictor import Predictor, normalize_contract


def check_input(shape: Sequence[int], profile: Tuple[List[int], List[int], List[int]]) -> None:
    """One line when a ``[B, H, W, 3]`` batch is outside the engine's optimization profile."""
    lo, _, hi = profile
    if len(shape) != 4 or shape[3] != 3:
        raise InputError(f'expected a uint8 batch [B, H, W, 3], got shape {list(shape)}')
    b, h, w = shape[:3]
    if not lo[0] <= b <= hi[0]:
        raise InputError(f'batch {b} is outside the engine profile (batch {lo[0]}..{hi[0]}): '
                         f'rebuild with --batch MIN,OPT,MAX covering it, or send smaller batches')
    if not (lo[1] <= h <= hi[1] and lo[2] <= w <= hi[2]):
        raise InputError(f'image size {h}x{w} is outside the engine profile ({lo[1]}x{lo[2]} .. '
                         f'{hi[1]}x{hi[2]}): rebuild with --image-size, or resize the images')


def cuda_device_index(device: Optional[str]) -> int:
    """None / 'cpu' / 'cuda' -> 0 ('cpu' is the reference's device in yolact-validate; TensorRT
    always runs on a GPU); 'cuda:N' -> N."""
    if device in (None, '', 'cpu', 'cuda', 'gpu'):
        return 0
    if device.startswith('cuda:'):
        try:
            return int(device.split(':', 1)[1])
        except ValueError:
            pass
    raise InputError(f"unknown device '{device}' for TensorRT: use cuda or cuda:N")


# ---------------------------------------------------------------------------------------------------
# GPU memory (cuda-python)

class _Buffer:
    """A device buffer plus a pinned host buffer of the same capacity."""

    def __init__(self, cudart, nbytes: int):
        self.cudart = cudart
        self.nbytes = max(int(nbytes), 1)
        self.device = compat.cuda_call(cudart.cudaMalloc(self.nbytes), 'cudaMalloc')
        self.host_ptr = compat.cuda_call(cudart.cudaMallocHost(self.nbytes), 'cudaMallocHost')
        raw = (ctypes.c_uint8 * self.nbytes).from_address(int(self.host_ptr))
        self.host = np.ctypeslib.as_array(raw)

    def view(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape)) if len(shape) else 1
        return self.host[:count * dtype.itemsize].view(dtype).reshape(shape)

    def free(self) -> None:
        if self.device is not None:
            self.cudart.cudaFree(self.device)
            self.device = None
        if self.host_ptr is not None:
            self.host = None
            self.cudart.cudaFreeHost(self.host_ptr)
            self.host_ptr = None


class _Timer:
    """CUDA events around the stages of one batch (GPU time, excludes host work)."""

    def __init__(self, cudart, n: int = 4):
        self.cudart = cudart
        self.events = [compat.cuda_call(cudart.cudaEventCreate(), 'cudaEventCreate') for _ in range(n)]

    def record(self, i: int, stream) -> None:
        compat.cuda_call(self.cudart.cudaEventRecord(self.events[i], stream), 'cudaEventRecord')

    def elapsed_ms(self, a: int, b: int) -> float:
        compat.cuda_call(self.cudart.cudaEventSynchronize(self.events[b]), 'cudaEventSynchronize')
        return float(compat.cuda_call(self.cudart.cudaEventElapsedTime(self.events[a],
                                                                       self.events[b]),
                                      'cudaEventElapsedTime'))

    def free(self) -> None:
        for e in self.events:
            self.cudart.cudaEventDestroy(e)
        self.events = []


# ---------------------------------------------------------------------------------------------------
# The predictor

class TensorRTPredictor(Predictor):
    backend = 'tensorrt'

    def __init__(self, path: str, *, device: Optional[str] = None,
                 plugin_library: Optional[str] = None, sidecar: Optional[str] = None,
                 cuda_graph: bool = False, score_threshold: float = 0.0, cross_class: bool = False,
                 strict_plugin: bool = True, verbose: bool = False, quiet: bool = False):
        if not os.path.isfile(path):
            raise InputError(f'engine file not found: {path}')
        self.path = path
        self.score_threshold = score_threshold
        self.sidecar = read_sidecar(path, sidecar)
        self.meta = dict(self.sidecar['model'])
        if cross_class and not self.meta.get('cross_class_nms'):
            raise InputError(f'{os.path.basename(path)} was built with class-wise Fast NMS; '
                             're-export it with --cross-class-nms')
        self.class_names = tuple(self.meta.get('class_names', ()))
        self.category_ids = tuple(self.meta.get('category_ids', ()))
        self.input_size = int(self.meta.get('input', {}).get('network_size', [550])[0])
        self.profile = profile_of(self.sidecar)
        self.use_cuda_graph = bool(cuda_graph)
        self.cuda_graph_error: Optional[str] = None   # why capture failed (then: plain execution)
        self.quiet = quiet
        trt = compat.import_tensorrt()
        self.trt = trt
        self.cudart = compat.import_cudart()
        self.device_index = cuda_device_index(device)
        gpu = compat.gpu_info(self.device_index)
        self.gpu = gpu
        plugin_path = find_plugin_library(self.sidecar, plugin_library)
        with open(path, 'rb') as f:
            blob = f.read()
        self.warnings = check_compatibility(
            self.sidecar, installed_trt=trt.__version__, gpu=gpu,
            engine_sha256=hashlib.sha256(blob).hexdigest(), plugin_path=plugin_path,
            plugin_sha256=sha256_file(plugin_path) if plugin_path and os.path.isfile(plugin_path)
            else None, strict_plugin=strict_plugin)
        for w in self.warnings:
            if not quiet:
                print(f'warning: {w}', file=sys.stderr)

        compat.cuda_call(self.cudart.cudaSetDevice(self.device_index), 'cudaSetDevice')
        # process-wide logger: TensorRT keeps a raw pointer to it (init_libnvinfer_plugins, runtimes)
        self.logger = compat.init_nvinfer_plugins(trt, verbose)
        plugin = self.sidecar.get('plugin_library')
        if plugin:
            load_trt_plugins(trt, plugin_path, plugin.get('ops', []))
        runtime = trt.Runtime(self.logger)
        engine = runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise EngineError(f'TensorRT could not deserialize {path} (see its message above)')
        self.runtime, self.engine = runtime, engine
        context = engine.create_execution_context()
        if context is None:
            raise EngineError(f'TensorRT could not create an execution context for {path} '
                              f'(out of GPU memory?)')
        self.context = context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        if self.inputs != [INPUT_NAME]:
            raise EngineError(f'{path}: expected one input {INPUT_NAME!r}, the engine has '
                              f'{self.inputs}')
        missing = [k for k in ('num_detections', 'boxes', 'scores', 'classes', 'masks')
                   if k not in self.outputs]
        if missing:
            raise EngineError(f'{path} lacks engine-contract outputs {missing} (raw graphs cannot '
                              f'be run by this backend; build from the end-to-end ONNX)')
        self.dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        lo, opt, hi = (list(s) for s in engine.get_tensor_profile_shape(INPUT_NAME, 0))
        self.profile = (lo, opt, hi)           # the engine's own profile wins over the sidecar
        self.stream = compat.cuda_call(
            self.cudart.cudaStreamCreateWithFlags(self.cudart.cudaStreamNonBlocking),
            'cudaStreamCreateWithFlags')
        self.buffers: Dict[str, _Buffer] = {}
        self.shapes: Dict[str, Tuple[int, ...]] = {}
        self.current_shape: Optional[Tuple[int, ...]] = None
        self.graphs: Dict[Tuple[int, ...], tuple] = {}
        self.timer = _Timer(self.cudart)
        self.last_timing: Dict[str, float] = {}

    # -- setup ---------------------------------------------------------------------------------
    def _prepare(self, shape: Tuple[int, ...]) -> None:
        """Input shape -> output shapes, buffers (grown when needed) and tensor addresses."""
        if shape == self.current_shape:
            return
        context = self.context
        if not context.set_input_shape(INPUT_NAME, shape):
            raise InputError(f'TensorRT rejected input shape {list(shape)} (profile '
                             f'{self.profile[0]} .. {self.profile[2]})')
        unresolved = context.infer_shapes()
        if unresolved:
            raise EngineError(f'TensorRT cannot infer the shapes of {list(unresolved)}')
        shapes = {INPUT_NAME: tuple(shape)}
        for name in self.outputs:
            shapes[name] = tuple(context.get_tensor_shape(name))
        grown = False
        for name, s in shapes.items():
            nbytes = int(np.prod(s)) * self.dtypes[name].itemsize
            buf = self.buffers.get(name)
            if buf is None or buf.nbytes < nbytes:
                if buf is not None:
                    buf.free()
                self.buffers[name] = _Buffer(self.cudart, nbytes)
                grown = True
            context.set_tensor_address(name, int(self.buffers[name].device))
        if grown:
            self._drop_graphs()
        self.shapes = shapes
        self.current_shape = tuple(shape)

    # -- one batch -----------------------------------------------------------------------------
    def _enqueue(self, timed: bool) -> None:
        cudart, stream = self.cudart, self.stream
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        inp = self.buffers[INPUT_NAME]
        nbytes = int(np.prod(self.shapes[INPUT_NAME]))
        if timed:
            self.timer.record(0, stream)
        compat.cuda_call(cudart.cudaMemcpyAsync(inp.device, inp.host_ptr, nbytes, h2d, stream),
                         'cudaMemcpyAsync H2D')
        if timed:
            self.timer.record(1, stream)
        if not self.context.execute_async_v3(compat.native_handle(stream)):
            raise EngineError('TensorRT execute_async_v3 failed (see its message above)')
        if timed:
            self.timer.record(2, stream)
        for name in self.outputs:
            buf = self.buffers[name]
            size = int(np.prod(self.shapes[name])) * self.dtypes[name].itemsize
            compat.cuda_call(cudart.cudaMemcpyAsync(buf.host_ptr, buf.device, size, d2h, stream),
                             'cudaMemcpyAsync D2H')
        if timed:
            self.timer.record(3, stream)

    def _graph_for(self, shape):
        """The CUDA graph of one run at ``shape`` (captured on first use), or None when capturing
        fails: this predictor then runs without CUDA graphs, as trtexec does, and says why once.
        Errors of the plain run are real errors and raised; the capture always ends, and its end's
        error never hides the enqueue error that caused it."""
        graph = self.graphs.get(shape)
        if graph is not None:
            return graph[1]
        cudart = self.cudart
        self._enqueue(False)        # one plain run first: flushes TensorRT's deferred updates
        compat.cuda_call(cudart.cudaStreamSynchronize(self.stream), 'cudaStreamSynchronize')
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        compat.cuda_call(cudart.cudaStreamBeginCapture(self.stream, mode), 'cudaStreamBeginCapture')
        failure: Optional[YolactError] = None
        try:
            self._enqueue(False)
        except YolactError as exc:
            failure = exc
        g = exe = None
        try:
            g = compat.cuda_call(cudart.cudaStreamEndCapture(self.stream), 'cudaStreamEndCapture')
            if failure is None:
                exe = compat.cuda_call(cudart.cudaGraphInstantiate(g, 0), 'cudaGraphInstantiate')
        except YolactError as exc:
            failure = failure or exc
        if failure is not None:
            if g is not None:
                cudart.cudaGraphDestroy(g)
            cudart.cudaGetLastError()       # capture errors are not sticky: clear the last error
            self._without_cuda_graph(failure)
            return None
        self.graphs[shape] = (g, exe)
        return exe

    def _without_cuda_graph(self, failure: Exception) -> None:
        self.use_cuda_graph = False
        self.cuda_graph_error = str(failure)
        if not self.quiet:
            print(f'warning: CUDA graph capture failed ({failure}); running without CUDA graphs',
                  file=sys.stderr)

    def _drop_graphs(self) -> None:
        for g, exe in self.graphs.values():
            self.cudart.cudaGraphExecDestroy(exe)
            self.cudart.cudaGraphDestroy(g)
        self.graphs = {}

    def infer(self, batch: np.ndarray, timed: bool = False) -> Dict[str, np.ndarray]:
        """One uint8 ``[B, H, W, 3]`` batch -> raw engine outputs (copies). With ``timed``,
        :attr:`last_timing` holds GPU times in ms: h2d, compute, d2h, total (CUDA events; with a
        CUDA graph only total)."""
        batch = np.asarray(batch)
        if batch.dtype != np.uint8:
            raise InputError(f'expected a uint8 batch, got {batch.dtype}')
        check_input(batch.shape, self.profile)
        shape = tuple(int(s) for s in batch.shape)
        self._prepare(shape)
        np.copyto(self.buffers[INPUT_NAME].view(shape, np.uint8), batch)
        cudart = self.cudart
        exe = self._graph_for(shape) if self.use_cuda_graph else None
        if exe is not None:
            if timed:
                self.timer.record(0, self.stream)
            compat.cuda_call(cudart.cudaGraphLaunch(exe, self.stream), 'cudaGraphLaunch')
            if timed:
                self.timer.record(3, self.stream)
        else:
            self._enqueue(timed)
        compat.cuda_call(cudart.cudaStreamSynchronize(self.stream), 'cudaStreamSynchronize')
        if timed:
            t = {'total': self.timer.elapsed_ms(0, 3)}
            if exe is None:
                t.update(h2d=self.timer.elapsed_ms(0, 1), compute=self.timer.elapsed_ms(1, 2),
                         d2h=self.timer.elapsed_ms(2, 3))
            self.last_timing = t
        return {n: self.buffers[n].view(self.shapes[n], self.dtypes[n]).copy() for n in self.outputs}

    def run(self, images: Sequence[np.ndarray]):
        """Images of equal size share a batch (the graph resizes in-graph from the input size);
        lists longer than the profile's max batch are split into several batches."""
        max_batch = self.profile[2][0]
        groups, start = [], 0
        for i in range(1, len(images) + 1):
            if i == len(images) or images[i].shape != images[start].shape or i - start == max_batch:
                groups.append(np.stack(images[start:i]))
                start = i
        parts = [self.infer(np.ascontiguousarray(g)) for g in groups]
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        raw = {k: merged.pop(k) for k in ('loc', 'conf', 'mask', 'priors', 'proto') if k in merged}
        return normalize_contract(merged), raw

    def fork(self) -> 'TensorRTPredictor':
        """Another predictor on the same engine, for another thread: its own execution context,
        stream, buffers and CUDA graphs (a context must not run on two threads at once; the
        engine, its weights and the loaded plugins are shared)."""
        twin = copy.copy(self)
        context = self.engine.create_execution_context()
        if context is None:
            raise EngineError(f'TensorRT could not create another execution context for '
                              f'{self.path} (out of GPU memory?)')
        twin.context = context
        twin.stream = compat.cuda_call(
            self.cudart.cudaStreamCreateWithFlags(self.cudart.cudaStreamNonBlocking),
            'cudaStreamCreateWithFlags')
        twin.buffers, twin.shapes, twin.graphs = {}, {}, {}
        twin.current_shape = None
        twin.timer = _Timer(self.cudart)
        twin.last_timing = {}
        return twin

    def close(self) -> None:
        if getattr(self, 'cudart', None) is None:
            return
        self._drop_graphs()
        for buf in getattr(self, 'buffers', {}).values():
            buf.free()
        self.buffers = {}
        if getattr(self, 'timer', None) is not None:
            self.timer.free()
        if getattr(self, 'stream', None) is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        self.context = None
        self.engine = None

    def __del__(self):
        try:
            self.close()
        except Exception:   # noqa: BLE001 - interpreter shutdown
            pass


def create(path: str, device: Optional[str] = None, plugin_library: Optional[str] = None,
           cuda_graph: bool = False, score_threshold: float = 0.0, cross_class: bool = False,
           sidecar: Optional[str] = None, strict_plugin: bool = True, **_) -> TensorRTPredictor:
    return TensorRTPredictor(path, device=device, plugin_library=plugin_library, sidecar=sidecar,
                             cuda_graph=cuda_graph, score_threshold=score_threshold,
                             cross_class=cross_class, strict_plugin=strict_plugin)


def polygraphy_compare(engine_path: str, onnx_path: str, *, plugin_library: Optional[str] = None,
                       batch: int = 1, image_size: Tuple[int, int] = (480, 640), seed: int = 0,
                       atol: float = 1e-3, rtol: float = 1e-3) -> dict:
    """Engine vs ONNX Runtime (CPU) on one random uint8 batch through Polygraphy's Comparator.

    Returns ``{'passed', 'shape', 'outputs': {name: {'max_abs', 'mean_abs'}}}``. Needs TensorRT, a
    GPU and ``pip install polygraphy``. This is the tensor-level view; FP16 engines legitimately
    reorder near-tied detections, so judge them with yolact-validate's detection-level report.
    """
    try:
        from polygraphy.backend.onnxrt import OnnxrtRunner
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner
        from polygraphy.comparator import Comparator, CompareFunc
    except ImportError:
        raise YolactError('polygraphy is not installed (pip install polygraphy)') from None
    trt = compat.import_tensorrt()
    sidecar = read_sidecar(engine_path)
    plugin = sidecar.get('plugin_library')
    if plugin:
        path = find_plugin_library(sidecar, plugin_library)
        if path is None:
            raise EngineError(f'{engine_path} needs {plugin.get("file")}: not found')
        load_trt_plugins(trt, path, plugin.get('ops', []))
    with open(engine_path, 'rb') as f:
        blob = f.read()
    shape = (batch, image_size[0], image_size[1], 3)
    check_input(shape, profile_of(sidecar))
    feed = [{INPUT_NAME: np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)}]
    runners = [TrtRunner(EngineFromBytes(blob)), OnnxrtRunner(onnxruntime_session(onnx_path))]
    results = Comparator.run(runners, data_loader=feed)
    accuracy = Comparator.compare_accuracy(results, compare_func=CompareFunc.simple(atol=atol,
                                                                                     rtol=rtol))
    got, ref = results[runners[0].name][0], results[runners[1].name][0]
    outputs = {}
    for name in ref.keys():
        a = np.asarray(got[name], np.float64)
        b = np.asarray(ref[name], np.float64)
        diff = np.abs(a - b) if a.shape == b.shape else None
        outputs[name] = {'max_abs': float(diff.max()) if diff is not None and diff.size else None,
                         'mean_abs': float(diff.mean()) if diff is not None and diff.size else None}
    return {'passed': bool(accuracy), 'shape': list(shape), 'outputs': outputs}


def onnxruntime_session(onnx_path: str):
    """A callable opening ``onnx_path`` in ONNX Runtime (CPU), for Polygraphy's ``OnnxrtRunner``.
    A plugin-flavour graph's nodes are in our ``yolact_deploy`` domain, which ONNX Runtime does not
    know: it runs through the plugins' custom ops (their CPU instance), as yolact-validate does."""
    import onnx

    from ..deploy.plugin_library import DOMAIN
    model = onnx.load(onnx_path)
    if any(n.domain == DOMAIN for n in model.graph.node):
        from ..deploy.plugin_library import ort_session
        return lambda: ort_session(model)

    def plain():
        import onnxruntime as ort
        return ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    return plain


def find_plugin_library(sidecar: dict, explicit: Optional[str] = None) -> Optional[str]:
    """The plugin library an engine would load: ``explicit``, else $YOLACT_PLUGINS_LIB / build/lib."""
    if not sidecar.get('plugin_library'):
        return None
    if explicit:
        return explicit
    from ..deploy.plugin_library import TRT_LIBRARY, find_library
    found = find_library(TRT_LIBRARY)
    return str(found) if found else None
