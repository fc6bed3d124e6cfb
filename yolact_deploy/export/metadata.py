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


def parse_metadata(props: dict, path: str = 'model') -> dict:
    """``{key: value}`` metadata (from onnx or onnxruntime) -> our dict; one-line error if absent."""
    if METADATA_KEY not in props:
        raise YolactError(f'{path} was not exported by yolact-export (no {METADATA_KEY!r} metadata)')
    try:
        meta = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise YolactError(f'{path}: corrupt {METADATA_KEY!r} metadata ({exc.msg})') from None
    if meta.get('schema', 0) > SCHEMA_VERSION:
        raise YolactError(f'{path} uses metadata schema {meta.get("schema")}; this yolact-deploy '
                          f'reads up to {SCHEMA_VERSION}: upgrade yolact-deploy')
    return meta


def read_metadata(path: str) -> dict:
    import onnx
    model = onnx.load(path, load_external_data=False)
    return parse_metadata({p.key: p.value for p in model.metadata_props}, path)
