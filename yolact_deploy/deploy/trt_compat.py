"""TensorRT version detection and every TensorRT 10.x / 11.x (and cuda-python) difference, in one place.

Supported: TensorRT 10.3 (JetPack 6.1/6.2, the floor) up to 11.x. Facts used here (sources in
/work/shared/reference/tensorrt-notes.md, checked against the real bindings by tests/test_tensorrt_api.py):

- 11.x networks are always strongly typed: ``BuilderFlag.FP16/INT8``, calibrators,
  ``set_calibration_profile`` and ``platform_has_fast_fp16`` are gone; ``STRONGLY_TYPED`` is still in
  the Python enum but deprecated and ignored. 10.x is weakly typed unless ``STRONGLY_TYPED`` is set.
- INT8 on 10.x: implicit quantization with a calibrator (weakly typed network only). On 11.x: explicit
  Q/DQ nodes in the ONNX graph (ModelOpt), built strongly typed.
- cuda-python: ``from cuda.bindings import runtime`` (cuda-python >= 12.6.1 / 13), falling back to
  ``from cuda import cudart`` (older cuda-python, e.g. on JetPack 6); every call returns
  ``(error, *results)``.

**The API registry.** :data:`TRT_API` lists every TensorRT Python attribute path that yolact_deploy
uses, with the releases it exists in; :data:`CUDART_API` does the same for cuda-python.
tests/test_tensorrt_api.py checks the registry against name lists extracted from the real 10.3.0 and
11.4.0 bindings (tests/data/trt_api/) and walks the source of every module in :data:`TRT_MODULES`:
each ``trt.X.Y`` path, each ``cudart.X`` name and each attribute read on a TensorRT object must be in
the registry. TensorRT objects are recognised by the variable that holds them (a local name or a
``self.`` attribute, leading underscores ignored), so that code must keep this naming convention:
:data:`OBJECT_NAMES`.
"""
from __future__ import annotations

import importlib
import os
import re
from typing import Optional, Tuple

from ..errors import YolactError

Version = Tuple[int, int, int]

MIN_VERSION: Version = (10, 3, 0)     # JetPack 6.1/6.2; the oldest release this code supports
NEWEST_KNOWN_MAJOR = 11

# Availability of an API path, as the set of releases whose extracted names the tests compare with.
ALL = 'all'          # in 10.3 and in 11.x
V10 = '10.x'         # in 10.x, removed in 11.0
AFTER_10_3 = '>10.3' # added after 10.3 (absent on JetPack 6), present in 11.x: use behind hasattr()

