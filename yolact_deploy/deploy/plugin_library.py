"""Python side of the TensorRT plugins (``plugins/``): library lookup, the CPU instance, ONNX nodes and
ONNX Runtime custom ops.

The plugins' cores run on the CPU through the same code as on the GPU. That CPU instance is
``libyolact_plugins_cpu.so`` (a plain C API, bound here with ctypes); ``libyolact_plugins.so`` holds
the CUDA instance behind the TensorRT IPluginV3 wrappers. The contract of each node (inputs,
outputs, attributes, dtypes) is the README of its folder under ``plugins/``; the constants and node
builders below are that contract in code, so exporters emit exactly what the plugins parse.

ONNX Runtime: the pip wheel ships no C headers, so the custom ops are onnxruntime-extensions Python
ops (``PyOp``) that call the CPU instance. Those live in the fixed domain ``ai.onnx.contrib``;
:func:`ort_session` retargets our domain to it in memory, the file on disk keeps ``yolact_deploy``.
"""
from __future__ import annotations

import ctypes
import functools
import os
import subprocess
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence

import numpy as np

from ..errors import YolactError
from .package_data import REPO_ROOT, is_checkout, native_source_dir
from .sidecar import sha256_file

DOMAIN = 'yolact_deploy'
DOMAIN_VERSION = 1
PLUGIN_VERSION = '1'
PLUGIN_NAMESPACE = ''
DEFORM_IM2COL = 'YolactDeformIm2col'
FAST_NMS = 'YolactFastNMS'
FAST_NMS_OUTPUTS = ('num_detections', 'boxes', 'scores', 'classes', 'indices')
CPU_LIBRARY = 'libyolact_plugins_cpu.so'
TRT_LIBRARY = 'libyolact_plugins.so'
ORT_PYOP_DOMAIN = 'ai.onnx.contrib'   # onnxruntime-extensions registers Python ops here, always

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}


class PluginError(YolactError):
    """Bad input to a plugin, or a plugin failure, explained in one line."""


class PluginLibraryError(PluginError):
    """The plugin library is missing, or cannot be built or loaded."""


# ---------------------------------------------------------------------------------------------------
# Locating and building the libraries

def _default_build_dir() -> Path:
    """Where :func:`build_cpu_library` builds: ``build/plugins-cpu`` in a checkout, else a per-user
    cache folder (an installed package's folder may not be writable)."""
    if is_checkout():
        return REPO_ROOT / 'build' / 'plugins-cpu'
    from .. import __version__
    cache = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache')
    return cache / 'yolact_deploy' / f'plugins-cpu-{__version__}'


def _search_dirs() -> list:
    dirs = []
    if os.environ.get('YOLACT_PLUGINS_DIR'):
        dirs.append(Path(os.environ['YOLACT_PLUGINS_DIR']))
    build = REPO_ROOT / 'build'
    dirs += [build / 'lib', build / 'plugins' / 'lib', build / 'plugins-cpu' / 'lib',
             Path(__file__).resolve().parents[1] / 'lib', _default_build_dir() / 'lib']
    return dirs


def find_library(name: str) -> Optional[Path]:
    """Path of ``name`` (``CPU_LIBRARY`` or ``TRT_LIBRARY``), or None.

    ``YOLACT_PLUGINS_CPU_LIB`` / ``YOLACT_PLUGINS_LIB`` name the file directly; otherwise
    ``$YOLACT_PLUGINS_DIR``, ``<repo>/build/lib``, ``build/plugins/lib`` (scripts/build_plugins.sh),
    ``build/plugins-cpu/lib`` (:func:`build_cpu_library`), ``yolact_deploy/lib`` and, for an installed
    package, ``~/.cache/yolact_deploy/plugins-cpu-VERSION/lib`` are searched.
    """
    env = 'YOLACT_PLUGINS_CPU_LIB' if name == CPU_LIBRARY else 'YOLACT_PLUGINS_LIB'
    if os.environ.get(env):
        path = Path(os.environ[env])
        return path if path.is_file() else None
    for d in _search_dirs():
        if (d / name).is_file():
            return d / name
    return None


def cpu_library_path() -> Path:
    path = find_library(CPU_LIBRARY)
    if path is None:
        raise PluginLibraryError(f'{CPU_LIBRARY} not found (set YOLACT_PLUGINS_CPU_LIB, or build it: '
                                 f'python3 -m yolact_deploy.deploy.plugin_library, or in a checkout '
                                 f'scripts/build_plugins.sh)')
    return path


