"""The model description that travels inside the ONNX file (``metadata_props``, JSON).

Runtimes configure themselves from it: class names, category ids, input size and normalisation,
detection thresholds, K, graph kind, flavour and precision. The key is :data:`METADATA_KEY`; its value
is one JSON object (schema version :data:`SCHEMA_VERSION`, documented in docs/onnx.md).
"""
from __future__ import annotations

import json
from typing import Optional

from .. import __version__
from ..config import MEANS_BGR, STD_BGR
from ..errors import YolactError

METADATA_KEY = 'yolact_deploy'
SCHEMA_VERSION = 1


def _versions() -> dict:
    import onnx
    import torch
    out = {'yolact_deploy': __version__, 'torch': torch.__version__, 'onnx': onnx.__version__}
    try:
        import onnxslim
        out['onnxslim'] = onnxslim.__version__
    except ImportError:
        pass
    return out


def build_metadata(config, *, raw: bool, flavour: str, precision: str, opset: int,
                   max_detections: int, cross_class: bool, proto_size, output_names,
                   extra: Optional[dict] = None) -> dict:
    transform = config.backbone.transform
    meta = {
        'schema': SCHEMA_VERSION,
        'preset': config.name,
        'graph': 'raw' if raw else 'end_to_end',
        'flavour': flavour,
        'precision': precision,
        'opset': opset,
        'class_names': list(config.class_names),
        'category_ids': list(config.category_ids),
        'input': {
            'name': 'images', 'dtype': 'uint8', 'layout': 'NHWC', 'channels': 'BGR',
            'height': 'dynamic', 'width': 'dynamic', 'batch': 'dynamic',
            'network_size': [config.max_size, config.max_size],
            'resize': 'bilinear, half_pixel, no antialias, to network_size (in graph)',
            'transform': transform,
            'mean_bgr': list(MEANS_BGR) if transform == 'normalize' else None,
            'std_bgr': list(STD_BGR) if transform == 'normalize' else None,
        },
        'proto_size': list(proto_size),
        'thresholds': {'conf_thresh': config.nms_conf_thresh, 'nms_thresh': config.nms_thresh,
                       'nms_top_k': config.nms_top_k},
        'max_detections': max_detections,
        'cross_class_nms': cross_class,
        'mask_rescoring': bool(config.use_maskiou and config.rescore_mask),
        'outputs': list(output_names),
        'toolkit': _versions(),
        'config': config.to_dict(),
    }
    meta.update(extra or {})
    return meta


def attach_metadata(model, meta: dict) -> None:
    """Writes ``meta`` into ``model.metadata_props`` (replacing an older entry)."""
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta)


# What a runtime needs from a graph of each kind (``graph`` in the metadata).
REQUIRED_OUTPUTS = {'end_to_end': ('num_detections', 'boxes', 'scores', 'classes', 'masks'),
                    'raw': ('loc', 'conf', 'mask', 'priors', 'proto')}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_metadata(meta, path: str = 'model') -> dict:
    """The schema, checked once where metadata is read: one-line :class:`YolactError` for anything a
    runtime would otherwise trip over later (a KeyError at the first run, a label index past the
    class list)."""
    def bad(what):
        raise YolactError(f'{path}: invalid {METADATA_KEY!r} metadata: {what}')
    if not isinstance(meta, dict):
        bad(f'expected a JSON object, got {type(meta).__name__}')
    schema = meta.get('schema')
    if not _is_int(schema) or schema < 1:
        bad(f'"schema" must be a positive integer, got {schema!r}')
    if schema > SCHEMA_VERSION:
        raise YolactError(f'{path} uses metadata schema {schema}; this yolact-deploy reads up to '
                          f'{SCHEMA_VERSION}: upgrade yolact-deploy')
    if meta.get('graph') not in REQUIRED_OUTPUTS:
        bad(f'"graph" must be one of {", ".join(REQUIRED_OUTPUTS)}, got {meta.get("graph")!r}')
    names, ids = meta.get('class_names'), meta.get('category_ids')
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        bad('"class_names" must be a non-empty list of strings')
    if not isinstance(ids, list) or len(ids) != len(names) or not all(_is_int(i) for i in ids):
        bad(f'"category_ids" must be {len(names)} integers, one per class name')
    size = (meta.get('input') or {}).get('network_size') if isinstance(meta.get('input'), dict) \
        else None
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
        bad('"input.network_size" must be two positive integers')
    k = meta.get('max_detections', 100)
    if not _is_int(k) or k < 1:
        bad(f'"max_detections" must be a positive integer, got {k!r}')
    config = meta.get('config')
    if config is not None:
        if not isinstance(config, dict):
            bad('"config" must be an object')
        cfg_names = config.get('class_names')
        if cfg_names is not None and (not isinstance(cfg_names, list) or len(cfg_names) != len(names)):
            bad(f'{len(names)} class names, but the model was built for '
                f'{len(cfg_names) if isinstance(cfg_names, list) else "?"} classes')
    outputs = meta.get('outputs')
    if outputs is not None and (not isinstance(outputs, list) or
                                not all(isinstance(o, str) for o in outputs)):
        bad('"outputs" must be a list of names')
    return meta


def check_graph_outputs(meta: dict, outputs: dict, path: str = 'model') -> None:
    """``outputs``: the graph's ``{name: shape}``; the graph must be the kind its metadata says, with
    as many classes as it names (the raw ``conf`` output has C + 1 scores per prior)."""
    missing = [n for n in REQUIRED_OUTPUTS[meta['graph']] if n not in outputs]
    if missing:
        raise YolactError(f'{path} is not a YOLACT {meta["graph"].replace("_", "-")} graph: it has '
                          f'no {", ".join(missing)} output')
    conf = outputs.get('conf')
    if conf is not None and len(conf) == 3 and _is_int(conf[-1]) and \
            conf[-1] != len(meta['class_names']) + 1:
        raise YolactError(f'{path}: the metadata names {len(meta["class_names"])} classes, but the '
                          f'graph scores {conf[-1] - 1}')


def check_onnx_graph(meta: dict, model, path: str = 'model') -> None:
    """:func:`check_graph_outputs` on an ``onnx.ModelProto``."""
    shapes = {}
    for o in model.graph.output:
        dims = o.type.tensor_type.shape.dim
        shapes[o.name] = [d.dim_value if d.HasField('dim_value') else None for d in dims]
    check_graph_outputs(meta, shapes, path)


def parse_metadata(props: dict, path: str = 'model') -> dict:
    """``{key: value}`` metadata (from onnx or onnxruntime) -> our dict, validated; one-line error
    if absent or malformed."""
    if METADATA_KEY not in props:
        raise YolactError(f'{path} was not exported by yolact-export (no {METADATA_KEY!r} metadata)')
    try:
        meta = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise YolactError(f'{path}: corrupt {METADATA_KEY!r} metadata ({exc.msg})') from None
    except RecursionError:
        raise YolactError(f'{path}: corrupt {METADATA_KEY!r} metadata (nested too deeply)') from None
    return validate_metadata(meta, path)


def read_metadata(path: str) -> dict:
    import onnx
    model = onnx.load(path, load_external_data=False)
    return parse_metadata({p.key: p.value for p in model.metadata_props}, path)
