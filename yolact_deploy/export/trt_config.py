"""TensorRT build configuration, decided without TensorRT: options, deployment presets, the ONNX
file's facts and the build plan (precision route, flags, profile). Pure functions, tested on any
machine; :mod:`.tensorrt_build` runs the plan.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..deploy import trt_compat as compat
from ..deploy.contract import INPUT_NAME
from ..deploy.media import IMAGE_EXTENSIONS, list_images
from ..deploy.package_data import presets_dir
from ..deploy.sidecar import sha256_file
from ..errors import InputError, YolactError

PLUGIN_DOMAIN = 'yolact_deploy'
QDQ_OPS = ('QuantizeLinear', 'DequantizeLinear')
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
    if not presets_dir().is_dir():
        return []
    return sorted(p.stem for p in presets_dir().glob('*.json'))


def load_preset(name: str) -> dict:
    """A deployment preset: ``export/NAME.json`` or a path to such a file."""
    path = Path(name)
    if not path.suffix:
        path = presets_dir() / f'{name}.json'
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