def trt_library_path() -> Path:
    """The TensorRT plugin library, for ``load_library`` / ``trtexec --dynamicPlugins``."""
    path = find_library(TRT_LIBRARY)
    if path is None:
        raise PluginLibraryError(f'{TRT_LIBRARY} not found (set YOLACT_PLUGINS_LIB, or build it with '
                                 f'scripts/build_plugins.sh on a machine with CUDA and TensorRT)')
    return path


def build_cpu_library(build_dir: Optional[Path] = None, jobs: int = 2) -> Path:
    """Configures and builds the CPU library with CMake (no CUDA, no TensorRT; needs cmake, g++ and
    the Thrust headers of a CUDA toolkit) from the plugin sources (shipped with the package) into
    ``build/plugins-cpu`` (a checkout) or the user cache; returns its path."""
    build_dir = Path(build_dir) if build_dir else _default_build_dir()
    steps = (['cmake', '-S', str(native_source_dir()), '-B', str(build_dir), '-DCMAKE_BUILD_TYPE=Release',
              '-DYOLACT_ENABLE_CUDA=OFF', '-DYOLACT_BUILD_ENGINES=OFF', '-DYOLACT_BUILD_TESTS=OFF'],
             ['cmake', '--build', str(build_dir), '--target', 'yolact_plugins_cpu', '-j', str(jobs)])
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            raise PluginLibraryError('cmake not found: cannot build the plugin library') from None
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if 'rror' in ln]
            raise PluginLibraryError(f'building {CPU_LIBRARY} failed: '
                                     f'{(lines or ["(see cmake output)"])[0].strip()}')
    path = build_dir / 'lib' / CPU_LIBRARY
    if not path.is_file():
        raise PluginLibraryError(f'the build finished but {path} does not exist')
    return path


# TensorRT: loading libyolact_plugins.so into TensorRT's plugin registry

_LOADED_LIBRARIES: Dict[str, object] = {}


