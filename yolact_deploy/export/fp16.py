"""Mixed FP16/FP32 graphs (for TensorRT strongly typed builds and ONNX Runtime on GPU).

Converter: onnxconverter-common's ``convert_float_to_float16`` (maintained, pure Python), with a node
block list. What runs in FP16 is decided by where a node comes from in the PyTorch model (the torch
exporter records each node's module path in ``pkg.torch.onnx.name_scopes``): only the network body,

    backbone, fpn, proto_net, prediction_layers (box/class/coefficient convs), maskiou_net.

Everything else stays FP32, with Casts inserted at the boundaries:

- in-graph preprocessing (uint8 -> float resize and normalisation: FP16 would quantise pixel values
  to 1/8 at 255 before the first conv);
- the class softmax (score thresholds at 0.05 and NMS ranking compare these values);
- priors, box decoding (exp of regressions, coordinates: FP16 has 11 significant bits), Fast NMS
  (IoU, thresholds, TopK ranking), gathers and all index arithmetic;
- mask assembly (prototype x coefficient MatMul, sigmoid, crop against box coordinates);
- the converter's own default block list (Resize, TopK, Range, CumSum, Min, Max, ...): Resize is
  kept FP32 because its ``scales`` input must stay float32, which the converter does not handle.

Inputs and outputs keep their types (``keep_io_types``): ``images`` uint8 in, float32 outputs.
"""
from __future__ import annotations

import ast

from ..errors import YolactError

FP16_SCOPES = ('model.backbone', 'model.fpn', 'model.proto_net', 'model.prediction_layers',
               'model.maskiou_net')


def _scopes(node) -> list:
    for prop in node.metadata_props:
        if prop.key == 'pkg.torch.onnx.name_scopes':
            try:
                return list(ast.literal_eval(prop.value))
            except (ValueError, SyntaxError):
                return []
    return []


def fp16_eligible(node) -> bool:
    return any(scope.startswith(FP16_SCOPES) for scope in _scopes(node))


def block_list(model) -> list:
    """Names of the nodes that must stay FP32 (everything outside the network body)."""
    return [n.name for n in model.graph.node if not fp16_eligible(n)]


def convert_to_mixed_fp16(model, extra_block_ops=()):
    """FP32 ModelProto straight from the torch exporter (node metadata intact) -> mixed FP16."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise YolactError('--fp16 needs onnxconverter-common (pip install onnxconverter-common)') \
            from None
    if not any(fp16_eligible(n) for n in model.graph.node):
        raise YolactError('--fp16: the exported graph carries no module scopes; cannot tell the '
                          'network body from post-processing')
    blocked = block_list(model)
    ops = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(extra_block_ops))
    return float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=ops,
                                            node_block_list=blocked, disable_shape_infer=False)


def precision_summary(model) -> dict:
    """Counts of float ops computing in FP16 vs FP32 (for reports and tests)."""
    import onnx
    from onnx import TensorProto
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    out = {'fp16': {}, 'fp32': {}}
    for node in inferred.graph.node:
        if node.op_type == 'Cast' or not node.output:
            continue
        t = types.get(node.output[0])
        key = 'fp16' if t == TensorProto.FLOAT16 else 'fp32' if t == TensorProto.FLOAT else None
        if key:
            out[key][node.op_type] = out[key].get(node.op_type, 0) + 1
    return out