TRT_API = {
    # module level
    '__version__': ALL, 'Logger': ALL, 'Logger.WARNING': ALL, 'Logger.INFO': ALL,
    'Logger.VERBOSE': ALL, 'Logger.ERROR': ALL, 'Logger.min_severity': ALL, 'Builder': ALL, 'Runtime': ALL, 'OnnxParser': ALL,
    'get_plugin_registry': ALL, 'init_libnvinfer_plugins': ALL, 'nptype': ALL,
    'IProgressMonitor': ALL, 'IInt8EntropyCalibrator2': V10,
    # enums
    'NetworkDefinitionCreationFlag.STRONGLY_TYPED': ALL,   # deprecated and ignored in 11.x
    'BuilderFlag.FP16': V10, 'BuilderFlag.INT8': V10, 'BuilderFlag.GPU_FALLBACK': ALL,
    'MemoryPoolType.WORKSPACE': ALL, 'ProfilingVerbosity.DETAILED': ALL,
    'ProfilingVerbosity.LAYER_NAMES_ONLY': ALL, 'LayerInformationFormat.JSON': ALL,
    'TensorIOMode.INPUT': ALL, 'TensorIOMode.OUTPUT': ALL,
    'DataType.FLOAT': ALL, 'DataType.HALF': ALL, 'DataType.INT32': ALL, 'DataType.UINT8': ALL,
    'HardwareCompatibilityLevel.NONE': ALL, 'HardwareCompatibilityLevel.AMPERE_PLUS': ALL,
    'CalibrationAlgoType.ENTROPY_CALIBRATION_2': V10,
    # Builder
    'Builder.create_network': ALL, 'Builder.create_builder_config': ALL,
    'Builder.create_optimization_profile': ALL, 'Builder.build_serialized_network': ALL,
    'Builder.platform_has_fast_fp16': V10, 'Builder.platform_has_fast_int8': V10,
    # IBuilderConfig
    'IBuilderConfig.set_memory_pool_limit': ALL, 'IBuilderConfig.builder_optimization_level': ALL,
    'IBuilderConfig.add_optimization_profile': ALL, 'IBuilderConfig.create_timing_cache': ALL,
    'IBuilderConfig.set_timing_cache': ALL, 'IBuilderConfig.get_timing_cache': ALL,
    'IBuilderConfig.set_flag': ALL, 'IBuilderConfig.progress_monitor': ALL,
    'IBuilderConfig.profiling_verbosity': ALL, 'IBuilderConfig.hardware_compatibility_level': ALL,
    'IBuilderConfig.int8_calibrator': V10, 'IBuilderConfig.set_calibration_profile': V10,
    'IBuilderConfig.tiling_optimization_level': AFTER_10_3,
    # ITimingCache / IHostMemory
    'ITimingCache.serialize': ALL, 'IHostMemory.nbytes': ALL,
    # INetworkDefinition / ITensor
    'INetworkDefinition.num_inputs': ALL, 'INetworkDefinition.get_input': ALL,
    'INetworkDefinition.num_outputs': ALL, 'INetworkDefinition.get_output': ALL,
    'ITensor.name': ALL, 'ITensor.shape': ALL, 'ITensor.dtype': ALL,
    # IOptimizationProfile
    'IOptimizationProfile.set_shape': ALL,
    # OnnxParser
    'OnnxParser.parse_from_file': ALL, 'OnnxParser.num_errors': ALL, 'OnnxParser.get_error': ALL,
    # IProgressMonitor (we subclass it and override these)
    'IProgressMonitor.phase_start': ALL, 'IProgressMonitor.step_complete': ALL,
    'IProgressMonitor.phase_finish': ALL,
    # IInt8EntropyCalibrator2 (subclassed on 10.x, these are overridden)
    'IInt8EntropyCalibrator2.get_batch_size': V10, 'IInt8EntropyCalibrator2.get_batch': V10,
    'IInt8EntropyCalibrator2.read_calibration_cache': V10,
    'IInt8EntropyCalibrator2.write_calibration_cache': V10,
    # plugin registry
    'IPluginRegistry.load_library': ALL, 'IPluginRegistry.get_creator': ALL,
    # Runtime / ICudaEngine / IExecutionContext / EngineInspector
    'Runtime.deserialize_cuda_engine': ALL,
    'ICudaEngine.num_io_tensors': ALL, 'ICudaEngine.get_tensor_name': ALL,
    'ICudaEngine.get_tensor_mode': ALL, 'ICudaEngine.get_tensor_dtype': ALL,
    'ICudaEngine.get_tensor_shape': ALL, 'ICudaEngine.get_tensor_profile_shape': ALL,
    'ICudaEngine.num_optimization_profiles': ALL, 'ICudaEngine.create_execution_context': ALL,
    'ICudaEngine.create_engine_inspector': ALL, 'ICudaEngine.device_memory_size_v2': ALL,
    'ICudaEngine.device_memory_size': V10,
    'IExecutionContext.set_input_shape': ALL, 'IExecutionContext.set_tensor_address': ALL,
    'IExecutionContext.execute_async_v3': ALL, 'IExecutionContext.get_tensor_shape': ALL,
    'IExecutionContext.set_optimization_profile_async': ALL, 'IExecutionContext.infer_shapes': ALL,
    'EngineInspector.get_engine_information': ALL,
}