def load_trt_plugins(trt, path: str, needed_ops: Sequence[str] = ()) -> dict:
    """Loads ``libyolact_plugins.so`` once per process and checks it provides ``needed_ops``."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise PluginLibraryError(f'plugin library not found: {path}')
    registry = trt.get_plugin_registry()
    if path not in _LOADED_LIBRARIES:
        handle = registry.load_library(path)
        if handle is None:
            raise PluginLibraryError(f'TensorRT could not load the plugin library {path} (see the '
                                     f'TensorRT message above: built for another TensorRT/CUDA '
                                     f'version, or missing getCreators?)')
        _LOADED_LIBRARIES[path] = handle
    missing = [op for op in needed_ops
               if registry.get_creator(op, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None]
    if missing:
        raise PluginLibraryError(f'plugin library {path} does not provide {", ".join(missing)} '
                                 f'(version {PLUGIN_VERSION}): wrong or outdated libyolact_plugins.so')
    return {'file': os.path.basename(path), 'path': path, 'sha256': sha256_file(path),
            'ops': list(needed_ops), 'version': PLUGIN_VERSION, 'namespace': PLUGIN_NAMESPACE}


def resolve_trt_library(explicit: Optional[str]) -> str:
    """``explicit`` if given, else the library :func:`trt_library_path` finds (for a build)."""
    if explicit:
        if not os.path.isfile(explicit):
            raise PluginLibraryError(f'plugin library not found: {explicit}')
        return explicit
    try:
        return str(trt_library_path())
    except PluginLibraryError as exc:
        raise PluginLibraryError(f'this graph has plugin nodes: {exc}') from None


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise PluginLibraryError(f'cannot load {path}: {e}') from None
    vp, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_float
    lib.yd_capi_version.restype = i32
    lib.yd_last_error.restype = ctypes.c_char_p
    lib.yd_deform_im2col_cpu.restype = i32
    lib.yd_deform_im2col_cpu.argtypes = [i32, vp, vp, vp, vp] + [i64] * 6 + [i32] * 9
    lib.yd_fast_nms_cpu.restype = i32
    lib.yd_fast_nms_cpu.argtypes = [i32, vp, vp, i64, i64, i64, f32, f32, i32, i32, i32, i32,
                                    vp, vp, vp, vp, vp]
    lib.yd_fast_nms_scratch_bytes.restype = i64
    lib.yd_fast_nms_scratch_bytes.argtypes = [i64, i64, i64, i32, i32]
    lib.yd_half_to_float.argtypes = [vp, vp, i64]
    lib.yd_float_to_half.argtypes = [vp, vp, i64]
    if lib.yd_capi_version() != 1:
        raise PluginLibraryError(f'{path}: C API version {lib.yd_capi_version()}, expected 1')
    return lib


def load_cpu_library(path: Optional[os.PathLike] = None) -> ctypes.CDLL:
    return _load(str(Path(path) if path else cpu_library_path()))


# ---------------------------------------------------------------------------------------------------
# The CPU instance

def _as_numpy(t, name: str, dtype=None) -> np.ndarray:
    if hasattr(t, 'detach'):        # torch.Tensor, without importing torch here
        t = t.detach().cpu().numpy()
    a = np.ascontiguousarray(t, dtype=dtype)
    if dtype is None and a.dtype not in _DTYPES:
        raise PluginError(f'{name}: dtype {a.dtype} not supported (float32 or float16)')
    return a


def _like_input(a: np.ndarray, like):
    if hasattr(like, 'detach'):
        import torch
        return torch.from_numpy(a).to(like.device)
    return a


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _check(lib, status: int) -> None:
    if status != 0:
        raise PluginError(lib.yd_last_error().decode() or f'plugin call failed with status {status}')


def _pair(v) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise PluginError(f'expected an int or a pair, got {v!r}')
        return int(v[0]), int(v[1])
    return int(v), int(v)


def deform_im2col_cpu(x, offset, mask, kernel_size, stride=1, padding=0, dilation=1):
    """CPU instance of ``YolactDeformIm2col`` (= ``ops.dcn.deformable_im2col``).

    x ``[B, C, H, W]``, offset ``[B, 2*dg*kH*kW, Ho, Wo]``, mask ``[B, dg*kH*kW, Ho, Wo]``, all
    float32 or all float16 (numpy arrays or torch tensors); returns ``[B, C*kH*kW, Ho*Wo]`` of the
    same dtype and kind.
    """
    lib = load_cpu_library()
    xa = _as_numpy(x, 'x')
    oa, ma = _as_numpy(offset, 'offset'), _as_numpy(mask, 'mask')
    if not (xa.dtype == oa.dtype == ma.dtype):
        raise PluginError(f'x, offset and mask must share a dtype, got {xa.dtype}, {oa.dtype}, {ma.dtype}')
    if xa.ndim != 4 or oa.ndim != 4 or ma.ndim != 4:
        raise PluginError('x, offset and mask must be 4-D')
    kh, kw = _pair(kernel_size)
    taps = kh * kw
    batch, channels, height, width = xa.shape
    if taps < 1 or ma.shape[1] % taps:
        raise PluginError(f'mask channels {ma.shape[1]} are not a multiple of kH*kW = {taps}')
    dg = ma.shape[1] // taps
    ho, wo = oa.shape[2], oa.shape[3]
    if (oa.shape[0], oa.shape[1]) != (batch, 2 * dg * taps) or ma.shape != (batch, dg * taps, ho, wo):
        raise PluginError(f'offset {oa.shape} / mask {ma.shape} do not match x {xa.shape} and '
                          f'kernel {kh}x{kw}')
    out = np.empty((batch, channels * taps, ho * wo), dtype=xa.dtype)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    _check(lib, lib.yd_deform_im2col_cpu(_DTYPES[xa.dtype], _ptr(xa), _ptr(oa), _ptr(ma), _ptr(out),
                                         batch, channels, height, width, ho, wo, kh, kw, sh, sw, ph, pw,
                                         dh, dw, dg))
    return _like_input(out, x)


class PluginDetections(NamedTuple):
    """Outputs of ``YolactFastNMS``, in its output order."""
    num_detections: object   # [B, 1] int32
    boxes: object            # [B, K, 4] input dtype, x1y1x2y2 as given
    scores: object           # [B, K] input dtype
    classes: object          # [B, K] int32, -1 pads
    indices: object          # [B, K] int32 prior index, -1 pads


def fast_nms_cpu(boxes, scores, *, conf_thresh: float = 0.05, iou_threshold: float = 0.5,
                 top_k: int = 200, max_detections: int = 100, cross_class: bool = False,
                 second_threshold: bool = False) -> PluginDetections:
    """CPU instance of ``YolactFastNMS`` (= ``ops.nms.fast_nms`` computed in FP32).

    boxes ``[B, N, 4]``, scores ``[B, N, C]`` (foreground classes), both float32 or both float16.
    """
    lib = load_cpu_library()
    ba, sa = _as_numpy(boxes, 'boxes'), _as_numpy(scores, 'scores')
    if ba.dtype != sa.dtype:
        raise PluginError(f'boxes and scores must share a dtype, got {ba.dtype} and {sa.dtype}')
    if ba.ndim != 3 or ba.shape[2] != 4 or sa.ndim != 3 or sa.shape[:2] != ba.shape[:2]:
        raise PluginError(f'expected boxes [B, N, 4] and scores [B, N, C], got {ba.shape} and {sa.shape}')
    batch, num_priors, num_classes = sa.shape
    k = int(max_detections)
    out = PluginDetections(np.empty((batch, 1), np.int32), np.empty((batch, k, 4), ba.dtype),
                           np.empty((batch, k), ba.dtype), np.empty((batch, k), np.int32),
                           np.empty((batch, k), np.int32))
    _check(lib, lib.yd_fast_nms_cpu(_DTYPES[ba.dtype], _ptr(ba), _ptr(sa), batch, num_priors,
                                    num_classes, float(conf_thresh), float(iou_threshold), int(top_k), k,
                                    int(bool(cross_class)), int(bool(second_threshold)),
                                    *[_ptr(a) for a in out]))
    return PluginDetections(*[_like_input(a, boxes) for a in out])


def half_to_float_cpu(bits: np.ndarray) -> np.ndarray:
    """The kernels' CPU binary16 -> binary32 conversion (for tests)."""
    lib = load_cpu_library()
    a = np.ascontiguousarray(bits, dtype=np.uint16)
    out = np.empty(a.shape, np.float32)
    lib.yd_half_to_float(_ptr(a), _ptr(out), a.size)
    return out


