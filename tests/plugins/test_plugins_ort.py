"""Plugin nodes in ONNX Runtime (CPU) through the custom ops that call the plugins' CPU instance.

One-node graphs against yolact_deploy.ops, and a graph exported from PyTorch by the torch ONNX exporter
with the plugin translation of deformable conv (YOLACT++-style DCN backbone, grouped and mask-less
deformable convs), against PyTorch.
"""
import importlib.util
import os

import numpy as np
import pytest
import torch

from yolact_deploy import plugins as P
from yolact_deploy.ops.dcn import deformable_im2col
from yolact_deploy.ops.nms import fast_nms

from plugin_cases import dcn_case, nms_case

if importlib.util.find_spec('onnxruntime_extensions') is None:
    if os.environ.get('CI'):
        pytest.fail('onnxruntime-extensions is not installed (CI must install it: the ONNX Runtime '
                    'custom ops of the plugins need it)', pytrace=False)
    pytest.skip('onnxruntime-extensions is not installed (pip install onnxruntime-extensions)',
                allow_module_level=True)

import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

pytestmark = pytest.mark.usefixtures('cpu_lib')
NUM_NODE_CASES = 30


def _model(nodes, inputs, outputs):
    graph = helper.make_graph(nodes, 'plugin', inputs, outputs)
    return helper.make_model(graph, ir_version=9,
                             opset_imports=[helper.make_opsetid('', 19), P.opset_import()])


def _vi(name, dtype, rank):
    return helper.make_tensor_value_info(name, dtype, [None] * rank)


def test_deform_im2col_node_matches_ops():
    for i in range(NUM_NODE_CASES):
        x, off, mask, attrs = dcn_case(i)
        node = P.deform_im2col_node('x', 'offset', 'mask', 'cols', **attrs)
        model = _model([node], [_vi(n, TensorProto.FLOAT, 4) for n in ('x', 'offset', 'mask')],
                       [_vi('cols', TensorProto.FLOAT, 3)])
        onnx.checker.check_model(model)
        got = P.ort_session(model).run(None, {'x': x, 'offset': off, 'mask': mask})[0]
        want = deformable_im2col(*map(torch.from_numpy, (x, off, mask)), **attrs).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f'case {i} {attrs}')


def test_fast_nms_node_matches_ops():
    for i in range(NUM_NODE_CASES):
        boxes, scores, attrs = nms_case(i)
        node = P.fast_nms_node('boxes', 'scores', **attrs)
        outs = [_vi('num_detections', TensorProto.INT32, 2), _vi('boxes_out', TensorProto.FLOAT, 3),
                _vi('scores_out', TensorProto.FLOAT, 2), _vi('classes', TensorProto.INT32, 2),
                _vi('indices', TensorProto.INT32, 2)]
        node.output[:] = [o.name for o in outs]
        model = _model([node], [_vi('boxes', TensorProto.FLOAT, 3), _vi('scores', TensorProto.FLOAT, 3)],
                       outs)
        got = P.ort_session(model).run(None, {'boxes': boxes, 'scores': scores})
        ref = fast_nms(torch.from_numpy(boxes), torch.from_numpy(scores), **attrs)
        where = f'case {i} {attrs}'
        assert got[0].dtype == np.int32 and got[3].dtype == np.int32 and got[4].dtype == np.int32
        np.testing.assert_array_equal(got[0][:, 0], ref.num_detections.numpy(), err_msg=where)
        np.testing.assert_array_equal(got[4], ref.indices.numpy(), err_msg=where)
        np.testing.assert_array_equal(got[3], ref.classes.numpy(), err_msg=where)
        np.testing.assert_array_equal(got[2], ref.scores.numpy(), err_msg=where)
        valid = got[4] >= 0
        np.testing.assert_array_equal(got[1][valid], ref.boxes.numpy()[valid], err_msg=where)