# Variable names that hold TensorRT objects in TRT_MODULES (the convention the static test relies on).
OBJECT_NAMES = {
    'builder': 'Builder', 'config': 'IBuilderConfig', 'network': 'INetworkDefinition',
    'parser': 'OnnxParser', 'opt_profile': 'IOptimizationProfile', 'timing_cache': 'ITimingCache',
    'host_memory': 'IHostMemory', 'registry': 'IPluginRegistry', 'runtime': 'Runtime',
    'engine': 'ICudaEngine', 'context': 'IExecutionContext', 'inspector': 'EngineInspector',
    'tensor': 'ITensor',
}

# Our subclasses of TensorRT interfaces (class name -> TensorRT class): the static test checks that
# they define every method registered for that class, spelled as the bindings spell it.
SUBCLASSES = {'_Monitor': 'IProgressMonitor', '_Calibrator': 'IInt8EntropyCalibrator2'}

# The modules whose TensorRT / cuda-python use the static test checks.
TRT_MODULES = ('yolact_deploy/deploy/trt_compat.py', 'yolact_deploy/deploy/plugin_library.py',
               'yolact_deploy/export/tensorrt_build.py', 'yolact_deploy/export/trt_calibrator.py',
               'yolact_deploy/export/trt_progress.py', 'yolact_deploy/runtime/tensorrt_backend.py')

# cuda-python runtime names used through ``cudart.X`` (checked against the installed cuda-python).
CUDART_API = (
    'cudaError_t', 'cudaGetErrorName', 'cudaGetDeviceCount', 'cudaSetDevice',
    'cudaGetDeviceProperties', 'cudaDriverGetVersion', 'cudaRuntimeGetVersion', 'cudaMalloc',
    'cudaFree', 'cudaMemcpy', 'cudaMallocHost', 'cudaFreeHost', 'cudaMemcpyAsync', 'cudaMemcpyKind',
    'cudaStreamCreateWithFlags', 'cudaStreamNonBlocking', 'cudaStreamDestroy',
    'cudaStreamSynchronize', 'cudaEventCreate', 'cudaEventDestroy', 'cudaEventRecord',
    'cudaEventSynchronize', 'cudaEventElapsedTime', 'cudaStreamBeginCapture', 'cudaStreamEndCapture',
    'cudaStreamCaptureMode', 'cudaGraphInstantiate', 'cudaGraphLaunch', 'cudaGraphExecDestroy',
    'cudaGraphDestroy', 'cudaGetLastError',
)


class TensorRTError(YolactError):
    """A TensorRT problem explained in one line (missing, too old, failed build or load ...)."""


class TensorRTUnavailable(TensorRTError):
    """The TensorRT Python bindings cannot be imported here."""


class CudaError(YolactError):
    """cuda-python missing, no GPU, or a CUDA runtime call that failed."""


# ---------------------------------------------------------------------------------------------------
# TensorRT itself

_TRT = None


def import_tensorrt():
    """Imports ``tensorrt`` once; one-line :class:`TensorRTUnavailable` when it is not usable."""
    global _TRT
    if _TRT is not None:
        return _TRT
    if os.environ.get('YOLACT_DISABLE_TENSORRT'):   # lets tests and users force the fallback path
        raise TensorRTUnavailable('TensorRT is disabled by YOLACT_DISABLE_TENSORRT')
    try:
        trt = importlib.import_module('tensorrt')
    except ImportError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if getattr(exc, 'name', None) == 'tensorrt':
            raise TensorRTUnavailable(
                'TensorRT is not installed (no Python module "tensorrt"): install it on a machine '
                'with an NVIDIA GPU (pip install tensorrt, or JetPack\'s python3-libnvinfer); '
                'ONNX Runtime works without it (yolact-export --to onnx)') from None
        raise TensorRTUnavailable(f'TensorRT is installed but cannot be loaded: {detail}') from None
    except OSError as exc:   # bindings present, libnvinfer.so.N missing or unloadable
        raise TensorRTUnavailable(f'TensorRT is installed but cannot be loaded: {exc}') from None
    check_supported(parse_version(getattr(trt, '__version__', '0')))
    _TRT = trt
    return trt