def float_to_half_cpu(values: np.ndarray) -> np.ndarray:
    """The kernels' CPU binary32 -> binary16 conversion, round to nearest even (for tests)."""
    lib = load_cpu_library()
    a = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(a.shape, np.uint16)
    lib.yd_float_to_half(_ptr(a), _ptr(out), a.size)
    return out


# ---------------------------------------------------------------------------------------------------
# ONNX nodes (the contract of plugins/*/README.md)

def opset_import():
    """The ``opset_import`` entry a model with plugin nodes needs."""
    from onnx import helper
    return helper.make_opsetid(DOMAIN, DOMAIN_VERSION)


def deform_im2col_node(x: str, offset: str, mask: str, output: str, kernel_size, stride=1, padding=0,
                       dilation=1, name: Optional[str] = None):
    """A ``YolactDeformIm2col`` node: ``[B,C,H,W]`` -> ``[B, C*kH*kW, Ho*Wo]``."""
    from onnx import helper
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    return helper.make_node(DEFORM_IM2COL, [x, offset, mask], [output], name=name, domain=DOMAIN,
                            plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE,
                            kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw,
                            dilation_h=dh, dilation_w=dw)


def fast_nms_node(boxes: str, scores: str, outputs: Sequence[str] = FAST_NMS_OUTPUTS, *,
                  conf_thresh: float = 0.05, iou_threshold: float = 0.5, top_k: int = 200,
                  max_detections: int = 100, cross_class: bool = False,
                  second_threshold: bool = False, name: Optional[str] = None):
    """A ``YolactFastNMS`` node with its five outputs (see ``FAST_NMS_OUTPUTS``)."""
    from onnx import helper
    if len(outputs) != 5:
        raise PluginError(f'{FAST_NMS} has 5 outputs {FAST_NMS_OUTPUTS}, got {len(outputs)} names')
    return helper.make_node(FAST_NMS, [boxes, scores], list(outputs), name=name, domain=DOMAIN,
                            plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE,
                            conf_thresh=float(conf_thresh), iou_threshold=float(iou_threshold),
                            top_k=int(top_k), max_detections=int(max_detections),
                            cross_class=int(bool(cross_class)),
                            second_threshold=int(bool(second_threshold)))


_INT_ATTRS = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w', 'dilation_h',
              'dilation_w')
