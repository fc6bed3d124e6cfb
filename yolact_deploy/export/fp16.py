"""Mixed FP16/FP32 graphs (for TensorRT strongly typed builds and ONNX Runtime on GPU).

The precision is set on the PyTorch model before export, and the torch exporter writes a typed graph
with Casts exactly at the module boundaries: the network body runs in FP16,

    backbone, fpn, proto_net, prediction_layers (box/class/coefficient convs, tanh), maskiou_net,

and everything else stays FP32:

- in-graph preprocessing (uint8 -> float resize and normalisation; FP16 would quantise pixel values
  to 1/8 near 255 before the first conv);
- the class softmax (the 0.05 candidate threshold and NMS ranking compare these values);
- priors, box decoding (exp of regressions, coordinates: FP16 has 11 significant bits), Fast NMS
  (IoU, thresholds, TopK ranking), gathers and all index arithmetic;
- mask assembly (prototype x coefficient MatMul, sigmoid, crop against box coordinates).

Casts come from forward pre-hooks (input -> FP16) and forward hooks (outputs -> FP32) on those
modules, so ``Yolact.forward`` and ``Yolact.detect`` stay the one semantic source.

Why not a graph converter: onnxconverter-common 1.16's ``convert_float_to_float16`` with a node block
list (tried first) produced graphs that fail ONNX type inference (a blocked Gather fed an FP16 tensor
into an FP32 Mul) and clamps FP32 constants such as the ``-inf`` NMS sentinel to -10000. ModelOpt
AutoCast is NVIDIA's recommended converter but pulls in a large GPU-oriented stack; a typed export
needs neither and puts every Cast where the model code says.
"""
from __future__ import annotations

import copy

import torch

FP16_MODULES = ('backbone', 'fpn', 'proto_net', 'prediction_layers', 'maskiou_net')
# Where FP32 enters the FP16 body and where FP16 leaves it (backbone -> fpn -> heads stay FP16).
_ENTRIES = ('backbone', 'maskiou_net')
_EXITS = ('proto_net', 'prediction_layers', 'maskiou_net')


def _cast(x, dtype):
    if torch.is_tensor(x) and x.is_floating_point():
        return x.to(dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(v, dtype) for v in x)
    return x


def _to_half(module, args):
    return _cast(args, torch.float16)


def _to_float(module, args, output):
    return _cast(output, torch.float32)


def mixed_precision_model(model):
    """A copy of ``model`` whose network body computes in FP16 with FP32 inputs and outputs."""
    mixed = copy.deepcopy(model).float().eval()
    for name in FP16_MODULES:
        module = getattr(mixed, name, None)
        if module is None:
            continue
        module.half()
        modules = list(module) if isinstance(module, torch.nn.ModuleList) else [module]
        for m in modules:
            if name in _ENTRIES:
                m.register_forward_pre_hook(_to_half)
            if name in _EXITS:
                m.register_forward_hook(_to_float)
    return mixed


def precision_summary(model) -> dict:
    """Counts of ops (by type) computing in FP16 and in FP32 in an ONNX ModelProto."""
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