def version_string() -> str:
    """The installed TensorRT version ('10.3.0.26'); :class:`TensorRTUnavailable` when absent."""
    return str(import_tensorrt().__version__)


def tensorrt_available() -> bool:
    try:
        import_tensorrt()
    except TensorRTError:
        return False
    return True


def parse_version(text: str) -> Version:
    """'10.3.0.26' -> (10, 3, 0); missing parts are 0; garbage -> (0, 0, 0)."""
    nums = [int(n) for n in re.findall(r'\d+', str(text))[:3]]
    nums += [0] * (3 - len(nums))
    return tuple(nums)  # type: ignore[return-value]


def version(trt=None) -> Version:
    trt = trt or import_tensorrt()
    return parse_version(trt.__version__)


def check_supported(ver: Version) -> None:
    if ver < MIN_VERSION:
        raise TensorRTUnavailable(
            f'TensorRT {".".join(map(str, ver))} is too old: yolact-deploy needs '
            f'{".".join(map(str, MIN_VERSION))} or newer (JetPack 6.1+ on Jetson)')


def strongly_typed_only(ver: Version) -> bool:
    """11.x (and later): every network is strongly typed; there are no precision builder flags."""
    return ver[0] >= 11


def has_calibrators(ver: Version) -> bool:
    """Implicit INT8 with an IInt8Calibrator: 10.x only."""
    return ver[0] < 11


def network_flags(trt, strongly_typed: bool) -> int:
    """``Builder.create_network`` flags. 11.x: 0 (always strongly typed; the flag is ignored).
    10.x: ``1 << STRONGLY_TYPED`` for a strongly typed network, 0 for weak typing."""
    ver = version(trt)
    if strongly_typed_only(ver):
        if not strongly_typed:
            raise TensorRTError(f'TensorRT {trt.__version__} has no weakly typed networks '
                                f'(precision builder flags were removed in 11.0)')
        return 0
    return (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if strongly_typed else 0


def set_weak_precision_flags(trt, config, fp16: bool = False, int8: bool = False) -> None:
    """10.x weak typing: let TensorRT pick FP16 (and INT8) kernels. Not available on 11.x."""
    ver = version(trt)
    if strongly_typed_only(ver):
        raise TensorRTError(f'TensorRT {trt.__version__} removed BuilderFlag.FP16/INT8: FP16 must be '
                            f'in the ONNX graph (yolact-export --fp16), INT8 as Q/DQ nodes')
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)


def set_int8_calibrator(trt, config, calibrator, profile) -> None:
    """10.x implicit INT8: the calibrator and the profile whose kOPT shapes calibration uses."""
    if not has_calibrators(version(trt)):
        raise TensorRTError(f'TensorRT {trt.__version__} has no INT8 calibrators (removed in 11.0): '
                            f'quantize the ONNX graph with ModelOpt (Q/DQ) instead')
    config.int8_calibrator = calibrator
    config.set_calibration_profile(profile)


def calibrator_base(trt):
    if not has_calibrators(version(trt)):
        raise TensorRTError(f'TensorRT {trt.__version__} has no IInt8EntropyCalibrator2')
    return trt.IInt8EntropyCalibrator2


def device_memory_size(engine) -> int:
    """Activation memory the engine needs (``device_memory_size_v2`` exists in 10.3 and 11.x)."""
    return int(engine.device_memory_size_v2)


# ---------------------------------------------------------------------------------------------------
# cuda-python

_CUDART = None
_LOGGER = None
_NVINFER_PLUGINS = False