# Defaults of the optional attributes (the plugins' creators use the same).
DEFORM_IM2COL_DEFAULTS = {'stride_h': 1, 'stride_w': 1, 'pad_h': 0, 'pad_w': 0, 'dilation_h': 1,
                          'dilation_w': 1}
FAST_NMS_DEFAULTS = {'conf_thresh': 0.05, 'iou_threshold': 0.5, 'top_k': 200, 'max_detections': 100,
                     'cross_class': 0, 'second_threshold': 0}
_NMS_FLOAT_ATTRS = ('conf_thresh', 'iou_threshold')
_NMS_INT_ATTRS = ('top_k', 'max_detections', 'cross_class', 'second_threshold')
_BITS = '_bits'


@functools.lru_cache(maxsize=None)
def onnx_schemas() -> tuple:
    """``onnx.defs.OpSchema`` of both nodes (not registered globally): for onnxscript and checkers."""
    from onnx import defs
    formal, attr, kind = defs.OpSchema.FormalParameter, defs.OpSchema.Attribute, defs.OpSchema.AttrType
    floats = [('T', ['tensor(float)', 'tensor(float16)'], 'FP32 or FP16, one type for all')]
    plugin_attrs = [attr('plugin_version', kind.STRING, 'TensorRT plugin version, "1"', required=False),
                    attr('plugin_namespace', kind.STRING, 'TensorRT plugin namespace, ""',
                         required=False)]
    im2col = defs.OpSchema(
        DEFORM_IM2COL, DOMAIN, DOMAIN_VERSION, 'Modulated deformable im2col (plugins/deform_im2col)',
        inputs=[formal('x', 'T'), formal('offset', 'T'), formal('mask', 'T')],
        outputs=[formal('columns', 'T')], type_constraints=floats,
        attributes=[attr(n, kind.INT, '', required=n.startswith('kernel')) for n in _INT_ATTRS]
        + plugin_attrs)
    nms = defs.OpSchema(
        FAST_NMS, DOMAIN, DOMAIN_VERSION, 'Fast NMS with fixed-size outputs (plugins/fast_nms)',
        inputs=[formal('boxes', 'T'), formal('scores', 'T')],
        outputs=[formal('num_detections', 'tensor(int32)'), formal('boxes', 'T'),
                 formal('scores', 'T'), formal('classes', 'tensor(int32)'),
                 formal('indices', 'tensor(int32)')],
        type_constraints=floats,
        attributes=[attr('conf_thresh', kind.FLOAT, '', required=False),
                    attr('iou_threshold', kind.FLOAT, '', required=False)]
        + [attr(n, kind.INT, '', required=False)
           for n in ('top_k', 'max_detections', 'cross_class', 'second_threshold')] + plugin_attrs)
    return im2col, nms


@functools.lru_cache(maxsize=None)
def onnxscript_ops() -> tuple:
    """``(YolactDeformIm2col, YolactFastNMS)`` as onnxscript ops, for translations of the exporter."""
    from onnxscript import values
    opset = values.Opset(DOMAIN, DOMAIN_VERSION)
    return tuple(values.Op(opset, schema.name, schema) for schema in onnx_schemas())


