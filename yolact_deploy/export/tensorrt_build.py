"""ONNX (or a checkpoint, exported on the way) -> TensorRT engine + sidecar JSON, through the TensorRT
Python API, on TensorRT 10.3+ and 11.x.

Precision (facts and sources: /work/shared/reference/tensorrt-notes.md section 3; reasoning:
docs/tensorrt.md):

==========  =====================================  ===========================================
request     TensorRT 10.x                           TensorRT 11.x
==========  =====================================  ===========================================
fp32        FP32 graph, strongly typed              FP32 graph (always strongly typed)
fp16        default ``strong``: FP16 graph,         FP16 graph
            ``STRONGLY_TYPED``; ``--fp16-mode weak``
            : FP32 graph + ``BuilderFlag.FP16``
int8        Q/DQ graph: strongly typed; otherwise   Q/DQ graph only (ModelOpt); calibration
            FP32 graph + FP16/INT8 flags + entropy  images go to ModelOpt when it is installed
            calibrator on a folder of images
==========  =====================================  ===========================================

Everything that can be decided without TensorRT (ONNX inspection, the build plan, presets, profiles,
the sidecar) is a pure function, tested on any machine; the parts that need TensorRT and a GPU are
tested where they exist (tests/test_tensorrt_build.py skips them elsewhere, saying why).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .. import __version__
from ..deploy import trt_compat as compat
from ..cli.common import atomic_output, check_output_file
from ..errors import InputError, YolactError

SIDECAR_SCHEMA = 1
SIDECAR_SUFFIX = '.json'            # model.plan -> model.plan.json
INPUT_NAME = 'images'
PLUGIN_DOMAIN = 'yolact_deploy'
QDQ_OPS = ('QuantizeLinear', 'DequantizeLinear')
PRESETS_DIR = Path(__file__).resolve().parents[2] / 'export'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
MODELOPT_COMMAND = ('python -m modelopt.onnx.quantization --onnx_path MODEL_fp32.onnx '
                    '--quantize_mode int8 --calibration_data_path calib.npy '
                    '--output_path MODEL_int8_qdq.onnx')


class BuildError(YolactError):
    """Invalid build options, or a build that could not be completed."""


# ---------------------------------------------------------------------------------------------------
# Options and presets

@dataclass(frozen=True)
class BuildOptions:
    precision: str = 'fp16'                    # fp32 | fp16 | int8
    fp16_mode: str = 'strong'                  # 10.x only: strong (FP16 graph) | weak (BuilderFlag)
    batch: Tuple[int, int, int] = (1, 1, 4)    # min, opt, max of the dynamic batch
    image_min: Tuple[int, int] = (32, 32)      # H, W profile of the input image size
    image_opt: Optional[Tuple[int, int]] = None  # None: the network size (e.g. 550x550)
    image_max: Tuple[int, int] = (4096, 4096)
    workspace_mib: int = 4096
    optimization_level: int = 3                # 0..5, TensorRT's default 3
    timing_cache: Optional[str] = None
    plugin_library: Optional[str] = None       # libyolact_plugins.so (default: found automatically)
    calib_images: Optional[str] = None         # INT8: folder of images
    calib_cache: Optional[str] = None          # INT8 (10.x): calibration cache file
    calib_limit: int = 512                     # INT8: at most this many calibration images
    detailed_profile: bool = True              # ProfilingVerbosity.DETAILED (engine inspector)
    verbose: bool = False
    preset: Optional[str] = None
    plugins: bool = False                      # export the --plugins graph (from a checkpoint)

    def profile(self, network_size: int) -> Dict[str, List[int]]:
        """``{'min': [B,H,W,3], 'opt': ..., 'max': ...}`` for the ``images`` input."""
        opt = self.image_opt or (network_size, network_size)
        return {'min': [self.batch[0], *self.image_min, 3], 'opt': [self.batch[1], *opt, 3],
                'max': [self.batch[2], *self.image_max, 3]}


def parse_triple(text, what: str = '--batch') -> Tuple[int, int, int]:
    """'1,4,8' -> (1, 4, 8); a single N means MIN = OPT = MAX = N."""
    if isinstance(text, (list, tuple)):
        parts = [str(v) for v in text]
    else:
        parts = [p for p in str(text).replace(' ', '').split(',') if p]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise BuildError(f'{what} expects integers MIN,OPT,MAX (or one N), got {text!r}') from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise BuildError(f'{what} expects MIN,OPT,MAX (or one N), got {text!r}')
    if vals[0] < 1 or not vals[0] <= vals[1] <= vals[2]:
        raise BuildError(f'{what} needs 1 <= MIN <= OPT <= MAX, got {vals[0]},{vals[1]},{vals[2]}')
    return tuple(vals)  # type: ignore[return-value]


def parse_size(text, what: str = '--image-size') -> Tuple[int, int]:
    """'720x1280' (HxW) or '640' (square) -> (H, W)."""
    if isinstance(text, (list, tuple)) and len(text) == 2:
        h, w = text
    else:
        parts = str(text).lower().replace(' ', '').split('x')
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise BuildError(f'{what}: expected HxW or N, got {text!r}') from None
        if len(nums) == 1:
            nums *= 2
        if len(nums) != 2:
            raise BuildError(f'{what}: expected HxW or N, got {text!r}')
        h, w = nums
    h, w = int(h), int(w)
    if h < 2 or w < 2:
        raise BuildError(f'{what}: sizes must be >= 2 pixels, got {h}x{w}')
    return h, w


def parse_image_sizes(text) -> Tuple[Tuple[int, int], Optional[Tuple[int, int]], Tuple[int, int]]:
    """'--image-size' value: 'HxW' (fixed: min=opt=max) or 'MINHxMINW,OPTHxOPTW,MAXHxMAXW', where
    OPT may be 'net' (the model's network size, e.g. 550x550)."""
    parts = [p for p in str(text).replace(' ', '').split(',') if p]
    if len(parts) == 1:
        s = parse_size(parts[0])
        return s, s, s
    if len(parts) != 3:
        raise BuildError(f'--image-size expects HxW or MIN,OPT,MAX sizes, got {text!r}')
    lo, hi = parse_size(parts[0]), parse_size(parts[2])
    opt = None if parts[1].lower() in ('net', 'network') else parse_size(parts[1])
    if lo[0] > hi[0] or lo[1] > hi[1]:
        raise BuildError(f'--image-size needs MIN <= MAX in both H and W, got {text!r}')
    if opt is not None and not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
        raise BuildError(f'--image-size needs MIN <= OPT <= MAX in both H and W, got {text!r}')
    return lo, opt, hi


def list_presets() -> List[str]:
    if not PRESETS_DIR.is_dir():
        return []
    return sorted(p.stem for p in PRESETS_DIR.glob('*.json'))


def load_preset(name: str) -> dict:
    """A deployment preset: ``export/NAME.json`` or a path to such a file."""
    path = Path(name)
    if not path.suffix:
        path = PRESETS_DIR / f'{name}.json'
    if not path.is_file():
        known = ', '.join(list_presets()) or '(none found)'
        raise BuildError(f"unknown preset '{name}': use one of {known} or a path to a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildError(f'cannot read preset {path}: {exc}') from None
    if not isinstance(data, dict):
        raise BuildError(f'preset {path} must hold a JSON object')
    unknown = set(data) - PRESET_KEYS
    if unknown:
        raise BuildError(f'preset {path}: unknown keys {sorted(unknown)}; known: {sorted(PRESET_KEYS)}')
    data['_path'] = str(path)
    return data


PRESET_KEYS = {'description', 'target', 'precision', 'fp16_mode', 'plugins', 'batch', 'image_size',
               'workspace_mib', 'optimization_level', 'calib_limit', 'notes'}


def options_from_preset(preset: dict, base: BuildOptions = BuildOptions()) -> BuildOptions:
    """Preset values over ``base`` (CLI flags given explicitly are applied after this)."""
    kw = {}
    if 'precision' in preset:
        kw['precision'] = preset['precision']
    if 'fp16_mode' in preset:
        kw['fp16_mode'] = preset['fp16_mode']
    if 'batch' in preset:
        kw['batch'] = parse_triple(preset['batch'], 'preset batch')
    if 'image_size' in preset:
        lo, opt, hi = parse_image_sizes(preset['image_size'])
        kw.update(image_min=lo, image_opt=opt, image_max=hi)
    for key in ('workspace_mib', 'optimization_level', 'calib_limit'):
        if key in preset:
            kw[key] = int(preset[key])
    if 'plugins' in preset:
        kw['plugins'] = bool(preset['plugins'])
    kw['preset'] = preset.get('_path')
    return check_options(replace(base, **kw))


def check_options(options: BuildOptions) -> BuildOptions:
    if options.precision not in ('fp32', 'fp16', 'int8'):
        raise BuildError(f"precision must be fp32, fp16 or int8, got '{options.precision}'")
    if options.fp16_mode not in ('strong', 'weak'):
        raise BuildError(f"--fp16-mode must be strong or weak, got '{options.fp16_mode}'")
    parse_triple(options.batch)
    if not 0 <= options.optimization_level <= 5:
        raise BuildError(f'--opt-level must be 0..5, got {options.optimization_level}')
    if options.workspace_mib < 1:
        raise BuildError(f'--workspace must be >= 1 MiB, got {options.workspace_mib}')
    lo, hi = options.image_min, options.image_max
    if lo[0] > hi[0] or lo[1] > hi[1]:
        raise BuildError(f'image size profile min {lo} exceeds max {hi}')
    if options.image_opt is not None:
        o = options.image_opt
        if not (lo[0] <= o[0] <= hi[0] and lo[1] <= o[1] <= hi[1]):
            raise BuildError(f'image size opt {o} outside [{lo}, {hi}]')
    if options.calib_limit < 1:
        raise BuildError(f'--calib-limit must be >= 1, got {options.calib_limit}')
    return options


# ---------------------------------------------------------------------------------------------------
# The ONNX file, and the build plan (pure: no TensorRT needed)

@dataclass
class OnnxInfo:
    path: str
    metadata: dict
    plugin_ops: List[str]              # op types in our plugin domain
    has_qdq: bool
    input_shape: List[object]          # ints or symbolic names / None
    sha256: str

    @property
    def precision(self) -> str:
        return self.metadata.get('precision', 'fp32')

    @property
    def network_size(self) -> int:
        return int(self.metadata.get('input', {}).get('network_size', [550])[0])


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def inspect_onnx(path: str) -> OnnxInfo:
    """Metadata, plugin nodes, Q/DQ nodes and the input shape of an exported ONNX file."""
    from ..deploy.metadata import check_onnx_graph, parse_metadata
    if not os.path.isfile(path):
        raise InputError(f'ONNX file not found: {path}')
    try:
        import onnx
        model = onnx.load(path, load_external_data=False)
    except ImportError:
        raise BuildError('the onnx package is not installed (pip install onnx)') from None
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise InputError(f'cannot read ONNX file {path}: corrupt or not ONNX ({type(exc).__name__})'
                         ) from None
    meta = parse_metadata({p.key: p.value for p in model.metadata_props}, path)
    check_onnx_graph(meta, model, path)
    ops = set()
    qdq = False

    def walk(graph):
        nonlocal qdq
        for node in graph.node:
            if node.domain == PLUGIN_DOMAIN:
                ops.add(node.op_type)
            if node.op_type in QDQ_OPS and node.domain in ('', 'ai.onnx'):
                qdq = True
            for attr in node.attribute:
                if attr.g.node:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)
    walk(model.graph)
    for fn in model.functions:
        for node in fn.node:
            if node.domain == PLUGIN_DOMAIN:
                ops.add(node.op_type)
    inputs = [i for i in model.graph.input if i.name == INPUT_NAME]
    if not inputs:
        names = [i.name for i in model.graph.input]
        raise InputError(f'{path} has no input named {INPUT_NAME!r} (inputs: {names}); export it '
                         f'with yolact-export')
    dims = [d.dim_value if d.HasField('dim_value') else (d.dim_param or None)
            for d in inputs[0].type.tensor_type.shape.dim]
    return OnnxInfo(path, meta, sorted(ops), qdq, dims, sha256_file(path))


@dataclass
class BuildPlan:
    strongly_typed: bool
    flags: List[str]                   # BuilderFlag names to set (10.x weak typing only)
    calibrate: bool                    # 10.x implicit INT8 with the entropy calibrator
    modelopt_quantize: bool            # 11.x INT8: Q/DQ by ModelOpt first
    precision_label: str               # what the sidecar records
    needs_plugins: bool
    notes: List[str] = field(default_factory=list)


def plan_build(info: OnnxInfo, options: BuildOptions, trt_version: compat.Version,
               modelopt_available: bool = False) -> BuildPlan:
    """Decides typing, flags and INT8 route, or raises one clear :class:`BuildError` (pure)."""
    ver_text = '.'.join(map(str, trt_version))
    graph = info.precision
    only_strong = compat.strongly_typed_only(trt_version)
    need_plugins = bool(info.plugin_ops)
    fp16_export = 'yolact-export --to onnx --fp16'
    if options.precision == 'fp32':
        if graph != 'fp32':
            raise BuildError(f'{info.path} is a mixed FP16 graph; an FP32 engine needs the FP32 '
                             f'graph (yolact-export --to onnx without --fp16)')
        return BuildPlan(True, [], False, False, 'fp32', need_plugins)
    if options.precision == 'fp16':
        if only_strong or options.fp16_mode == 'strong':
            if options.fp16_mode == 'weak':
                raise BuildError(f'TensorRT {ver_text} has no BuilderFlag.FP16 (removed in 11.0): '
                                 f'--fp16-mode weak is 10.x only; build from the FP16 graph')
            if graph != 'fp16':
                raise BuildError(
                    f'{info.path} is an FP32 graph: TensorRT {ver_text} builds FP16 strongly typed '
                    f'from the mixed FP16 graph ({fp16_export}, or pass --weights to export it)'
                    + ('' if only_strong else '; or use --fp16-mode weak with this FP32 graph'))
            return BuildPlan(True, [], False, False, 'fp16', need_plugins,
                             ['strongly typed: FP16 exactly where the ONNX graph has it'])
        if graph != 'fp32':
            raise BuildError(f'--fp16-mode weak takes the FP32 graph; {info.path} is already mixed '
                             f'FP16 (use --fp16-mode strong)')
        return BuildPlan(False, ['FP16'], False, False, 'fp16-weak', need_plugins,
                         ['weakly typed: TensorRT picks FP16 kernels where faster (10.x only)'])
    # int8
    if info.has_qdq:
        return BuildPlan(True, [], False, False, 'int8-qdq', need_plugins,
                         ['explicit quantization: Q/DQ nodes in the graph'])
    if not options.calib_images and not (options.calib_cache and os.path.isfile(options.calib_cache)
                                         and not only_strong):
        raise BuildError('--int8 needs calibration images: --calib-images DIR (a folder of '
                         'representative images, e.g. 500 from the training set)'
                         + ('' if only_strong else ' or an existing --calib-cache file'))
    if options.calib_images:
        check_calibration_folder(options.calib_images)
    if only_strong:
        if not modelopt_available:
            raise BuildError(
                f'TensorRT {ver_text} builds INT8 only from a Q/DQ graph and nvidia-modelopt is not '
                f'installed: pip install "nvidia-modelopt[onnx]", or quantize elsewhere with '
                f'`{MODELOPT_COMMAND}` (see docs/tensorrt.md) and pass that ONNX')
        if graph != 'fp32':
            raise BuildError('ModelOpt INT8 quantization takes the FP32 graph; this one is mixed FP16')
        return BuildPlan(True, [], False, True, 'int8-qdq', need_plugins,
                         ['ModelOpt INT8 Q/DQ from the calibration images, then strongly typed'])
    if graph != 'fp32':
        raise BuildError('INT8 calibration (TensorRT 10.x) takes the FP32 graph; this one is mixed '
                         'FP16 (export without --fp16)')
    return BuildPlan(False, ['FP16', 'INT8'], True, False, 'int8-calibrated', need_plugins,
                     ['implicit INT8 with the entropy calibrator, FP16/FP32 fallback (10.x)'])


def check_calibration_folder(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        raise BuildError(f'calibration image folder not found: {folder}')
    files = list_images(folder)
    if not files:
        raise BuildError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in calibration folder {folder}')
    return files


def list_images(folder: str) -> List[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS))


def check_profile_against_graph(info: OnnxInfo, profile: Dict[str, List[int]]) -> None:
    """Static dims of the graph input must equal the profile; symbolic ones take any value."""
    dims = info.input_shape
    if len(dims) != 4:
        raise BuildError(f'{info.path}: input {INPUT_NAME!r} has {len(dims)} dims, expected 4 '
                         f'([B, H, W, 3])')
    names = ('batch', 'height', 'width', 'channels')
    for i, d in enumerate(dims):
        if isinstance(d, int) and d > 0:
            for key in ('min', 'opt', 'max'):
                if profile[key][i] != d:
                    raise BuildError(f'{info.path} has a fixed {names[i]} of {d}, but the profile '
                                     f'asks {key} {names[i]} = {profile[key][i]}')
    max_batch = info.metadata.get('max_batch')
    if isinstance(max_batch, int) and profile['max'][0] > max_batch:
        raise BuildError(f'--batch max {profile["max"][0]} exceeds the batch bound the graph was '
                         f'exported with ({max_batch}); re-export with --max-batch')


# ---------------------------------------------------------------------------------------------------
# The sidecar

def sidecar_path(engine_path: str) -> str:
    return str(engine_path) + SIDECAR_SUFFIX


def make_sidecar(*, engine_path: str, engine_sha256: str, trt_version: str, gpu: dict,
                 plan: BuildPlan, options: BuildOptions, profile: Dict[str, List[int]],
                 info: OnnxInfo, plugin: Optional[dict], build_seconds: float,
                 io_tensors: Optional[List[dict]] = None) -> dict:
    meta = dict(info.metadata)
    meta['precision'] = plan.precision_label.split('-')[0]
    return {
        'schema': SIDECAR_SCHEMA,
        'kind': 'yolact_deploy.tensorrt_engine',
        'engine': os.path.basename(engine_path),
        'engine_sha256': engine_sha256,
        'tensorrt_version': trt_version,
        'gpu': gpu,
        'precision': plan.precision_label,
        'strongly_typed': plan.strongly_typed,
        'builder_flags': plan.flags,
        'profiles': [{'input': INPUT_NAME, **profile}],
        'plugin_library': plugin,
        'builder': {'workspace_mib': options.workspace_mib,
                    'optimization_level': options.optimization_level,
                    'timing_cache': options.timing_cache, 'preset': options.preset,
                    'detailed_profile': options.detailed_profile},
        'onnx': {'file': os.path.basename(info.path), 'sha256': info.sha256,
                 'plugin_ops': info.plugin_ops, 'qdq': info.has_qdq},
        'io_tensors': io_tensors or [],
        'model': meta,
        'build_seconds': round(build_seconds, 1),
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'yolact_deploy': __version__,
        'notes': plan.notes,
    }


def write_json_atomic(path: str, data: dict) -> None:
    with atomic_output(path, suffix='.json') as tmp:
        with open(tmp, 'w') as f:
            json.dump(data, f, indent=1)
            f.write('\n')


# ---------------------------------------------------------------------------------------------------
# Progress display

class BuildProgress:
    """Prints TensorRT's build phases (nested) with elapsed time; on a terminal, one live line.

    ``make_monitor(trt)`` wraps it as a ``trt.IProgressMonitor`` (10.0+). ``step_complete`` returns
    False after Ctrl-C, which cancels the build cleanly.
    """

    def __init__(self, stream=None, min_interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, 'isatty') and self.stream.isatty()
        self.phases: Dict[str, list] = {}     # name -> [parent, steps, done, start]
        self.order: List[str] = []
        self.start = time.time()
        self.last = 0.0
        self.min_interval = min_interval
        self.cancelled = False

    def _line(self) -> str:
        parts = []
        for name in self.order:
            _, steps, done, _ = self.phases[name]
            parts.append(f'{name} {done}/{steps}' if steps else name)
        return f'[build {time.time() - self.start:6.0f}s] ' + ' > '.join(parts)

    def _emit(self, text: str, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last < self.min_interval:
            return
        self.last = now
        if self.tty:
            self.stream.write('\r\x1b[K' + text[:200])
        else:
            self.stream.write(text + '\n')
        self.stream.flush()

    def phase_start(self, name: str, parent: Optional[str], steps: int) -> None:
        self.phases[name] = [parent, int(steps), 0, time.time()]
        self.order.append(name)
        if self.tty or parent is None:       # a log file gets top-level phases only
            self._emit(self._line(), force=parent is None)

    def step_complete(self, name: str, step: int) -> bool:
        if name in self.phases:
            self.phases[name][2] = int(step) + 1
            if self.tty:
                self._emit(self._line())
        return not self.cancelled

    def phase_finish(self, name: str) -> None:
        entry = self.phases.pop(name, None)
        if name in self.order:
            self.order.remove(name)
        if entry and entry[0] is None:
            self._emit(f'[build {time.time() - self.start:6.0f}s] {name}: done in '
                       f'{time.time() - entry[3]:.1f}s', force=True)
            if self.tty:
                self.stream.write('\n')

    def close(self) -> None:
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()


def make_monitor(trt, progress: BuildProgress):
    """A ``trt.IProgressMonitor`` forwarding to ``progress``."""
    class _Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            progress.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            try:
                return progress.step_complete(phase_name, step)
            except KeyboardInterrupt:
                progress.cancelled = True
                return False

        def phase_finish(self, phase_name):
            progress.phase_finish(phase_name)

    return _Monitor()


# ---------------------------------------------------------------------------------------------------
# INT8 calibration (10.x)

def load_calibration_batch(files: Sequence[str], height: int, width: int):
    """uint8 BGR ``[N, H, W, 3]`` from image files, resized to the profile's kOPT size."""
    import cv2
    import numpy as np

    from ..transforms import load_image
    out = np.empty((len(files), height, width, 3), np.uint8)
    for i, path in enumerate(files):
        image = load_image(path)
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = image
    return out


def write_calibration_npy(folder: str, path: str, height: int, width: int, limit: int = 512) -> str:
    """The calibration images as one ``{'images': uint8 [N,H,W,3]}`` .npz, for ModelOpt's
    ``--calibration_data_path`` (11.x Q/DQ route)."""
    import numpy as np
    files = check_calibration_folder(folder)[:limit]
    data = load_calibration_batch(files, height, width)
    with atomic_output(path, suffix='.npz') as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, **{INPUT_NAME: data})
    return path


def make_calibrator(trt, files: Sequence[str], batch: int, height: int, width: int,
                    cache_path: Optional[str], log=print):
    """An ``IInt8EntropyCalibrator2`` over ``files``, feeding batches at (batch, H, W) = kOPT."""
    import numpy as np
    cudart = compat.import_cudart()
    base = compat.calibrator_base(trt)

    class _Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.files = list(files)
            self.batch = batch
            self.index = 0
            self.nbytes = batch * height * width * 3
            self.device = compat.cuda_call(cudart.cudaMalloc(self.nbytes), 'cudaMalloc')

        def get_batch_size(self):
            return self.batch

        def get_batch(self, names):
            if self.index + self.batch > len(self.files):
                return []          # a partial last batch is dropped (shapes are fixed at kOPT)
            chunk = self.files[self.index:self.index + self.batch]
            self.index += self.batch
            host = np.ascontiguousarray(load_calibration_batch(chunk, height, width))
            compat.cuda_call(cudart.cudaMemcpy(self.device, host.ctypes.data, host.nbytes,
                                               cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
                             'cudaMemcpy')
            log(f'calibration: {self.index}/{len(self.files)} images')
            return [int(self.device)]

        def read_calibration_cache(self):
            if cache_path and os.path.isfile(cache_path):
                with open(cache_path, 'rb') as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            if cache_path:
                with atomic_output(cache_path, suffix='.cache') as tmp:
                    with open(tmp, 'wb') as f:
                        f.write(bytes(cache))

        def release(self):
            if self.device is not None:
                cudart.cudaFree(self.device)
                self.device = None

    return _Calibrator()


def modelopt_quantize(onnx_path: str, out_path: str, calib_npz: str, plugin_library=None) -> str:
    """11.x INT8: Q/DQ nodes by ModelOpt (``modelopt.onnx.quantization.quantize``)."""
    import numpy as np
    try:
        from modelopt.onnx.quantization import quantize
    except ImportError:
        raise BuildError(f'nvidia-modelopt is not installed; run `{MODELOPT_COMMAND}`') from None
    data = dict(np.load(calib_npz))
    quantize(onnx_path=onnx_path, quantize_mode='int8', calibration_data=data,
             calibration_method='entropy', output_path=out_path,
             trt_plugins=[plugin_library] if plugin_library else None, high_precision_dtype='fp16')
    if not os.path.isfile(out_path):
        raise BuildError(f'ModelOpt did not write {out_path}')
    return out_path


# ---------------------------------------------------------------------------------------------------
# Plugins

_LOADED_LIBRARIES: Dict[str, object] = {}


def load_plugin_library(trt, path: str, needed_ops: Sequence[str] = ()) -> dict:
    """Loads ``libyolact_plugins.so`` once per process and checks it provides ``needed_ops``."""
    from ..deploy.plugin_library import PLUGIN_NAMESPACE, PLUGIN_VERSION
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise BuildError(f'plugin library not found: {path}')
    registry = trt.get_plugin_registry()
    if path not in _LOADED_LIBRARIES:
        handle = registry.load_library(path)
        if handle is None:
            raise BuildError(f'TensorRT could not load the plugin library {path} (see the TensorRT '
                             f'message above: built for another TensorRT/CUDA version, or missing '
                             f'getCreators?)')
        _LOADED_LIBRARIES[path] = handle
    missing = [op for op in needed_ops
               if registry.get_creator(op, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None]
    if missing:
        raise BuildError(f'plugin library {path} does not provide {", ".join(missing)} '
                         f'(version {PLUGIN_VERSION}): wrong or outdated libyolact_plugins.so')
    return {'file': os.path.basename(path), 'path': path, 'sha256': sha256_file(path),
            'ops': list(needed_ops), 'version': PLUGIN_VERSION, 'namespace': PLUGIN_NAMESPACE}


def find_plugin_library(explicit: Optional[str]) -> str:
    if explicit:
        if not os.path.isfile(explicit):
            raise BuildError(f'plugin library not found: {explicit}')
        return explicit
    from ..deploy.plugin_library import PluginLibraryError, trt_library_path
    try:
        return str(trt_library_path())
    except PluginLibraryError as exc:
        raise BuildError(f'this graph has plugin nodes: {exc}') from None


# ---------------------------------------------------------------------------------------------------
# The build

def _parser_errors(parser) -> str:
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    return errors[0].splitlines()[0][:400] if errors else 'no parser message'


def build_engine(onnx_path: str, engine_path: str, options: BuildOptions = BuildOptions(),
                 quiet: bool = False) -> dict:
    """Builds ``engine_path`` (+ its sidecar) from ``onnx_path``; returns the sidecar dict.

    Checks everything it can before the long build: TensorRT present and >= 10.3, options, the ONNX
    file, the plan (precision route), calibration images, the plugin library, the output folder.
    """
    options = check_options(options)
    trt = compat.import_tensorrt()
    ver = compat.version(trt)
    info = inspect_onnx(onnx_path)
    from ..deploy.trt_conformance import assert_conformant
    assert_conformant(onnx_path)    # the parser's documented rules, in one line, before minutes of build
    modelopt = _modelopt_available()
    plan = plan_build(info, options, ver, modelopt)
    profile = options.profile(info.network_size)
    check_profile_against_graph(info, profile)
    check_output_file(engine_path)
    if options.timing_cache:
        check_output_file(options.timing_cache)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    gpu = compat.gpu_info(0)
    say(f'TensorRT {trt.__version__} on {gpu["name"]} (compute {gpu["compute_capability"]}); '
        f'{plan.precision_label}, {"strongly" if plan.strongly_typed else "weakly"} typed; '
        f'profile {profile["min"]} / {profile["opt"]} / {profile["max"]}')

    logger = compat.init_nvinfer_plugins(trt, options.verbose)  # ONNX DeformConv -> NVIDIA's plugin
    plugin = None
    if plan.needs_plugins:
        plugin = load_plugin_library(trt, find_plugin_library(options.plugin_library),
                                     info.plugin_ops)
        say(f'plugins: {plugin["path"]} ({", ".join(plugin["ops"])})')

    source = onnx_path
    tmp_files: List[str] = []
    try:
        if plan.modelopt_quantize:
            base = os.path.splitext(engine_path)[0]
            npz = write_calibration_npy(options.calib_images, base + '.calib.npz', *profile['opt'][1:3],
                                        limit=options.calib_limit)
            source = modelopt_quantize(onnx_path, base + '_int8_qdq.onnx', npz,
                                       plugin and plugin['path'])
            tmp_files.append(npz)
            say(f'ModelOpt Q/DQ graph: {source}')
        return _build(trt, logger, source, engine_path, options, info, plan, profile, plugin, gpu,
                      say, quiet)
    finally:
        for f in tmp_files:
            if os.path.exists(f):
                os.unlink(f)


def _build(trt, logger, source, engine_path, options, info, plan, profile, plugin, gpu, say,
           quiet) -> dict:
    t0 = time.time()
    builder = trt.Builder(logger)
    network = builder.create_network(compat.network_flags(trt, plan.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.path.abspath(source)):
        raise BuildError(f'TensorRT cannot parse {source}: {_parser_errors(parser)}')
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    if names != [INPUT_NAME]:
        raise BuildError(f'{source}: expected one input {INPUT_NAME!r}, TensorRT sees {names}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.optimization_level
    if options.detailed_profile:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT_NAME, profile['min'], profile['opt'], profile['max'])
    config.add_optimization_profile(opt_profile)
    if plan.flags:
        compat.set_weak_precision_flags(trt, config, fp16='FP16' in plan.flags,
                                        int8='INT8' in plan.flags)
    calibrator = None
    if plan.calibrate:
        files = check_calibration_folder(options.calib_images)[:options.calib_limit] \
            if options.calib_images else []
        b, h, w = profile['opt'][0], profile['opt'][1], profile['opt'][2]
        if files and len(files) < b:
            raise BuildError(f'{len(files)} calibration images but the kOPT batch is {b}: add '
                             f'images or lower --batch OPT')
        calibrator = make_calibrator(trt, files, b, h, w, options.calib_cache, say)
        compat.set_int8_calibrator(trt, config, calibrator, opt_profile)
    timing_cache = None
    if options.timing_cache:
        blob = b''
        if os.path.isfile(options.timing_cache):
            with open(options.timing_cache, 'rb') as f:
                blob = f.read()
            say(f'timing cache: {options.timing_cache} ({len(blob)} bytes)')
        timing_cache = config.create_timing_cache(blob)
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
    progress = None if quiet else BuildProgress()
    if progress is not None:
        config.progress_monitor = make_monitor(trt, progress)
    say('building the engine (minutes; TensorRT times many kernels) ...')
    try:
        host_memory = builder.build_serialized_network(network, config)
    finally:
        if progress is not None:
            progress.close()
        if calibrator is not None:
            calibrator.release()
    if host_memory is None:
        if progress is not None and progress.cancelled:
            raise BuildError('build cancelled')
        raise BuildError('TensorRT could not build the engine (see its messages above)')
    data = memoryview(host_memory)
    with atomic_output(engine_path, suffix='.plan') as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
    engine_sha = sha256_file(engine_path)
    if options.timing_cache:
        timing_cache = config.get_timing_cache()
        with atomic_output(options.timing_cache, suffix='.cache') as tmp:
            with open(tmp, 'wb') as f:
                f.write(memoryview(timing_cache.serialize()))
    io_tensors = _describe_engine(trt, logger, bytes(data))
    sidecar = make_sidecar(engine_path=engine_path, engine_sha256=engine_sha,
                           trt_version=trt.__version__, gpu=gpu, plan=plan, options=options,
                           profile=profile, info=info, plugin=plugin,
                           build_seconds=time.time() - t0, io_tensors=io_tensors)
    write_json_atomic(sidecar_path(engine_path), sidecar)
    say(f'engine built in {time.time() - t0:.0f}s: {engine_path} '
        f'({host_memory.nbytes / 2 ** 20:.1f} MiB)')
    return sidecar


def _describe_engine(trt, logger, blob: bytes) -> List[dict]:
    """Names, modes, dtypes and shapes of the engine's I/O tensors (recorded in the sidecar)."""
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        raise BuildError('the engine just built cannot be deserialized (see TensorRT messages)')
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        out.append({'name': name,
                    'mode': 'input' if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                    else 'output',
                    'dtype': str(engine.get_tensor_dtype(name)).split('.')[-1],
                    'shape': list(engine.get_tensor_shape(name))})
    return out


def _modelopt_available() -> bool:
    try:
        import importlib.util
        return importlib.util.find_spec('modelopt') is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------
# yolact-export --to trt (cli/export.py calls add_arguments and run)

def add_arguments(cli_parser: argparse.ArgumentParser) -> None:
    g = cli_parser.add_argument_group('TensorRT (--to trt)')
    g.add_argument('--onnx', metavar='MODEL.onnx',
                   help='build from this exported ONNX file instead of exporting --weights')
    g.add_argument('--preset', help=f'deployment preset from export/ ({", ".join(list_presets())}) '
                                    'or a JSON file; explicit flags override it')
    g.add_argument('--int8', action='store_true', help='INT8 engine (needs --calib-images, or a '
                                                       'Q/DQ graph)')
    g.add_argument('--fp32', action='store_true', help='FP32 engine (default: FP16)')
    g.add_argument('--fp16-mode', choices=['strong', 'weak'],
                   help='TensorRT 10.x only: strong (default) = strongly typed from the FP16 graph; '
                        'weak = FP32 graph + BuilderFlag.FP16')
    g.add_argument('--batch', help='dynamic batch profile MIN,OPT,MAX (default 1,1,4) or N')
    g.add_argument('--image-size', help='input image size profile: HxW (fixed) or MIN,OPT,MAX '
                                        '(default 32x32,net,4096x4096; net = the network size)')
    g.add_argument('--workspace', type=int, help='builder workspace limit in MiB (default 4096)')
    g.add_argument('--opt-level', type=int, help='builder optimization level 0..5 (default 3)')
    g.add_argument('--timing-cache', help='timing cache file: read if present, updated after the '
                                          'build (speeds up rebuilds)')
    g.add_argument('--plugin-lib', help='libyolact_plugins.so (default: $YOLACT_PLUGINS_LIB or '
                                        'build/lib)')
    g.add_argument('--calib-images', help='INT8: folder of calibration images')
    g.add_argument('--calib-cache', help='INT8 (10.x): calibration cache file (read/written)')
    g.add_argument('--calib-limit', type=int, help='INT8: use at most N images (default 512)')
    g.add_argument('--verbose-trt', action='store_true', help='TensorRT verbose log')


def options_from_args(args) -> BuildOptions:
    """Preset first, then every flag the user gave explicitly."""
    opts = BuildOptions()
    preset = getattr(args, 'preset', None)
    if preset:
        opts = options_from_preset(load_preset(preset), opts)
    kw: dict = {}
    if getattr(args, 'int8', False) and getattr(args, 'fp32', False):
        raise BuildError('--int8 and --fp32 exclude each other')
    if getattr(args, 'int8', False):
        kw['precision'] = 'int8'
    elif getattr(args, 'fp32', False):
        kw['precision'] = 'fp32'
    elif getattr(args, 'fp16', False):
        kw['precision'] = 'fp16'
    if getattr(args, 'fp16_mode', None):
        kw['fp16_mode'] = args.fp16_mode
    if getattr(args, 'batch', None):
        kw['batch'] = parse_triple(args.batch)
    if getattr(args, 'image_size', None):
        lo, opt, hi = parse_image_sizes(args.image_size)
        kw.update(image_min=lo, image_opt=opt, image_max=hi)
    for arg, key in (('workspace', 'workspace_mib'), ('opt_level', 'optimization_level'),
                     ('calib_limit', 'calib_limit')):
        if getattr(args, arg, None) is not None:
            kw[key] = int(getattr(args, arg))
    for arg, key in (('timing_cache', 'timing_cache'), ('plugin_lib', 'plugin_library'),
                     ('calib_images', 'calib_images'), ('calib_cache', 'calib_cache')):
        if getattr(args, arg, None):
            kw[key] = getattr(args, arg)
    if getattr(args, 'verbose_trt', False):
        kw['verbose'] = True
    if getattr(args, 'plugins', False):
        kw['plugins'] = True
    return check_options(replace(opts, **kw))


def onnx_export_options(options: BuildOptions, plugins: bool = False) -> dict:
    """Which ONNX graph the engine needs: FP16 graph for strongly typed FP16, FP32 otherwise."""
    fp16 = options.precision == 'fp16' and options.fp16_mode == 'strong'
    if options.precision == 'fp16':
        try:
            if compat.strongly_typed_only(compat.version()):
                fp16 = True
        except YolactError:
            pass
    return {'fp16': fp16, 'plugins': plugins, 'max_batch': max(2, options.batch[2])}


def run(args, model, output: Optional[str]) -> int:
    """``yolact-export --to trt``: export the needed ONNX graph (or take --onnx), then build."""
    options = options_from_args(args)
    compat.import_tensorrt()             # one line, before any long work, when TensorRT is absent
    onnx_path = getattr(args, 'onnx', None)
    if output is None or output.endswith('.onnx'):
        stem = os.path.splitext(os.path.basename(onnx_path or 'model'))[0]
        output = (os.path.splitext(output)[0] if output else stem) + '.plan'
    if not onnx_path:
        from .onnx_export import ExportOptions, export_onnx
        want = onnx_export_options(options, plugins=options.plugins)
        onnx_path = os.path.splitext(output)[0] + '.onnx'     # model_fp16.plan <- model_fp16.onnx
        kw = dict(plugins=want['plugins'], fp16=want['fp16'], max_batch=want['max_batch'])
        for name, key in (('opset', 'opset'), ('max_detections', 'max_detections'),
                          ('cross_class_nms', 'cross_class'), ('dcn', 'dcn')):
            if getattr(args, name, None) is not None:
                kw[key] = getattr(args, name)
        export_onnx(model, onnx_path, ExportOptions(**kw), quiet=getattr(args, 'quiet', False))
        print(f'wrote {onnx_path}', file=sys.stderr)
    sidecar = build_engine(onnx_path, output, options, quiet=getattr(args, 'quiet', False))
    print(f'wrote {output} ({sidecar["precision"]}, TensorRT {sidecar["tensorrt_version"]}, '
          f'{sidecar["gpu"]["name"]}) and {sidecar_path(output)}')
    return 0
