"""ONNX export: graph validity, metadata, parity with PyTorch on ONNX Runtime, tie order, DCN, errors."""
from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from onnx_models import checkpoint, exported
from yolact_deploy.assets import sample_images
from yolact_deploy.checkpoint import load_model
from yolact_deploy.cli import export as export_cli
from yolact_deploy.errors import YolactError
from yolact_deploy.export import (CONTRACT_OUTPUTS, RAW_OUTPUTS, ExportError, ExportOptions,
                                  ExportWrapper, export_onnx, read_metadata)
from yolact_deploy.ops import dcn
from yolact_deploy.ops.nms import fast_nms
from yolact_deploy.transforms import load_image


def _session(path):
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def _run_both(onnx_path, ckpt, image, **wrapper_options):
    wrapper = ExportWrapper(load_model(ckpt), **wrapper_options)
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(torch.from_numpy(image)[None])]
    out = _session(onnx_path).run(None, {'images': image[None]})
    return dict(zip(wrapper.output_names, ref)), dict(zip(wrapper.output_names, out))


def _assert_same_detections(ref, out, atol=1e-4):
    np.testing.assert_array_equal(ref['num_detections'], out['num_detections'])
    np.testing.assert_array_equal(ref['classes'], out['classes'])
    np.testing.assert_array_equal(ref['indices'], out['indices'])
    for key in ('boxes', 'scores', 'mask_scores', 'masks'):
        np.testing.assert_allclose(out[key], ref[key], atol=atol, rtol=0, err_msg=key)


# -- graph validity and metadata -------------------------------------------------------------------
def test_graph_is_valid_and_described():
    path, _ = exported(with_raw=True)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert {o.domain: o.version for o in model.opset_import}[''] >= 19
    inp = model.graph.input[0]
    assert inp.name == 'images' and inp.type.tensor_type.elem_type == TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == \
        ['batch', 'height', 'width', 3]
    outputs = {o.name: o for o in model.graph.output}
    assert list(outputs) == list(CONTRACT_OUTPUTS + RAW_OUTPUTS)
    assert outputs['num_detections'].type.tensor_type.elem_type == TensorProto.INT32
    assert outputs['classes'].type.tensor_type.elem_type == TensorProto.INT32
    dims = [d.dim_param or d.dim_value for d in outputs['masks'].type.tensor_type.shape.dim]
    assert dims == ['batch', 100, 64, 64]
    # standard ops only in the portable flavour; no stack traces left in node metadata
    assert {n.domain for n in model.graph.node} <= {'', 'ai.onnx'}
    assert not any(n.metadata_props for n in model.graph.node)
    meta = read_metadata(path)
    assert meta['preset'] == 'yolact_resnet50' and meta['input']['network_size'] == [256, 256]
    assert meta['max_detections'] == 100 and meta['flavour'] == 'portable'
    assert meta['precision'] == 'fp32' and meta['graph'] == 'end_to_end'
    assert len(meta['class_names']) == 80 and meta['category_ids'][-1] == 90
    assert meta['thresholds'] == {'conf_thresh': 0.05, 'nms_thresh': 0.5, 'nms_top_k': 200}
    assert meta['toolkit']['onnxslim'] and meta['toolkit']['yolact_deploy']


# -- parity on ONNX Runtime ------------------------------------------------------------------------
@pytest.mark.parametrize('index', [0, 5])
def test_resnet50_matches_pytorch(index):
    path, ckpt = exported(with_raw=True)
    image = load_image(sample_images()[index])
    ref, out = _run_both(path, ckpt, image, with_raw=True)
    assert ref['num_detections'][0, 0] > 0
    for key in RAW_OUTPUTS:
        np.testing.assert_allclose(out[key], ref[key], atol=1e-4, rtol=0, err_msg=key)
    _assert_same_detections(ref, out)


def test_yolact_plus_dcn_matches_pytorch():
    path, ckpt = exported('yolact_plus_resnet50')
    model = onnx.load(path)
    assert sum(n.op_type == 'DeformConv' for n in model.graph.node) == 13
    image = load_image(sample_images()[2])
    ref, out = _run_both(path, ckpt, image)
    assert ref['num_detections'][0, 0] > 0
    assert not np.allclose(ref['mask_scores'], ref['scores'])   # re-scoring is in the graph
    _assert_same_detections(ref, out)


def test_dynamic_batch_and_input_size():
    path, ckpt = exported(with_raw=True)
    sess = _session(path)
    a, b = (load_image(p) for p in sample_images()[:2])
    b = np.ascontiguousarray(b[:a.shape[0], :a.shape[1]]) if b.shape[0] >= a.shape[0] and \
        b.shape[1] >= a.shape[1] else np.ascontiguousarray(a[::-1])
    single = [sess.run(None, {'images': im[None]}) for im in (a, b)]
    batched = sess.run(None, {'images': np.stack([a, b])})
    for k, name in enumerate(CONTRACT_OUTPUTS):
        for i in range(2):
            np.testing.assert_allclose(batched[k][i], single[i][k][0], atol=1e-5, err_msg=name)
    small = np.ascontiguousarray(a[::3, ::2])  # another input size, resized in the graph
    ref, out = _run_both(path, ckpt, small, with_raw=True)
    _assert_same_detections(ref, out)


