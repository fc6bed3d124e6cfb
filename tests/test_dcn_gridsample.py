"""--dcn gridsample: the plugin-free DCN formulation (GridSample + mask + 1x1 Conv) against ops.dcn,
the exported graph's ops (standard ONNX only, TensorRT parser rules for GridSample), option errors."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from onnx_models import checkpoint, exported
from yolact_deploy.checkpoint import load_model
from yolact_deploy.cli import export as export_cli
from yolact_deploy.export import (ExportError, ExportOptions, check_options, export_onnx,
                                  read_metadata)
from yolact_deploy.export.dcn_gridsample import modulated_deform_conv2d_gridsample
from yolact_deploy.ops import dcn

# (batch, channels, H, W, Cout, stride, padding, dilation, deformable groups, conv groups)
CASES = [(2, 8, 9, 11, 6, 1, 1, 1, 1, 1), (1, 8, 7, 5, 4, 2, 1, 1, 2, 1),
         (2, 8, 10, 10, 6, 1, 2, 2, 1, 2), (1, 4, 1, 1, 3, 1, 1, 1, 1, 1)]


def _case(b, c, h, w, cout, s, p, d, dg, g, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ho, wo = (h + 2 * p - (2 * d + 1)) // s + 1, (w + 2 * p - (2 * d + 1)) // s + 1
    x = torch.randn(b, c, h, w, generator=gen)
    offset = torch.randn(b, dg * 18, ho, wo, generator=gen) * 3   # many samples fall outside
    # Positions exactly on and around the "one pixel outside" boundary and on integer positions.
    edges = torch.tensor([-1.0, -1.5, -0.5, float(h), h - 1.0, h + 0.5, 0.0, 2.0])
    pick = torch.randint(0, len(edges), offset[:, ::3].shape, generator=gen)
    offset[:, ::3] = edges[pick]
    mask = torch.rand(b, dg * 9, ho, wo, generator=gen)
    weight = torch.randn(cout, c // g, 3, 3, generator=gen)
    bias = torch.randn(cout, generator=gen)
    return x, offset, mask, weight, bias


@pytest.mark.parametrize('case', CASES)
def test_gridsample_formulation_matches_reference(case):
    b, c, h, w, cout, s, p, d, dg, g = case
    x, offset, mask, weight, bias = _case(*case)
    ref = dcn.modulated_deform_conv2d_reference(x, offset, mask, weight, bias, s, p, d, groups=g)
    out = modulated_deform_conv2d_gridsample(x, offset, mask, weight, bias, s, p, d, groups=g)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=2e-5, rtol=1e-5)


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def test_gridsample_graph_is_plugin_free_and_follows_tensorrt_rules():
    """Standard ops only (no DeformConv, no custom domain). GridSample as TensorRT's parser takes it
    (onnx-tensorrt docs/operators.md, 10.x and main: FP32/FP16, 4-D input): every GridSample here is
    4-D, FP32, bilinear, zero padding, align_corners 0, in the default domain at opset 19."""
    path, _ = exported('yolact_plus_resnet50', dcn='gridsample', with_raw=True)
    model = onnx.load(path)
    assert {o.domain for o in model.opset_import} <= {'', 'ai.onnx'}
    assert {o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')} == {19}
    kinds = {n.op_type for n in model.graph.node}
    assert 'DeformConv' not in kinds and all(n.domain in ('', 'ai.onnx') for n in model.graph.node)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    info = {v.name: v.type.tensor_type for v in list(inferred.graph.value_info)
            + list(inferred.graph.input)}
    samplers = [n for n in model.graph.node if n.op_type == 'GridSample']
    cfg = load_model(checkpoint('yolact_plus_resnet50')).config
    assert len(samplers) == sum(cfg.backbone.dcn_layers)          # one per deformable conv
    for node in samplers:
        assert _attrs(node) == {'mode': b'bilinear', 'padding_mode': b'zeros', 'align_corners': 0}
        for name in node.input:
            assert info[name].elem_type == TensorProto.FLOAT
            assert len(info[name].shape.dim) == 4
    meta = read_metadata(path)
    assert meta['dcn'] == 'gridsample' and meta['flavour'] == 'portable'
    conformance = _trt_conformance()
    if conformance is not None:
        assert conformance(path) == [], 'TensorRT conformance check'


def _trt_conformance():
    """The TensorRT parser conformance check (issue 11), where this checkout has it."""
    try:
        from yolact_deploy.deploy import trt_conformance
    except ImportError:
        return None
    for name in ('check_file', 'check_onnx', 'check', 'violations'):
        if hasattr(trt_conformance, name):
            return getattr(trt_conformance, name)
    return None


def test_default_dcn_is_deformconv_and_metadata_says_so():
    path, _ = exported('yolact_plus_resnet50')
    assert read_metadata(path)['dcn'] == 'deformconv'
    assert 'DeformConv' in {n.op_type for n in onnx.load(path).graph.node}
    path, _ = exported()   # no DCN in the preset
    assert read_metadata(path)['dcn'] is None


def test_dcn_option_errors(capsys, tmp_path):
    plus = load_model(checkpoint('yolact_plus_resnet50'))
    with pytest.raises(ExportError, match='--dcn plugin.*--plugins'):
        export_onnx(plus, '/tmp/never.onnx', ExportOptions(dcn='plugin'))
    with pytest.raises(ExportError, match='not deformconv'):
        export_onnx(plus, '/tmp/never.onnx', ExportOptions(plugins=True, dcn='deformconv'))
    with pytest.raises(ExportError, match="unknown --dcn 'im2col'"):
        export_onnx(plus, '/tmp/never.onnx', ExportOptions(dcn='im2col'))
    assert not os.path.exists('/tmp/never.onnx')
    check_options(plus.config, ExportOptions(opset=17, dcn='gridsample'))   # GridSample: opset 16
    out = tmp_path / 'm.onnx'
    code = export_cli.main(['--weights', checkpoint('yolact_plus_resnet50'), '--dcn', 'plugin',
                            '-o', str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith('error:') and '--plugins' in err[-1]
    assert not out.exists()
    assert export_cli.main(['--dcn', 'im2col']) == 2   # argparse: not one of the choices
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error:') and 'im2col' in err[0]
