"""The TensorRT runtime's host logic without a GPU, and the GPU tests of what users run.

Without a GPU: the CUDA-graph path and its fallback run against a stand-in for cuda-python and an
execution context whose "device" memory is host memory (the predictor's own code does every copy,
capture and launch); the process-wide logger; Polygraphy's ONNX Runtime side for a plugin graph.
With TensorRT and a GPU (``gpu``; they skip here saying why): the plugin flavour of a DCN preset,
batches up to the profile maximum 8, CUDA graphs, and two execution contexts of one engine used from
two threads.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

from yolact_deploy import trt_compat as compat
from yolact_deploy.errors import YolactError
from yolact_deploy.runtime import tensorrt_backend as rt


# ---------------------------------------------------------------------------------------------------
# A stand-in CUDA runtime: device memory is host memory, a stream runs its work at once unless a
# capture is open, a graph is the list of captured operations.

class _Err:
    def __init__(self, value):
        self.value = value


OK = _Err(0)
CAPTURE_INVALIDATED = _Err(901)


class FakeCudart:
    class cudaMemcpyKind:
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStreamCaptureMode:
        cudaStreamCaptureModeThreadLocal = 1

    cudaStreamNonBlocking = 1

    def __init__(self):
        self.memory = {}
        self.capturing = False
        self.invalidated = False
        self.ops = []
        self.launches = 0
        self.last_error_cleared = 0

    def _alloc(self, nbytes):
        buf = ctypes.create_string_buffer(int(nbytes))
        self.memory[ctypes.addressof(buf)] = buf
        return OK, ctypes.addressof(buf)

    cudaMalloc = cudaMallocHost = _alloc

    def cudaFree(self, ptr):
        self.memory.pop(int(ptr), None)
        return (OK,)

    cudaFreeHost = cudaFree

    def run(self, op):
        if self.capturing:
            self.ops.append(op)
        else:
            op()

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        self.run(lambda: ctypes.memmove(int(dst), int(src), int(nbytes)))
        return (OK,)

    def cudaStreamSynchronize(self, stream):
        return (OK,)

    def cudaStreamCreateWithFlags(self, flags):
        return OK, 7

    def cudaStreamDestroy(self, stream):
        return (OK,)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing, self.invalidated, self.ops = True, False, []
        return (OK,)

    def cudaStreamEndCapture(self, stream):
        self.capturing = False
        if self.invalidated:
            return CAPTURE_INVALIDATED, None
        return OK, list(self.ops)

    def cudaGraphInstantiate(self, graph, flags):
        return OK, graph

    def cudaGraphLaunch(self, exe, stream):
        self.launches += 1
        for op in exe:
            op()
        return (OK,)

    def cudaGraphExecDestroy(self, exe):
        return (OK,)

    def cudaGraphDestroy(self, graph):
        return (OK,)

    def cudaGetLastError(self):
        self.last_error_cleared += 1
        return (OK,)

    def cudaGetErrorName(self, err):
        return OK, {901: b'cudaErrorStreamCaptureInvalidated'}.get(err.value, b'cudaErrorUnknown')

    def cudaEventCreate(self):
        return OK, object()

    def cudaEventDestroy(self, event):
        return (OK,)


class FakeContext:
    """Output ``out [B, 2]``: per image, the sum of its pixels and the first pixel value."""

    def __init__(self, cudart, capturable=True):
        self.cudart, self.capturable = cudart, capturable
        self.addresses, self.shape = {}, None

    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)
        return True

    def infer_shapes(self):
        return []

    def get_tensor_shape(self, name):
        return (self.shape[0], 2)

    def set_tensor_address(self, name, address):
        self.addresses[name] = address

    def execute_async_v3(self, stream):
        if self.cudart.capturing and not self.capturable:
            self.cudart.invalidated = True    # e.g. a kernel that cannot be captured
            return False
        shape, src, dst = self.shape, self.addresses['images'], self.addresses['out']

        def op():
            images = np.ctypeslib.as_array((ctypes.c_uint8 * int(np.prod(shape))).from_address(src))
            images = images.reshape(shape)
            out = np.stack([images.reshape(shape[0], -1).sum(1), images[:, 0, 0, 0]], 1)
            ctypes.memmove(dst, np.ascontiguousarray(out, np.float32).ctypes.data, out.size * 4)
        self.cudart.run(op)
        return True


def _predictor(monkeypatch, cuda_graph, capturable=True):
    cudart = FakeCudart()
    monkeypatch.setattr(compat, '_CUDART', cudart)
    monkeypatch.setattr(compat, 'native_handle', int)
    pred = rt.TensorRTPredictor.__new__(rt.TensorRTPredictor)
    pred.cudart, pred.stream, pred.quiet = cudart, 7, True
    pred.context = FakeContext(cudart, capturable)
    pred.outputs, pred.dtypes = ['out'], {'images': np.dtype(np.uint8), 'out': np.dtype(np.float32)}
    pred.profile = ([1, 2, 2, 3], [1, 8, 8, 3], [8, 64, 64, 3])
    pred.buffers, pred.shapes, pred.graphs, pred.current_shape = {}, {}, {}, None
    pred.use_cuda_graph, pred.cuda_graph_error, pred.last_timing = cuda_graph, None, {}
    pred.timer = None
    return pred, cudart


def _expected(batch):
    return np.stack([batch.reshape(len(batch), -1).sum(1), batch[:, 0, 0, 0]], 1).astype(np.float32)


def _batches(n=3, shape=(2, 8, 8, 3)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def test_plain_and_cuda_graph_runs_agree(monkeypatch):
    plain, _ = _predictor(monkeypatch, cuda_graph=False)
    graphed, cudart = _predictor(monkeypatch, cuda_graph=True)
    for batch in _batches():
        np.testing.assert_array_equal(plain.infer(batch)['out'], _expected(batch))
        np.testing.assert_array_equal(graphed.infer(batch)['out'], _expected(batch))
    assert len(graphed.graphs) == 1 and cudart.launches == 3 and graphed.use_cuda_graph


def test_failed_capture_falls_back_to_plain_execution_with_the_real_error(monkeypatch, capsys):
    pred, cudart = _predictor(monkeypatch, cuda_graph=True, capturable=False)
    pred.quiet = False
    for batch in _batches():
        np.testing.assert_array_equal(pred.infer(batch)['out'], _expected(batch))
    assert not pred.use_cuda_graph and pred.graphs == {} and cudart.launches == 0
    # the enqueue's error, not cudaStreamEndCapture's (which used to mask it and abort the run)
    assert 'execute_async_v3 failed' in pred.cuda_graph_error
    assert 'cudaErrorStreamCaptureInvalidated' not in pred.cuda_graph_error
    assert cudart.last_error_cleared == 1 and not cudart.capturing
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith('warning:')]
    assert len(warnings) == 1 and 'running without CUDA graphs' in warnings[0]


def test_errors_outside_the_capture_still_raise(monkeypatch):
    pred, cudart = _predictor(monkeypatch, cuda_graph=True)
    pred.context.execute_async_v3 = lambda stream: False      # fails in the plain run too
    with pytest.raises(rt.EngineError, match='execute_async_v3 failed'):
        pred.infer(_batches(1)[0])


# ---------------------------------------------------------------------------------------------------
# One process-wide logger

class _FakeTrt:
    class Logger:
        WARNING, VERBOSE = 'W', 'V'

        def __init__(self, severity):
            self.min_severity = severity

    def __init__(self):
        self.plugin_inits = []

    def init_libnvinfer_plugins(self, logger, namespace):
        self.plugin_inits.append((logger, namespace))


def test_one_logger_lives_as_long_as_the_process(monkeypatch):
    monkeypatch.setattr(compat, '_LOGGER', None)
    monkeypatch.setattr(compat, '_NVINFER_PLUGINS', False)
    trt = _FakeTrt()
    first = compat.init_nvinfer_plugins(trt)
    again = compat.init_nvinfer_plugins(trt, verbose=True)
    assert first is again is compat.logger(trt) and first.min_severity == 'V'
    assert trt.plugin_inits == [(first, '')]       # initialised once, with the kept logger


def test_runtime_and_builder_use_the_process_logger():
    import inspect

    from yolact_deploy.export import tensorrt_build as tb
    for module in (tb, rt):
        src = inspect.getsource(module)
        assert 'trt.Logger(' not in src and 'trt.init_libnvinfer_plugins(' not in src


# ---------------------------------------------------------------------------------------------------
# Polygraphy's ONNX Runtime side runs a plugin-flavour graph

def test_polygraphy_onnxruntime_runner_takes_the_plugin_flavour():
    pytest.importorskip('polygraphy', reason='polygraphy is not installed')
    from onnx_models import exported
    from polygraphy.backend.onnxrt import OnnxrtRunner

    from yolact_deploy import plugins
    try:
        plugins.ort_session_options_with_plugins()
    except YolactError as exc:
        pytest.skip(f'plugin custom ops unavailable: {exc}')
    path, _ = exported('yolact_plus_resnet50', plugins=True)
    feed = {'images': np.random.default_rng(0).integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)}
    with OnnxrtRunner(rt.onnxruntime_session(path)) as runner:
        out = runner.infer(feed)
    reference = plugins.ort_session(path).run(None, feed)
    np.testing.assert_array_equal(out['num_detections'], reference[0])
    assert out['masks'].shape[1] == 100


# ---------------------------------------------------------------------------------------------------
# With TensorRT and a GPU: what users run (skipped here, with the reason)

from test_tensorrt_build import _require_trt_gpu  # noqa: E402  (one GPU/TensorRT gate)


@pytest.fixture(scope='module')
def plus_engines(tmp_path_factory):
    """FP16 engines (profile batch 1..8) of the DCN preset in both flavours."""
    _require_trt_gpu()
    from onnx_models import exported

    from yolact_deploy.export import tensorrt_build as tb
    d = tmp_path_factory.mktemp('trt_plus')
    engines = {}
    for flavour in ('portable', 'plugins'):
        if flavour == 'plugins':
            try:
                from yolact_deploy.plugins import trt_library_path
                trt_library_path()
            except YolactError as exc:
                continue   # the CUDA plugin library is not built: the plugin tests skip
        path, ckpt = exported('yolact_plus_resnet50', fp16=True, plugins=flavour == 'plugins',
                              max_batch=8)
        engine = str(d / f'{flavour}.plan')
        tb.build_engine(path, engine, tb.BuildOptions(precision='fp16', batch=(1, 4, 8),
                                                      image_max=(640, 640)), quiet=True)
        engines[flavour] = (engine, path, ckpt)
    return engines


def _engine(plus_engines, flavour):
    if flavour not in plus_engines:
        pytest.skip('libyolact_plugins.so (CUDA) is not built: scripts/build_plugins.sh')
    return plus_engines[flavour]


def _images(n):
    import cv2

    from yolact_deploy.assets import sample_images
    from yolact_deploy.transforms import load_image
    first = load_image(sample_images()[0])
    return [cv2.resize(load_image(p), first.shape[1::-1]) for p in (sample_images() * 2)[:n]]


@pytest.mark.gpu
@pytest.mark.parametrize('flavour', ['portable', 'plugins'])
def test_gpu_dcn_engine_matches_pytorch_up_to_max_batch(plus_engines, flavour):
    from yolact_deploy import validate as V
    from yolact_deploy.checkpoint import load_model
    from yolact_deploy.runtime.torch_backend import TorchPredictor
    engine, _, ckpt = _engine(plus_engines, flavour)
    pred = rt.create(engine)
    images = _images(8)
    batched = pred.predict_batch(images).detections                 # batch 8 = the profile max
    singles = [pred.predict_batch([im]).detections for im in images]
    for i, one in enumerate(singles):
        n = int(one['num_detections'][0])
        assert int(batched['num_detections'][i]) == n
        np.testing.assert_allclose(batched['boxes'][i, :n], one['boxes'][0, :n], atol=1e-3)
    from yolact_deploy.assets import sample_images
    report = V.compare_predictors(TorchPredictor(load_model(ckpt)), pred, sample_images()[:2],
                                  progress=False)
    assert V.check(report, V.TOLERANCES['fp16']) == []
    with pytest.raises(YolactError, match='outside the engine profile'):
        pred.infer(np.stack(images + images[:1]))
    pred.close()


@pytest.mark.gpu
@pytest.mark.parametrize('flavour', ['portable', 'plugins'])
def test_gpu_cuda_graph_path_equals_plain_runs(plus_engines, flavour):
    engine, _, _ = _engine(plus_engines, flavour)
    batch = np.stack(_images(4))
    plain = rt.create(engine).infer(batch)
    graphed = rt.create(engine, cuda_graph=True)
    for _ in range(3):
        out = graphed.infer(batch)
    assert graphed.use_cuda_graph or graphed.cuda_graph_error    # captured, or fell back saying why
    for k in plain:
        np.testing.assert_array_equal(plain[k], out[k])


@pytest.mark.gpu
@pytest.mark.parametrize('flavour', ['portable', 'plugins'])
def test_gpu_two_contexts_of_one_engine_on_two_threads(plus_engines, flavour):
    engine, _, _ = _engine(plus_engines, flavour)
    first = rt.create(engine)
    second = first.fork()
    assert second.engine is first.engine and second.context is not first.context
    images = _images(8)
    inputs = [np.stack(images[:4]), np.stack(images[4:])]
    expected = [first.infer(x) for x in inputs]
    results, errors = [None, None], []

    def work(i, pred):
        try:
            for _ in range(5):
                results[i] = pred.infer(inputs[i])
        except Exception as exc:   # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got, want in zip(results, expected):
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    second.close()
    first.close()