def deform_conv2d_translation(input, weight, offset, mask, bias, stride_h: int, stride_w: int,
                              pad_h: int, pad_w: int, dilation_h: int, dilation_w: int, groups: int,
                              offset_groups: int, use_mask: bool):
    """Reference translation of ``torchvision::deform_conv2d`` into the plugin form:
    ``YolactDeformIm2col`` + (grouped) ``MatMul`` + bias, for ``torch.onnx.export(dynamo=True,
    custom_translation_table={torch.ops.torchvision.deform_conv2d.default: this})``.
    The weight shape must be static (it is a parameter)."""
    from onnxscript import opset19 as op
    im2col, _ = onnxscript_ops()
    cout, cin_g, kh, kw = (int(d) for d in weight.shape)
    taps = kh * kw
    batch = op.Shape(input, start=0, end=1)
    spatial = op.Shape(offset, start=2, end=4)
    if not use_mask:   # torchvision's mask-less form = a mask of ones
        mask_shape = op.Concat(batch, op.Constant(value_ints=[offset_groups * taps]), spatial, axis=0)
        mask = op.Expand(op.CastLike(op.Constant(value_float=1.0), input), mask_shape)
    cols = im2col(input, offset, mask, kernel_h=kh, kernel_w=kw, stride_h=stride_h,
                  stride_w=stride_w, pad_h=pad_h, pad_w=pad_w, dilation_h=dilation_h,
                  dilation_w=dilation_w, plugin_version=PLUGIN_VERSION,
                  plugin_namespace=PLUGIN_NAMESPACE)                          # [B, C*taps, Ho*Wo]
    if groups == 1:
        out = op.MatMul(op.Reshape(weight, op.Constant(value_ints=[cout, cin_g * taps])), cols)
    else:
        w = op.Reshape(weight, op.Constant(value_ints=[groups, cout // groups, cin_g * taps]))
        cols = op.Reshape(cols, op.Concat(batch, op.Constant(value_ints=[groups, cin_g * taps, -1]),
                                          axis=0))
        out = op.MatMul(w, cols)                                              # [B, G, Cout/G, L]
    out = op.Reshape(out, op.Concat(batch, op.Constant(value_ints=[cout]), spatial, axis=0))
    return op.Add(out, op.Reshape(bias, op.Constant(value_ints=[1, cout, 1, 1])))


# ---------------------------------------------------------------------------------------------------
# ONNX Runtime custom ops

_ORT_OPS_REGISTERED = False


def _register_ort_ops() -> None:
    """Registers the two Python custom ops once per process (they call the CPU instance)."""
    global _ORT_OPS_REGISTERED
    if _ORT_OPS_REGISTERED:
        return
    try:
        from onnxruntime_extensions import PyCustomOpDef, onnx_op
    except ImportError:
        raise PluginLibraryError('onnxruntime-extensions is not installed: pip install '
                                 'onnxruntime-extensions (needed to run plugin nodes in ONNX Runtime)'
                                 ) from None
    load_cpu_library()   # fail here, with the library's message, not inside a session
    dt = PyCustomOpDef

    @onnx_op(op_type=DEFORM_IM2COL, inputs=[dt.dt_float] * 3, outputs=[dt.dt_float],
             attrs={k: dt.dt_int64 for k in _INT_ATTRS})
    def _deform_im2col(x, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       dilation_h, dilation_w):
        return deform_im2col_cpu(x, offset, mask, (kernel_h, kernel_w), (stride_h, stride_w),
                                 (pad_h, pad_w), (dilation_h, dilation_w))

    # FLOAT attributes reach Python ops as 6-decimal strings, so the thresholds travel as the int64
    # bit patterns ort_model_for_plugins adds (exact); the FLOAT ones stay for TensorRT.
    @onnx_op(op_type=FAST_NMS, inputs=[dt.dt_float] * 2,
             outputs=[dt.dt_int32, dt.dt_float, dt.dt_float, dt.dt_int32, dt.dt_int32],
             attrs={**{k + _BITS: dt.dt_int64 for k in _NMS_FLOAT_ATTRS},
                    **{k: dt.dt_int64 for k in _NMS_INT_ATTRS}})
    def _fast_nms(boxes, scores, conf_thresh_bits, iou_threshold_bits, top_k, max_detections,
                  cross_class, second_threshold):
        conf, iou = (float(np.array(b, np.uint32).view(np.float32))
                     for b in (conf_thresh_bits, iou_threshold_bits))
        return tuple(fast_nms_cpu(boxes, scores, conf_thresh=conf, iou_threshold=iou, top_k=top_k,
                                  max_detections=max_detections, cross_class=cross_class,
                                  second_threshold=second_threshold))

    _ORT_OPS_REGISTERED = True


def ort_session_options_with_plugins(sess_options=None):
    """SessionOptions with the plugin custom ops registered; run the model through
    :func:`ort_model_for_plugins` or :func:`ort_session`, which move the nodes to the ops' domain."""
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path
    _register_ort_ops()
    so = sess_options if sess_options is not None else ort.SessionOptions()
    so.register_custom_ops_library(get_library_path())
    return so


def _complete_for_ort(node) -> None:
    """Python ops need every declared attribute: add the contract defaults, and the thresholds'
    exact float32 bit patterns (see _register_ort_ops)."""
    from onnx import helper
    present = {a.name: a for a in node.attribute}
    if node.op_type == DEFORM_IM2COL:
        missing = [k for k in ('kernel_h', 'kernel_w') if k not in present]
        if missing:
            raise PluginError(f'{DEFORM_IM2COL} node {node.name!r} lacks {", ".join(missing)}')
        defaults = DEFORM_IM2COL_DEFAULTS
    elif node.op_type == FAST_NMS:
        defaults = FAST_NMS_DEFAULTS
    else:
        raise PluginError(f'unknown op {node.op_type!r} in domain {DOMAIN!r}')
    for name, value in defaults.items():
        if name not in present:
            node.attribute.append(helper.make_attribute(name, value))
    if node.op_type == FAST_NMS:
        values = {a.name: a.f for a in node.attribute if a.name in _NMS_FLOAT_ATTRS}
        for name, value in values.items():
            bits = int(np.array(value, np.float32).view(np.uint32))
            node.attribute.append(helper.make_attribute(name + _BITS, bits))


def _wrap_fp16_plugin_nodes(model) -> None:
    """Puts Casts around plugin nodes of the main graph that take FP16: FP16 -> FP32 in, the custom op
    (FP32), FP32 -> FP16 out. That is the plugins' own FP16 semantics (widen, compute in FP32, round
    once), so ONNX Runtime gives the same bits as the FP16 kernels."""
    import onnx
    from onnx import TensorProto, helper
    if not any(n.domain == DOMAIN for n in model.graph.node):
        return
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    nodes, count = [], 0
    for node in model.graph.node:
        plugin = node.domain == DOMAIN and node.op_type in (DEFORM_IM2COL, FAST_NMS)
        float_outputs = (0,) if node.op_type == DEFORM_IM2COL else (1, 2)
        if plugin and types.get(node.input[0]) == TensorProto.FLOAT16:
            count += 1
            for i, name in enumerate(node.input):
                widened = f'{name}__yd_fp32_{count}'
                nodes.append(helper.make_node('Cast', [name], [widened], to=TensorProto.FLOAT))
                node.input[i] = widened
            nodes.append(node)
            for i in float_outputs:
                original = node.output[i]
                node.output[i] = f'{original}__yd_fp32_{count}'
                nodes.append(helper.make_node('Cast', [node.output[i]], [original],
                                              to=TensorProto.FLOAT16))
                types[original] = TensorProto.FLOAT16
            continue
        if plugin:   # outputs of a plugin node feeding another one: the contract's types
            for i, name in enumerate(node.output):
                types[name] = types.get(node.input[0]) if i in float_outputs else TensorProto.INT32
        nodes.append(node)
    if count:
        del model.graph.node[:]
        model.graph.node.extend(nodes)


def ort_model_for_plugins(model):
    """A copy of ``model`` (ModelProto, bytes or path) that ONNX Runtime runs through the plugin custom
    ops: plugin nodes move to the custom-op domain and get every attribute spelled out (defaults,
    exact threshold bits); FP16 plugin nodes get Casts around them (the custom ops are FP32, which is
    how the plugins compute FP16 anyway); nothing else changes."""
    import onnx
    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(str(model))
    elif isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    else:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy

    def retarget(nodes):
        for node in nodes:
            if node.domain == DOMAIN:
                _complete_for_ort(node)
                node.domain = ORT_PYOP_DOMAIN
            for attr in node.attribute:
                if attr.g.node:
                    retarget(attr.g.node)
                for g in attr.graphs:
                    retarget(g.node)

    _wrap_fp16_plugin_nodes(model)
    retarget(model.graph.node)
    for fn in model.functions:
        retarget(fn.node)
    imports = {op.domain: op for op in model.opset_import}
    if DOMAIN in imports:
        model.opset_import.remove(imports[DOMAIN])
    if ORT_PYOP_DOMAIN not in imports:
        model.opset_import.append(onnx.helper.make_opsetid(ORT_PYOP_DOMAIN, 1))
    return model


def ort_session(model, sess_options=None, providers: Optional[Sequence[str]] = None):
    """An ``onnxruntime.InferenceSession`` for a model with plugin nodes (the CPU instance)."""
    import onnxruntime as ort
    so = ort_session_options_with_plugins(sess_options)
    data = ort_model_for_plugins(model).SerializeToString()
    return ort.InferenceSession(data, so, providers=list(providers or ['CPUExecutionProvider']))


if __name__ == '__main__':   # python3 -m yolact_deploy.deploy.plugin_library: build the CPU library
    print(build_cpu_library())