# -- the pieces the graph relies on ----------------------------------------------------------------
def test_onnxruntime_topk_breaks_ties_by_lower_index():
    values = np.array([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5, 0.9, 0.5]], np.float32)
    node = helper.make_node('TopK', ['x', 'k'], ['v', 'i'], axis=-1, largest=1, sorted=1)
    graph = helper.make_graph(
        [node], 'topk', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info('v', TensorProto.FLOAT, None),
         helper.make_tensor_value_info('i', TensorProto.INT64, None)],
        [numpy_helper.from_array(np.array([6], np.int64), 'k')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    _, idx = sess.run(None, {'x': values})
    stable = torch.sort(torch.from_numpy(values), descending=True, stable=True).indices[:, :6]
    np.testing.assert_array_equal(idx, stable.numpy())
    assert idx.tolist() == [[1, 3, 6, 0, 2, 5]]


class _NMS(torch.nn.Module):
    def forward(self, boxes, scores):
        d = fast_nms(boxes, scores, conf_thresh=0.05, iou_threshold=0.5, top_k=6,
                     max_detections=5)
        return d.num_detections, d.boxes, d.scores, d.classes, d.indices


def test_exported_fast_nms_keeps_eager_tie_order(tmp_path):
    # Many exactly tied scores, overlapping and disjoint boxes, more candidates than top_k.
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(1, 40, 2, generator=g) * 0.8
    boxes = torch.cat([xy, xy + 0.15], -1)
    scores = torch.tensor([0.3, 0.7, 0.3, 0.02])[torch.randint(0, 4, (1, 40, 3), generator=g)]
    path = str(tmp_path / 'nms.onnx')
    torch.onnx.export(_NMS(), (boxes, scores), path, dynamo=True, opset_version=19,
                      input_names=['boxes', 'scores'], verbose=False)
    assert 'TopK' in {n.op_type for n in onnx.load(path).graph.node}
    out = _session(path).run(None, {'boxes': boxes.numpy(), 'scores': scores.numpy()})
    ref = _NMS()(boxes, scores)
    for a, b in zip(ref, out):
        np.testing.assert_array_equal(a.numpy(), b)


def test_onnxruntime_deformconv_matches_reference_dcn():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 7, 9, generator=g)
    w = torch.randn(5, 4, 3, 3, generator=g)
    bias = torch.randn(5, generator=g)
    offset = torch.randn(2, 18, 4, 5, generator=g) * 3   # many samples fall outside the input
    mask = torch.rand(2, 9, 4, 5, generator=g)
    ref = dcn.modulated_deform_conv2d_reference(x, offset, mask, w, bias, stride=2, padding=1)
    node = helper.make_node('DeformConv', ['x', 'w', 'o', 'b', 'm'], ['y'], strides=[2, 2],
                            pads=[1, 1, 1, 1], dilations=[1, 1], group=1, offset_group=1)
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)  # noqa: E731
    graph = helper.make_graph([node], 'dcn', [vi(n) for n in 'xwobm'], [vi('y')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    (y,) = sess.run(None, {'x': x.numpy(), 'w': w.numpy(), 'o': offset.numpy(),
                           'b': bias.numpy(), 'm': mask.numpy()})
    np.testing.assert_allclose(y, ref.numpy(), atol=1e-4, rtol=1e-5)


# -- bad input: one clear error, exit code 2, no partial file --------------------------------------
def test_option_errors():
    model = load_model(checkpoint())
    with pytest.raises(ExportError, match='unsupported opset 11'):
        export_onnx(model, '/tmp/never.onnx', ExportOptions(opset=11))
    plus = load_model(checkpoint('yolact_plus_resnet50'))
    with pytest.raises(ExportError, match='deformable convolution.*opset >= 19'):
        export_onnx(plus, '/tmp/never.onnx', ExportOptions(opset=18))
    with pytest.raises(ExportError, match='max-detections'):
        export_onnx(model, '/tmp/never.onnx', ExportOptions(max_detections=0))
    assert not os.path.exists('/tmp/never.onnx')


def _cli(argv, capsys):
    code = export_cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_cli_bad_input_exit_2_and_no_file(tmp_path, capsys):
    ckpt = checkpoint('yolact_plus_resnet50')
    out = tmp_path / 'm.onnx'
    code, err = _cli(['--weights', ckpt, '--opset', '18', '-o', str(out)], capsys)
    assert code == 2 and err[-1].startswith('error:') and 'opset >= 19' in err[-1]
    code, err = _cli(['--weights', ckpt, '--opset', '99', '-o', str(out)], capsys)
    assert code == 2 and 'unsupported opset 99' in err[-1]
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    if not os.access(str(locked), os.W_OK):   # root ignores permissions
        code, err = _cli(['--weights', ckpt, '-o', str(locked / 'm.onnx')], capsys)
        assert code == 2 and 'not writable' in err[-1]
    code, err = _cli(['--weights', ckpt, '-o', '/proc/m.onnx'], capsys)
    assert code == 2 and err[-1].startswith('error:')
    code, err = _cli(['--weights', str(tmp_path / 'missing.pth'), '-o', str(out)], capsys)
    assert code == 2 and 'not found' in err[-1]
    code, err = _cli(['--weights', ckpt, '--to', 'trt', '-o', str(tmp_path / 'm.plan')], capsys)
    assert code == 2 and 'TensorRT' in err[-1]
    assert sorted(os.listdir(tmp_path)) == ['locked']


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from yolact_deploy.export import onnx_export
    model = onnx.helper.make_model(onnx.helper.make_graph([], 'g', [], []))

    def dies_midway(proto, path):
        with open(path, 'wb') as f:
            f.write(b'partial')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(onnx, 'save_model', dies_midway)
    target = tmp_path / 'model.onnx'
    with pytest.raises(ExportError, match='No space left'):
        onnx_export.save_model(model, str(target))
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    from yolact_deploy.export import onnx_export

    def broken(*args, **kwargs):
        raise ExportError('torch ONNX export failed: simulated')
    monkeypatch.setattr(onnx_export, 'build_onnx', broken)
    target = tmp_path / 'model.onnx'
    with pytest.raises(YolactError, match='simulated'):
        onnx_export.export_onnx(load_model(checkpoint()), str(target), quiet=True)
    assert list(tmp_path.iterdir()) == []


# -- FP16 and plugin flavours ----------------------------------------------------------------------
def test_fp16_graph_keeps_post_processing_fp32_and_agrees():
    from yolact_deploy import validate as V
    from yolact_deploy.export.fp16 import precision_summary
    from yolact_deploy.runtime import load_predictor
    path, ckpt = exported(fp16=True)
    model = onnx.load(path)
    summary = precision_summary(model)
    assert summary['fp16']['Conv'] >= 80 and 'Conv' not in summary['fp32']
    for op in ('Softmax', 'TopK', 'Exp', 'MatMul', 'Sigmoid', 'Trilu'):   # NMS, decode, masks
        assert op in summary['fp32'] and op not in summary['fp16'], op
    types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert types['boxes'] == TensorProto.FLOAT and types['masks'] == TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert read_metadata(path)['precision'] == 'fp16'
    report = V.compare_predictors(load_predictor(ckpt), load_predictor(path), sample_images()[:2],
                                  progress=False)
    assert V.check(report, V.TOLERANCES['fp16']) == []
    assert report['final']['matched'] >= 0.9 * report['final']['ref']


def test_plugin_flavour_nodes_and_parity():
    from yolact_deploy import plugins
    path, ckpt = exported('yolact_plus_resnet50', plugins=True)
    model = onnx.load(path)
    custom = [n for n in model.graph.node if n.domain == plugins.DOMAIN]
    kinds = sorted({n.op_type for n in custom})
    assert kinds == [plugins.DEFORM_IM2COL, plugins.FAST_NMS]
    assert 'DeformConv' not in {n.op_type for n in model.graph.node}
    assert {o.domain: o.version for o in model.opset_import}[plugins.DOMAIN] == 1
    for node in custom:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs['plugin_version'] == b'1' and attrs['plugin_namespace'] == b''
        if node.op_type == plugins.FAST_NMS:
            assert (attrs['top_k'], attrs['max_detections'], attrs['cross_class']) == (200, 100, 0)
            assert attrs['conf_thresh'] == pytest.approx(0.05)
            assert attrs['iou_threshold'] == pytest.approx(0.5)
        else:
            assert (attrs['kernel_h'], attrs['kernel_w'], attrs['pad_h']) == (3, 3, 1)
    assert read_metadata(path)['plugins']['nodes'] == [plugins.DEFORM_IM2COL, plugins.FAST_NMS]
    try:
        session = plugins.ort_session(path)
    except YolactError as exc:   # the CPU instance is not built on this machine
        pytest.skip(f'plugin custom ops unavailable: {exc}')
    image = load_image(sample_images()[2])
    wrapper = ExportWrapper(load_model(ckpt))
    with torch.no_grad():
        ref = dict(zip(wrapper.output_names, [t.numpy() for t in wrapper(torch.from_numpy(image)[None])]))
    out = dict(zip(wrapper.output_names, session.run(None, {'images': image[None]})))
    _assert_same_detections(ref, out)


def test_written_model_has_normal_permissions(tmp_path):
    import stat

    from yolact_deploy.export.onnx_export import save_model
    target = tmp_path / 'm.onnx'
    save_model(onnx.helper.make_model(onnx.helper.make_graph([], 'g', [], [])), str(target))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