def logger(trt, verbose: bool = False):
    """The one process-wide ``trt.Logger``. TensorRT keeps raw pointers to the logger it is given
    (``init_libnvinfer_plugins``, builders, runtimes), so it must outlive all of them: never a local.
    ``verbose`` lowers its threshold for the rest of the process."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    if verbose:
        _LOGGER.min_severity = trt.Logger.VERBOSE
    return _LOGGER


def init_nvinfer_plugins(trt, verbose: bool = False):
    """NVIDIA's plugin library (ONNX ``DeformConv`` -> ``ModulatedDeformConv2d``), initialised once
    per process with the process-wide logger; returns that logger."""
    global _NVINFER_PLUGINS
    log = logger(trt, verbose)
    if not _NVINFER_PLUGINS:
        trt.init_libnvinfer_plugins(log, '')
        _NVINFER_PLUGINS = True
    return log


def import_cudart():
    """The cuda-python runtime module (new layout first, then the pre-12.6.1 ``cuda.cudart``)."""
    global _CUDART
    if _CUDART is not None:
        return _CUDART
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]   # cuda-python < 12.6.1 (JetPack 6)
        except ImportError:
            raise CudaError('cuda-python is not installed (pip install cuda-python): the TensorRT '
                            'runtime uses it for GPU memory and streams') from None
    _CUDART = cudart
    return cudart


def cuda_call(result, what: str = 'CUDA call'):
    """Unpacks a cuda-python ``(err, *values)`` tuple; raises :class:`CudaError` with the error name."""
    cudart = import_cudart()
    if isinstance(result, tuple):
        err, rest = result[0], result[1:]
    else:
        err, rest = result, ()
    code = int(getattr(err, 'value', err))
    if code != 0:
        try:
            name = cudart.cudaGetErrorName(err)[1]
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:   # noqa: BLE001 - the name is only for the message
            name = f'error {code}'
        hint = ''
        if name in ('cudaErrorNoDevice', 'cudaErrorInsufficientDriver'):
            hint = ' (no usable NVIDIA GPU / driver on this machine)'
        raise CudaError(f'{what} failed: {name}{hint}')
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


def native_handle(obj) -> int:
    """The integer handle TensorRT wants for a cuda-python object (a stream): cuda-python 13 prefers
    ``cuda.bindings.utils.get_cuda_native_handle`` over the deprecated ``int(obj)``."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(obj)
    return int(get_cuda_native_handle(obj))


def gpu_info(device: int = 0) -> dict:
    """Name, compute capability and versions of ``device``; :class:`CudaError` without a GPU."""
    cudart = import_cudart()
    count = cuda_call(cudart.cudaGetDeviceCount(), 'cudaGetDeviceCount')
    if count is None or count < 1:
        raise CudaError('no CUDA device found')
    if device >= count:
        raise CudaError(f'CUDA device {device} requested but only {count} found')
    props = cuda_call(cudart.cudaGetDeviceProperties(device), 'cudaGetDeviceProperties')
    name = props.name
    name = name.decode(errors='replace').rstrip('\x00') if isinstance(name, (bytes, bytearray)) \
        else str(name)
    driver = cuda_call(cudart.cudaDriverGetVersion(), 'cudaDriverGetVersion')
    runtime = cuda_call(cudart.cudaRuntimeGetVersion(), 'cudaRuntimeGetVersion')
    return {'index': device, 'name': name, 'compute_capability': f'{props.major}.{props.minor}',
            'total_memory_mib': int(props.totalGlobalMem) // (1 << 20),
            'cuda_driver': _cuda_version_text(driver), 'cuda_runtime': _cuda_version_text(runtime)}


def _cuda_version_text(v) -> Optional[str]:
    if v is None:
        return None
    v = int(v)
    return f'{v // 1000}.{(v % 1000) // 10}'


def resolve(trt, path: str):
    """``getattr`` along a registered dotted path, with a one-line error naming the release.

    For paths that only some releases have (``BuilderFlag.FP16``): code that reaches one on the
    wrong release gets an explanation instead of an AttributeError.
    """
    if path not in TRT_API:
        raise KeyError(f'{path} is not in trt_compat.TRT_API')
    obj = trt
    for part in path.split('.'):
        if not hasattr(obj, part):
            raise TensorRTError(f'TensorRT {trt.__version__} has no {path} '
                                f'(available in: {TRT_API[path]})')
        obj = getattr(obj, part)
    return obj