class _DcnNet(torch.nn.Module):
    """A YOLACT++-style DCN ResNet (the model's own DCN module and block rule; DCN in stages 2-4,
    all stride 2) followed by a grouped deformable conv and a mask-less one."""

    def __init__(self):
        super().__init__()
        from yolact_deploy.model.backbones import ResNetBackbone
        self.backbone = ResNetBackbone(layers=(1, 1, 1, 1), dcn_layers=(0, 1, 1, 1), dcn_interval=1)
        for m in self.backbone.modules():
            if hasattr(m, 'conv_offset_mask'):   # non-zero offsets and masks (zeros at init)
                torch.nn.init.normal_(m.conv_offset_mask.weight, std=0.05)
            if isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.uniform_(m.running_var, 0.5, 1.5)
        self.offset = torch.nn.Conv2d(2048, 2 * 2 * 9, 3, padding=1)
        self.weight = torch.nn.Parameter(torch.randn(64, 1024, 3, 3) * 0.01)
        self.bias = torch.nn.Parameter(torch.randn(64))

    def forward(self, x):
        from torchvision.ops import deform_conv2d
        feats = self.backbone(x)
        top = feats[-1]
        off = self.offset(top)
        mask = torch.sigmoid(off[:, :18])
        grouped = deform_conv2d(top, off, self.weight, self.bias, padding=(1, 1), mask=mask)
        maskless = deform_conv2d(top, off[:, :18], self.weight[:, :1024], None, padding=(1, 1))
        return feats[1], feats[2], grouped, maskless


@pytest.mark.filterwarnings('ignore')
def test_exported_dcn_graph_runs_in_ort_and_matches_pytorch():
    import torchvision  # noqa: F401  (registers torch.ops.torchvision.deform_conv2d)
    torch.manual_seed(0)
    net = _DcnNet().eval()
    assert sum(1 for m in net.backbone.modules() if hasattr(m, 'conv_offset_mask')) == 3
    example = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        program = torch.onnx.export(
            net, (example,), dynamo=True, opset_version=19, verbose=False,
            dynamic_shapes=({0: torch.export.Dim('batch', min=1, max=8)},),
            custom_translation_table={
                torch.ops.torchvision.deform_conv2d.default: P.deform_conv2d_translation})
    model = program.model_proto
    types = [n.op_type for n in model.graph.node]
    assert types.count(P.DEFORM_IM2COL) == 5 and 'DeformConv' not in types
    session = P.ort_session(model)
    name = session.get_inputs()[0].name
    for batch in (2, 3):
        x = torch.randn(batch, 3, 64, 48)
        with torch.no_grad():
            want = net(x)
        got = session.run(None, {name: x.numpy()})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)


def test_ort_model_for_plugins_only_moves_our_domain(tmp_path):
    node = P.deform_im2col_node('x', 'offset', 'mask', 'cols', kernel_size=3)
    relu = helper.make_node('Relu', ['cols'], ['y'])
    model = _model([node, relu], [_vi(n, TensorProto.FLOAT, 4) for n in ('x', 'offset', 'mask')],
                   [_vi('y', TensorProto.FLOAT, 3)])
    path = tmp_path / 'm.onnx'
    onnx.save(model, path)
    moved = P.ort_model_for_plugins(path)
    assert [n.domain for n in moved.graph.node] == [P.ORT_PYOP_DOMAIN, '']
    assert {o.domain for o in moved.opset_import} == {'', P.ORT_PYOP_DOMAIN}
    assert onnx.load(path).graph.node[0].domain == P.DOMAIN    # the file is untouched


def test_fp16_plugin_nodes_run_through_casts_with_the_fp16_kernels_bits():
    """FP16 graphs: the adapter widens to FP32 around the (FP32) custom ops and rounds once, which is
    exactly the plugins' FP16 semantics, so ONNX Runtime matches the CPU instance's FP16 path bit
    for bit."""
    x, off, mask, attrs = dcn_case(7, np.float16)
    node = P.deform_im2col_node('x', 'offset', 'mask', 'cols', **attrs)
    model = _model([node], [_vi(n, TensorProto.FLOAT16, 4) for n in ('x', 'offset', 'mask')],
                   [_vi('cols', TensorProto.FLOAT16, 3)])
    got = P.ort_session(model).run(None, {'x': x, 'offset': off, 'mask': mask})[0]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, P.deform_im2col_cpu(x, off, mask, **attrs))

    boxes, scores, attrs = nms_case(3, np.float16)
    node = P.fast_nms_node('boxes', 'scores', ['n', 'b', 's', 'c', 'i'], **attrs)
    outs = [_vi('n', TensorProto.INT32, 2), _vi('b', TensorProto.FLOAT16, 3),
            _vi('s', TensorProto.FLOAT16, 2), _vi('c', TensorProto.INT32, 2),
            _vi('i', TensorProto.INT32, 2)]
    model = _model([node], [_vi('boxes', TensorProto.FLOAT16, 3), _vi('scores', TensorProto.FLOAT16, 3)],
                   outs)
    got = P.ort_session(model).run(None, {'boxes': boxes, 'scores': scores})
    want = P.fast_nms_cpu(boxes, scores, **attrs)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
