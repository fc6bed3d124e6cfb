"""yolact-export --to triton: a Triton Inference Server model repository for an end-to-end model.

    model_repository/
      yolact/
        config.pbtxt            platform, max_batch_size, the contract's tensors, dynamic batching
        yolact_metadata.json    class names, category ids, network size, ... (for clients)
        README.md               how to run it (plugin library, batching caveats)
        1/model.onnx            (onnxruntime_onnx)   or   1/model.plan + model.plan.json (tensorrt_plan)

The tensors come from the model file itself (ONNX graph outputs, or the engine's I/O recorded in its
sidecar), so config.pbtxt always agrees with what Triton will load. See docs/serving.md.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import InputError, YolactError
from ..deploy.fileio import make_temp_dir, release_temp_dir

CONTRACT_OUTPUTS = ('num_detections', 'boxes', 'scores', 'mask_scores', 'classes', 'masks')
INPUT_NAME = 'images'
DEFAULT_MAX_BATCH = 8

# ONNX TensorProto element types / TensorRT DataType names -> Triton data types.
_ONNX_TYPES = {1: 'TYPE_FP32', 2: 'TYPE_UINT8', 3: 'TYPE_INT8', 5: 'TYPE_INT16', 6: 'TYPE_INT32',
               7: 'TYPE_INT64', 9: 'TYPE_BOOL', 10: 'TYPE_FP16', 11: 'TYPE_FP64', 16: 'TYPE_BF16'}
_TRT_TYPES = {'FLOAT': 'TYPE_FP32', 'HALF': 'TYPE_FP16', 'BF16': 'TYPE_BF16', 'INT8': 'TYPE_INT8',
              'INT32': 'TYPE_INT32', 'INT64': 'TYPE_INT64', 'UINT8': 'TYPE_UINT8',
              'BOOL': 'TYPE_BOOL'}


class TritonError(YolactError):
    """The model cannot be turned into a Triton repository (one line)."""


@dataclass
class Tensor:
    name: str
    data_type: str          # Triton TYPE_*
    dims: List[int]         # without the batch dim; -1 = dynamic


@dataclass
class ModelSpec:
    platform: str                           # onnxruntime_onnx | tensorrt_plan
    model_file: str
    input: Tensor
    outputs: List[Tensor]
    metadata: dict
    max_batch: Optional[int] = None         # engine profile limit (None: no limit known)
    plugin: Optional[dict] = None           # plugin library record of a plugin engine
    extra_files: Dict[str, str] = field(default_factory=dict)  # name in version dir -> source


# ---------------------------------------------------------------------------------------------------
# Reading the model

def _check_contract(spec: ModelSpec, path: str) -> None:
    if spec.metadata.get('graph') == 'raw':
        raise TritonError(f'{path} is a raw graph (--raw): Triton serving needs the end-to-end '
                          'contract outputs; export without --raw')
    inp = spec.input
    if inp.name != INPUT_NAME or inp.data_type != 'TYPE_UINT8' or len(inp.dims) != 3 or \
            inp.dims[2] != 3:
        raise TritonError(f'{path}: input is {inp.name} {inp.data_type} {inp.dims} (without '
                          f'batch); expected {INPUT_NAME} TYPE_UINT8 [H, W, 3]')
    names = [o.name for o in spec.outputs]
    missing = [n for n in CONTRACT_OUTPUTS if n not in names and n != 'mask_scores']
    if missing:
        raise TritonError(f'{path} lacks the contract outputs {", ".join(missing)}')


def _onnx_dims(value_info) -> List[object]:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField('dim_value') else -1)
    return dims


def read_onnx(path: str) -> ModelSpec:
    try:
        import onnx
    except ImportError:
        raise TritonError('reading an ONNX model needs the onnx package (pip install onnx)') from None
    from ..deploy.metadata import parse_metadata
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise TritonError(f'cannot read ONNX file {path}: {type(exc).__name__}') from None
    meta = parse_metadata({p.key: p.value for p in model.metadata_props}, path)
    if meta.get('flavour') == 'plugins':
        raise TritonError(f'{path} uses the yolact plugin nodes, which Triton\'s onnxruntime '
                          'backend cannot run; export the portable flavour (no --plugins) for '
                          'Triton, or build a TensorRT engine from it (--engine)')
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer):
        raise TritonError(f'{path} keeps its weights in external files; export it as one file')
    graph_inputs = [i for i in model.graph.input
                    if i.name not in {init.name for init in model.graph.initializer}]
    if len(graph_inputs) != 1:
        raise TritonError(f'{path} has {len(graph_inputs)} inputs; expected one ({INPUT_NAME})')

    def tensor(vi) -> Tensor:
        elem = vi.type.tensor_type.elem_type
        if elem not in _ONNX_TYPES:
            raise TritonError(f'{path}: tensor {vi.name} has an unsupported element type {elem}')
        dims = _onnx_dims(vi)
        if not dims or dims[0] != -1:
            raise TritonError(f'{path}: tensor {vi.name} has no dynamic batch dimension '
                              f'({dims}); export with a dynamic batch')
        return Tensor(vi.name, _ONNX_TYPES[elem], [int(d) for d in dims[1:]])

    spec = ModelSpec('onnxruntime_onnx', 'model.onnx', tensor(graph_inputs[0]),
                     [tensor(o) for o in model.graph.output], meta)
    _check_contract(spec, path)
    return spec


def read_engine(path: str, sidecar: Optional[str] = None) -> ModelSpec:
    from ..deploy.sidecar import profile_of, read_sidecar, sidecar_path
    try:
        data = read_sidecar(path, sidecar)
    except YolactError as exc:
        raise TritonError(str(exc)) from None
    io = data.get('io_tensors') or []
    if not io:
        raise TritonError(f'{sidecar or sidecar_path(path)} does not list the engine\'s I/O tensors '
                          '(io_tensors); rebuild the engine with this yolact-deploy')

    def tensor(t) -> Tensor:
        dtype = str(t.get('dtype', '')).upper()
        if dtype not in _TRT_TYPES:
            raise TritonError(f'{path}: tensor {t.get("name")} has unsupported type {dtype}')
        shape = [int(d) for d in t.get('shape', [])]
        if not shape or shape[0] != -1:
            raise TritonError(f'{path}: tensor {t.get("name")} has no dynamic batch ({shape})')
        return Tensor(t['name'], _TRT_TYPES[dtype], shape[1:])

    inputs = [tensor(t) for t in io if t.get('mode') == 'input']
    if len(inputs) != 1:
        raise TritonError(f'{path} has {len(inputs)} inputs; expected one ({INPUT_NAME})')
    lo, _, hi = profile_of(data)
    spec = ModelSpec('tensorrt_plan', 'model.plan', inputs[0],
                     [tensor(t) for t in io if t.get('mode') == 'output'], dict(data['model']),
                     max_batch=int(hi[0]), plugin=data.get('plugin_library'),
                     extra_files={'model.plan.json': sidecar or sidecar_path(path)})
    # Input H/W: -1 where the profile lets them vary.
    spec.input.dims = [-1 if lo[1] != hi[1] else hi[1], -1 if lo[2] != hi[2] else hi[2], 3]
    _check_contract(spec, path)
    return spec


def read_model(path: str, sidecar: Optional[str] = None) -> ModelSpec:
    if not os.path.isfile(path):
        raise InputError(f'model file not found: {path}')
    ext = os.path.splitext(path)[1].lower()
    if ext == '.onnx':
        return read_onnx(path)
    if ext in ('.plan', '.engine', '.trt'):
        return read_engine(path, sidecar)
    raise TritonError(f'{path}: Triton repositories take an .onnx file or a TensorRT engine '
                      '(.plan/.engine)')


# ---------------------------------------------------------------------------------------------------
# config.pbtxt

def _dims(dims: Sequence[int]) -> str:
    return '[ ' + ', '.join(str(int(d)) for d in dims) + ' ]'


def render_config(spec: ModelSpec, *, name: str, max_batch: int, instances: int, kind: str,
                  queue_delay_us: int, max_queue: int,
                  preferred_batch_sizes: Sequence[int] = ()) -> str:
    lines = [f'# Generated by yolact-export --to triton ({spec.metadata.get("preset", "?")}, '
             f'{spec.metadata.get("precision", "?")}); tensors read from the model file.',
             f'name: "{name}"', f'platform: "{spec.platform}"', f'max_batch_size: {max_batch}',
             'input [',
             '  {', f'    name: "{spec.input.name}"', f'    data_type: {spec.input.data_type}',
             '    format: FORMAT_NONE', f'    dims: {_dims(spec.input.dims)}', '  }', ']',
             'output [']
    for i, o in enumerate(spec.outputs):
        lines += ['  {', f'    name: "{o.name}"', f'    data_type: {o.data_type}',
                  f'    dims: {_dims(o.dims)}', '  }' + (',' if i + 1 < len(spec.outputs) else '')]
    lines += [']']
    lines += ['dynamic_batching {']
    if preferred_batch_sizes:
        lines.append(f'  preferred_batch_size: {_dims(preferred_batch_sizes)}')
    lines += [f'  max_queue_delay_microseconds: {int(queue_delay_us)}',
              '  default_queue_policy {', '    timeout_action: REJECT',
              '    allow_timeout_override: true', f'    max_queue_size: {int(max_queue)}', '  }',
              '}',
              'instance_group [', '  {', f'    count: {int(instances)}',
              f'    kind: {"KIND_GPU" if kind == "gpu" else "KIND_CPU"}', '  }', ']']
    return '\n'.join(lines) + '\n'


def parse_pbtxt(text: str) -> dict:
    """A small reader for the protobuf text format Triton configs use: fields become keys, repeated
    fields and messages lists (``{'input': [{...}], 'max_batch_size': [8]}``). Enough to check
    generated configs; not a general protobuf parser."""
    tokens, i = [], 0
    while i < len(text):
        c = text[i]
        if c in ' \t\r\n,;':
            i += 1
        elif c == '#':
            while i < len(text) and text[i] != '\n':
                i += 1
        elif c in '{}[]:':
            tokens.append(c)
            i += 1
        elif c in '"\'':
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            if j >= len(text):
                raise ValueError('unterminated string in pbtxt')
            tokens.append(('str', bytes(text[i + 1:j], 'utf-8').decode('unicode_escape')))
            i = j + 1
        else:
            j = i
            while j < len(text) and text[j] not in ' \t\r\n,;{}[]:#"\'':
                j += 1
            tokens.append(('word', text[i:j]))
            i = j
    pos = 0

    def scalar(tok):
        if tok[0] == 'str':
            return tok[1]
        word = tok[1]
        for conv in (int, float):
            try:
                return conv(word)
            except ValueError:
                pass
        return {'true': True, 'false': False}.get(word, word)

    def message(end):
        nonlocal pos
        out: dict = {}
        while pos < len(tokens) and tokens[pos] != end:
            tok = tokens[pos]
            if not (isinstance(tok, tuple) and tok[0] == 'word'):
                raise ValueError(f'expected a field name, got {tok!r}')
            key = tok[1]
            pos += 1
            if pos < len(tokens) and tokens[pos] == ':':
                pos += 1
            values = []
            if tokens[pos] == '{':
                pos += 1
                values.append(message('}'))
                pos += 1
            elif tokens[pos] == '[':
                pos += 1
                while tokens[pos] != ']':
                    if tokens[pos] == '{':
                        pos += 1
                        values.append(message('}'))
                        pos += 1
                    else:
                        values.append(scalar(tokens[pos]))
                        pos += 1
                pos += 1
            else:
                values.append(scalar(tokens[pos]))
                pos += 1
            out.setdefault(key, []).extend(values)
        if end is not None and pos >= len(tokens):
            raise ValueError(f'missing {end!r} in pbtxt')
        return out

    result = message(None)
    if pos != len(tokens):
        raise ValueError('unexpected tokens after the config')
    return result


# ---------------------------------------------------------------------------------------------------
# The repository

def _readme(spec: ModelSpec, name: str, max_batch: int) -> str:
    meta = spec.metadata
    size = meta.get('input', {}).get('network_size', ['?', '?'])
    lines = [f'# Triton model `{name}` (yolact-deploy)', '',
             f'- platform `{spec.platform}`, preset `{meta.get("preset", "?")}`, precision '
             f'`{meta.get("precision", "?")}`, {len(meta.get("class_names", []))} classes, '
             f'network size {size[0]}x{size[1]}, max batch {max_batch}.',
             '- input `images`: uint8 `[B, H, W, 3]` BGR, the original image (the graph resizes '
             'and normalises).',
             '- outputs: the yolact engine contract (`num_detections`, `boxes` relative x1y1x2y2, '
             '`scores`, `mask_scores`, `classes` (-1 pads), `masks` cropped probabilities at '
             'prototype resolution). Final masks: bilinear resize to the image size, then > 0.5 '
             '(yolact_deploy.postprocess.finalize or the C++ yolact::finalize).',
             '- Dynamic batching only merges requests whose images have the same size. Resize '
             f'images to {size[0]}x{size[1]} on the client to batch everything (the in-graph '
             'resize is then the identity; results differ from original-size input by the '
             'uint8 rounding of that resize).', '']
    if spec.platform == 'tensorrt_plan':
        lines += ['Run on the GPU model and TensorRT release the engine was built with '
                  '(see `1/model.plan.json`); Triton\'s container must ship that TensorRT.', '']
    if spec.plugin:
        lines += ['This engine uses the yolact TensorRT plugins '
                  f'({", ".join(spec.plugin.get("ops", []))}). `libyolact_plugins.so` registers '
                  'them only through `IPluginRegistry::loadLibrary`; Triton only `dlopen`s plugin '
                  'libraries, so load it through the preload shim built with engines/:', '',
                  '```',
                  'LD_PRELOAD=/opt/yolact/lib/libyolact_triton_preload.so \\',
                  '  YOLACT_PLUGINS_LIB=/opt/yolact/lib/libyolact_plugins.so \\',
                  '  tritonserver --model-repository=/models',
                  '# or: tritonserver --backend-config=tensorrt,plugins=/opt/yolact/lib/'
                  'libyolact_triton_preload.so ...',
                  '```', '',
                  'Build both libraries against the TensorRT of the Triton container.', '']
    return '\n'.join(lines)


def build_repository(model_path: str, repository: str, *, name: str = 'yolact',
                     max_batch: Optional[int] = None, instances: int = 1,
                     kind: Optional[str] = None, queue_delay_us: int = 2000,
                     max_queue: int = 64, preferred_batch_sizes: Sequence[int] = (),
                     sidecar: Optional[str] = None, overwrite: bool = False) -> str:
    """Writes ``repository/name/`` for ``model_path`` (.onnx or engine); returns that folder.
    Written into a temporary folder first and moved into place: no half-written repository."""
    if not name or any(c in name for c in '/\\ ') or name.startswith('.'):
        raise TritonError(f'invalid Triton model name {name!r}')
    spec = read_model(model_path, sidecar)
    limit = spec.max_batch
    if max_batch is None:
        max_batch = min(DEFAULT_MAX_BATCH, limit) if limit else DEFAULT_MAX_BATCH
    if max_batch < 1:
        raise TritonError(f'max batch must be >= 1, got {max_batch}')
    if limit and max_batch > limit:
        raise TritonError(f'max batch {max_batch} exceeds the engine profile (batch up to {limit}); '
                          'rebuild the engine with a larger --batch or lower --triton-max-batch')
    kind = kind or 'gpu'
    if kind not in ('gpu', 'cpu'):
        raise TritonError(f'instance kind must be gpu or cpu, got {kind!r}')
    if spec.platform == 'tensorrt_plan' and kind != 'gpu':
        raise TritonError('TensorRT engines run on GPU instances only (--triton-kind gpu)')
    if instances < 1 or max_queue < 1 or queue_delay_us < 0:
        raise TritonError('instances and max queue must be >= 1, the queue delay >= 0')
    bad = [b for b in preferred_batch_sizes if not 1 <= b <= max_batch]
    if bad:
        raise TritonError(f'preferred batch sizes {bad} are outside 1..{max_batch}')
    config = render_config(spec, name=name, max_batch=max_batch, instances=instances, kind=kind,
                           queue_delay_us=queue_delay_us, max_queue=max_queue,
                           preferred_batch_sizes=preferred_batch_sizes)
    parse_pbtxt(config)  # never write a config we cannot read back

    dest = os.path.join(repository, name)
    if os.path.exists(dest) and not overwrite:
        raise TritonError(f'{dest} exists; remove it or pass --triton-overwrite')
    try:
        os.makedirs(repository, exist_ok=True)
        tmp = make_temp_dir(repository, name)
    except OSError as exc:
        raise TritonError(f'cannot write to {repository}: {exc.strerror}') from None
    try:
        version_dir = os.path.join(tmp, '1')
        os.makedirs(version_dir)
        shutil.copyfile(model_path, os.path.join(version_dir, spec.model_file))
        for target, source in spec.extra_files.items():
            shutil.copyfile(source, os.path.join(version_dir, target))
        with open(os.path.join(tmp, 'config.pbtxt'), 'w') as f:
            f.write(config)
        meta = spec.metadata
        with open(os.path.join(tmp, 'yolact_metadata.json'), 'w') as f:
            json.dump({'model': name, 'platform': spec.platform, 'max_batch_size': max_batch,
                       'class_names': meta.get('class_names', []),
                       'category_ids': meta.get('category_ids', []),
                       'network_size': meta.get('input', {}).get('network_size'),
                       'max_detections': meta.get('max_detections'),
                       'proto_size': meta.get('proto_size'), 'precision': meta.get('precision'),
                       'plugin_library': spec.plugin, 'metadata': meta}, f, indent=1)
        with open(os.path.join(tmp, 'README.md'), 'w') as f:
            f.write(_readme(spec, name, max_batch))
        if os.path.exists(dest):
            old = dest + '.old'
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except OSError as exc:
        raise TritonError(f'cannot write the Triton repository {dest}: {exc.strerror or exc}') \
            from None
    finally:
        release_temp_dir(tmp)
    return dest
