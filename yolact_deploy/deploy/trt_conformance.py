"""TensorRT conformance of an ONNX graph: the ONNX parser's documented rules, checked without TensorRT.

The rules (``data/trt_parser_rules.json``) are facts read from onnx-tensorrt (``docs/operators.md``
and the importer sources of the branches recorded in the file) for the oldest TensorRT we support
(10.3, JetPack 6) and the newest parser table available, plus the contract our plugin creators
expose to the parser's plugin fallback. Checked per target:

- the default-domain opset is in the parser's range;
- every standard op is supported, with its data inputs in the op's documented types;
- UINT8 only as a network input or output (consumed only by Cast, never produced inside);
- TopK ``sorted=1`` with a constant ``K`` below the layer's limit;
- DeformConv with 1-D/2-D spatial dims, symmetric pads and one float type; Resize modes;
- custom nodes: a known creator, ``plugin_version``/``plugin_namespace`` equal to the creator's,
  every creator field present with the attribute type the parser turns into the field type the
  creator reads, and the creator's input/output counts and input types.

Deployment layer: stdlib + numpy + onnx only (no torch), so a Jetson box can check a graph before
spending minutes on an engine build.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..errors import YolactError

RULES_PATH = Path(__file__).resolve().parent / 'data' / 'trt_parser_rules.json'
DEFAULT_DOMAINS = ('', 'ai.onnx')
_PLUGIN_ATTRS = ('plugin_version', 'plugin_namespace')


class ConformanceError(YolactError):
    """A graph the TensorRT ONNX parser would reject, said in one line."""


@dataclass(frozen=True)
class Violation:
    target: str          # rules target, e.g. '10.3' or 'newest'
    rule: str            # opset | op | dtype | uint8 | topk | deformconv | resize | plugin
    node: str            # node name ('' for graph-level rules)
    op_type: str
    message: str

    def __str__(self) -> str:
        where = f'{self.op_type} node {self.node!r}: ' if self.node or self.op_type else ''
        return f'TensorRT {self.target}: {where}{self.message}'


@functools.lru_cache(maxsize=None)
def load_rules(path: Optional[str] = None) -> dict:
    with open(path or RULES_PATH) as f:
        return json.load(f)


def targets(rules: Optional[dict] = None) -> List[str]:
    return list((rules or load_rules())['targets'])


# ---------------------------------------------------------------------------------------------------
# Types of every tensor

def _type_names() -> Dict[int, str]:
    from onnx import TensorProto as T
    names = {T.FLOAT: 'FP32', T.FLOAT16: 'FP16', T.BFLOAT16: 'BF16', T.INT32: 'INT32',
             T.INT64: 'INT64', T.INT8: 'INT8', T.UINT8: 'UINT8', T.BOOL: 'BOOL', T.DOUBLE: 'DOUBLE',
             T.INT16: 'INT16', T.UINT16: 'UINT16', T.UINT32: 'UINT32', T.UINT64: 'UINT64',
             T.STRING: 'STRING'}
    for attr, name in (('FLOAT8E4M3FN', 'FP8'), ('INT4', 'INT4'), ('FLOAT4E2M1', 'FP4')):
        if hasattr(T, attr):
            names[getattr(T, attr)] = name
    return names


def _tensor_types(model) -> Dict[str, str]:
    """Tensor name -> type name ('FP32', 'INT64', ...) from shape inference, value_info, initializers
    and Constant nodes (custom-op outputs rely on the value_info the exporter writes)."""
    import onnx
    names = _type_names()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is a help here, not a requirement
        inferred = model
    types: Dict[str, str] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output) + list(model.graph.value_info):
        t = vi.type.tensor_type.elem_type
        if t:
            types.setdefault(vi.name, names.get(t, str(t)))
    for init in g.initializer:
        types[init.name] = names.get(init.data_type, str(init.data_type))
    for node in g.node:
        if node.op_type == 'Constant' and node.output:
            for a in node.attribute:
                if a.name == 'value' and a.t.data_type:
                    types[node.output[0]] = names.get(a.t.data_type, str(a.t.data_type))
    return types


def _constants(model) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Constant' and node.output:
            for a in node.attribute:
                if a.name == 'value':
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _attr_kind(node) -> Dict[str, str]:
    from onnx import AttributeProto
    kinds = {AttributeProto.INT: 'INT', AttributeProto.FLOAT: 'FLOAT', AttributeProto.STRING: 'STRING',
             AttributeProto.INTS: 'INTS', AttributeProto.FLOATS: 'FLOATS',
             AttributeProto.TENSOR: 'TENSOR'}
    return {a.name: kinds.get(a.type, str(a.type)) for a in node.attribute}


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# ---------------------------------------------------------------------------------------------------
# The check

def _data_inputs(rules: dict, node) -> Sequence[int]:
    spec = rules['data_inputs'].get(node.op_type)
    return range(len(node.input)) if spec is None else spec


def _check_node(rules, target, table, node, types, consts, out: List[Violation]) -> None:
    name, op = node.name, node.op_type

    def bad(rule, message):
        out.append(Violation(target, rule, name, op, message))

    entry = table.get(op)
    if entry is None or not entry['supported']:
        bad('op', 'not supported by the ONNX parser')
        return
    allowed = entry['types']
    checked = [node.input[i] for i in _data_inputs(rules, node) if i < len(node.input) and node.input[i]]
    if op in rules['output_types_checked']:
        checked += [o for o in node.output if o]
    for tensor in checked:
        t = types.get(tensor)
        if t is None or t == 'UINT8':     # UINT8 has its own rule below
            continue
        if t not in allowed:
            bad('dtype', f'{t} tensor {tensor!r} (the parser supports {", ".join(allowed)})')
    attrs = _attrs(node)
    if op == 'TopK':
        spec = rules['topk']
        if int(attrs.get('sorted', 1)) != spec['sorted']:
            bad('topk', 'sorted must be 1')
        k = consts.get(node.input[1]) if len(node.input) > 1 else None
        if k is None:
            bad('topk', f'K is not a constant, so K < {spec["k_max_exclusive"]} cannot be checked')
        elif int(np.asarray(k).reshape(-1)[0]) >= spec['k_max_exclusive']:
            bad('topk', f'K = {int(np.asarray(k).reshape(-1)[0])} is not below '
                        f'{spec["k_max_exclusive"]}')
    elif op == 'DeformConv':
        spec = rules['deformconv']
        pads = list(attrs.get('pads', []))
        half = len(pads) // 2
        if pads and pads[:half] != pads[half:]:
            bad('deformconv', f'pads {pads}: begin and end pads must be equal')
        kernel = consts.get(node.input[1]) if len(node.input) > 1 else None
        spatial = (kernel.ndim - 2) if kernel is not None else (len(pads) // 2 or None)
        if spatial is not None and spatial not in spec['spatial_dims']:
            bad('deformconv', f'{spatial}-D spatial input (only 1-D or 2-D)')
        got = {types.get(i) for i in node.input if i} - {None}
        if len(got) > 1:
            bad('deformconv', f'inputs of mixed types {sorted(got)} (all FP32 or all FP16)')
    elif op == 'Resize':
        spec = rules['resize']
        defaults = {'coordinate_transformation_mode': 'half_pixel', 'mode': 'nearest',
                    'nearest_mode': 'round_prefer_floor', 'keep_aspect_ratio_policy': 'stretch',
                    'antialias': 0}
        for key, default in defaults.items():
            value = attrs.get(key, default)
            value = _text(value) if isinstance(value, (bytes, str)) else int(value)
            if value not in spec[key]:
                bad('resize', f'{key}={value!r} (supported: {spec[key]})')


def _check_plugin(rules, target, builtin, node, types, out: List[Violation]) -> None:
    name, op = node.name, node.op_type

    def bad(message):
        out.append(Violation(target, 'plugin', name, op, message))

    if op in builtin:
        bad(f'custom op named like the built-in ONNX op {op}: the built-in importer would win')
        return
    creator = rules['plugins']['creators'].get(op)
    if creator is None:
        bad(f'custom op in domain {node.domain!r} with no known plugin creator '
            f'(known: {", ".join(rules["plugins"]["creators"])})')
        return
    attrs, kinds = _attrs(node), _attr_kind(node)
    for key, want in (('plugin_version', creator['version']),
                      ('plugin_namespace', creator['namespace'])):
        if key not in attrs:
            bad(f'no {key} attribute (the creator has {key.split("_")[1]} {want!r})')
        elif kinds[key] != 'STRING' or _text(attrs[key]) != want:
            bad(f'{key}={_text(attrs[key])!r} but the creator has {want!r}')
    for field, kind in creator['fields'].items():
        if field not in attrs:
            bad(f'attribute {field!r} missing (a creator field; the parser would skip it)')
        elif kinds[field] != kind:
            bad(f'attribute {field!r} is {kinds[field]}, the creator reads {kind}')
    n_in = sum(1 for i in node.input if i)
    if n_in != creator['inputs']:
        bad(f'{n_in} inputs, the plugin takes {creator["inputs"]}')
    if len(node.output) != creator['outputs']:
        bad(f'{len(node.output)} outputs, the plugin has {creator["outputs"]}')
    got = [types.get(i) for i in node.input if i]
    for t in {t for t in got if t is not None}:
        if t not in creator['input_types']:
            bad(f'{t} input (the plugin takes {", ".join(creator["input_types"])})')
    if creator.get('same_type_inputs') and len({t for t in got if t}) > 1:
        bad(f'inputs of mixed types {sorted({t for t in got if t})}')


def _walk(graph) -> Iterable:
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.g.node:
                yield from _walk(a.g)
            for sub in a.graphs:
                yield from _walk(sub)


def check_model(model, which: Optional[Sequence[str]] = None,
                rules: Optional[dict] = None) -> List[Violation]:
    """All violations of ``model`` (an ``onnx.ModelProto``) against the targets ``which``
    (default: every target in the rules)."""
    rules = rules or load_rules()
    types = _tensor_types(model)
    consts = _constants(model)
    graph_outputs = {o.name for o in model.graph.output}
    out: List[Violation] = []
    opsets = {o.domain: o.version for o in model.opset_import}
    opset = opsets.get('', opsets.get('ai.onnx'))
    nodes = list(_walk(model.graph))
    for target in (which or targets(rules)):
        spec = rules['targets'][target]
        table = spec['ops']
        lo, hi = spec['opset']
        if opset is None or not lo <= opset <= hi:
            out.append(Violation(target, 'opset', '', '',
                                 f'opset {opset} is outside the parser range {lo}..{hi}'))
        uint8_ok = {op for op, e in table.items() if 'UINT8' in e['types']}
        for node in nodes:
            if node.domain in DEFAULT_DOMAINS:
                _check_node(rules, target, table, node, types, consts, out)
            else:
                _check_plugin(rules, target, table, node, types, out)
            for tensor in node.input:
                if types.get(tensor) == 'UINT8' and node.op_type not in uint8_ok:
                    out.append(Violation(target, 'uint8', node.name, node.op_type,
                                         f'consumes UINT8 tensor {tensor!r} (UINT8 is only a '
                                         f'network input or output: Cast it first)'))
            for tensor in node.output:
                if types.get(tensor) == 'UINT8' and tensor not in graph_outputs:
                    out.append(Violation(target, 'uint8', node.name, node.op_type,
                                         f'produces the UINT8 intermediate {tensor!r} (UINT8 is '
                                         f'only a network input or output)'))
    return out


def check_file(path: str, which: Optional[Sequence[str]] = None) -> List[Violation]:
    import onnx
    if not os.path.isfile(path):
        raise ConformanceError(f'ONNX file not found: {path}')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise ConformanceError(f'cannot read ONNX file {path}: corrupt or not ONNX '
                               f'({type(exc).__name__})') from None
    return check_model(model, which)


def summary(violations: Sequence[Violation], what: str = 'the graph') -> str:
    """One line: the first violation and how many more there are."""
    first = violations[0]
    more = len(violations) - 1
    return (f'{what} fails the TensorRT conformance check: {first}'
            + (f' (and {more} more; yolact-export --check-trt lists them)' if more else ''))


def assert_conformant(model_or_path, which: Optional[Sequence[str]] = None,
                      what: Optional[str] = None) -> None:
    """Raises :class:`ConformanceError` (one line) when the graph breaks a parser rule."""
    if isinstance(model_or_path, (str, os.PathLike)):
        violations = check_file(str(model_or_path), which)
        what = what or str(model_or_path)
    else:
        violations = check_model(model_or_path, which)
    if violations:
        raise ConformanceError(summary(violations, what or 'the graph'))


def report(violations: Sequence[Violation], which: Sequence[str]) -> List[str]:
    """Lines for a person: each target's verdict, then every violation."""
    lines = []
    for target in which:
        n = sum(v.target == target for v in violations)
        lines.append(f'TensorRT {target}: ' + ('conformant' if not n else f'{n} violation(s)'))
    lines += [f'  {v}' for v in violations]
    return lines
