"""Cross-runtime validation: ONNX Runtime and OpenVINO give the same detections as PyTorch, for one
YOLACT++ preset (``--dcn gridsample``) and one YOLACT preset; the OpenVINO backend's refusals and
CLI use."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

pytest.importorskip('openvino', reason="openvino is not installed (pip install 'yolact-deploy[openvino]')")

from onnx_models import exported  # noqa: E402
from yolact_deploy import validate as V  # noqa: E402
from yolact_deploy.cli import bench as bench_cli  # noqa: E402
from yolact_deploy.cli import validate as validate_cli  # noqa: E402
from yolact_deploy.errors import InputError, YolactError  # noqa: E402
from yolact_deploy.runtime import load_predictor  # noqa: E402
from yolact_deploy.runtime.openvino_backend import OpenVINOPredictor  # noqa: E402
from yolact_deploy.transforms import load_image  # noqa: E402

ORDER_TIE = 1e-5   # detections may swap places only when their reference scores agree this closely


class _Cached:
    """PyTorch runs once per image for both backends."""

    def __init__(self, predictor):
        self.predictor, self.cache = predictor, {}
        self.category_ids = predictor.category_ids

    def predict_batch(self, images, score_threshold=None):
        key = hash(images[0].tobytes())
        if key not in self.cache:
            self.cache[key] = self.predictor.predict_batch(images, score_threshold)
        return self.cache[key]


def assert_order_swaps_only_between_ties(ref: dict, test: dict):
    """Same (prior, class) detections; where the order differs, the swapped detections' reference
    scores are equal within ORDER_TIE."""
    for b in range(len(ref['num_detections'])):
        n = int(ref['num_detections'][b])
        assert int(test['num_detections'][b]) == n
        keys_ref = list(zip(ref['indices'][b, :n].tolist(), ref['classes'][b, :n].tolist()))
        keys_test = list(zip(test['indices'][b, :n].tolist(), test['classes'][b, :n].tolist()))
        assert sorted(keys_ref) == sorted(keys_test)
        where = {k: i for i, k in enumerate(keys_ref)}
        for j, key in enumerate(keys_test):
            i = where[key]
            assert abs(ref['scores'][b, i] - ref['scores'][b, j]) <= ORDER_TIE, \
                f'image {b}: detection {key} moved from {i} to {j} between unequal scores'


@pytest.mark.parametrize('preset,options', [
    ('yolact_resnet50', {'with_raw': True}),
    ('yolact_plus_resnet50', {'with_raw': True, 'dcn': 'gridsample'}),
])
def test_onnxruntime_and_openvino_match_pytorch(preset, options, samples):
    path, ckpt = exported(preset, **options)
    reference = _Cached(load_predictor(ckpt))
    images = samples[1:2]
    for backend in (load_predictor(path, threads=2), load_predictor(path, 'openvino', threads=2)):
        report = V.compare_predictors(reference, backend, images, progress=False)
        assert V.check(report, V.TOLERANCES['fp32']) == [], backend.backend
        assert report['identity']['count_ref_total'] > 0 and report['final']['matched'] > 0
        assert report['final']['class_agreement'] == 1.0
        for image in images:
            ref = reference.predict_batch([load_image(image)]).detections
            assert_order_swaps_only_between_ties(ref, backend.run([load_image(image)])[0])


def test_openvino_predictor_batches_and_metadata(samples):
    path, ckpt = exported(with_raw=True)
    pred = load_predictor(path, 'openvino')
    assert isinstance(pred, OpenVINOPredictor) and pred.backend == 'openvino'
    assert pred.device == 'CPU' and pred.input_size == 256
    # FP32 means f32: the CPU plugin's default on AVX512-BF16/AMX machines is bfloat16
    import openvino as ov
    assert pred.compiled.get_property('INFERENCE_PRECISION_HINT') == ov.Type.f32
    torch_pred = load_predictor(ckpt)
    assert pred.class_names == torch_pred.class_names
    assert pred.category_ids == torch_pred.category_ids
    images = [load_image(p) for p in samples[:2]]
    images.insert(1, images[0].copy())          # dynamic batch: two equal-size images in one call
    out = pred.predict_batch(images, 0.1)
    assert out.detections['num_detections'].shape == (3,)
    assert out.detections['classes'].dtype == np.int64
    assert set(out.raw) == {'loc', 'conf', 'mask', 'priors', 'proto'}
    np.testing.assert_array_equal(out.detections['indices'][0], out.detections['indices'][1])
    for image, result in zip(images, out.results):
        single = pred.predict(image, 0.1)
        np.testing.assert_array_equal(single.classes, result.classes)
        assert result.masks.shape[1:] == image.shape[:2]


def _tiny_graph(path, op='Identity', meta=None, domain=''):
    """A one-node ONNX file with our metadata (fast: no export)."""
    x = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 4, 5, 5])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, None)
    if op == 'DeformConv':
        node = helper.make_node('DeformConv', ['images', 'w', 'o'], ['y'], pads=[1, 1, 1, 1])
        inits = [helper.make_tensor('w', TensorProto.FLOAT, [4, 4, 3, 3], [0.0] * 144),
                 helper.make_tensor('o', TensorProto.FLOAT, [1, 18, 5, 5], [0.0] * 450)]
    else:
        node = helper.make_node(op, ['images'], ['y'], domain=domain)
        inits = []
    imports = [helper.make_opsetid('', 19)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], 'g', [x], [y], inits),
                              opset_imports=imports, ir_version=9)
    if meta is not None:
        helper.set_model_props(model, {'yolact_deploy': json.dumps(meta)})
    onnx.save(model, str(path))
    return str(path)


def test_openvino_refusals_are_one_line(tmp_path):
    meta = {'schema': 1, 'graph': 'end_to_end', 'flavour': 'portable', 'class_names': ['a'],
            'category_ids': [1], 'input': {'network_size': [5, 5]}}   # valid metadata, refused graph
    cases = [
        (_tiny_graph(tmp_path / 'dcn.onnx', 'DeformConv', meta), '--dcn gridsample'),
        (_tiny_graph(tmp_path / 'raw.onnx', meta=dict(meta, graph='raw')), 'raw graph'),
        (_tiny_graph(tmp_path / 'plug.onnx', meta=dict(meta, flavour='plugins')), '--plugins'),
        (_tiny_graph(tmp_path / 'plug2.onnx', 'YolactFastNMS', meta, 'yolact_deploy'), '--plugins'),
        (_tiny_graph(tmp_path / 'nometa.onnx'), 'not exported by yolact-export'),
    ]
    for path, words in cases:
        with pytest.raises(YolactError, match=words) as info:
            load_predictor(path, 'openvino')
        assert '\n' not in str(info.value)
    with pytest.raises(InputError, match='not an OpenVINO device'):
        load_predictor(cases[0][0], 'openvino', device='cuda:0')


def test_validate_and_bench_accept_openvino(samples, tmp_path, capsys):
    path, ckpt = exported(with_raw=True)
    report = tmp_path / 'v.json'
    assert validate_cli.main([path, '--weights', ckpt, '--backend', 'openvino', '--images',
                              samples[1], '--threads', '2', '--json', str(report), '-q']) == 0
    assert json.loads(report.read_text())['backend'] == 'openvino'
    out = tmp_path / 'b.json'
    assert bench_cli.main([path, '--backend', 'onnxruntime,openvino', '--iters', '2',
                           '--warmup', '0', '--threads', '2', '--json', str(out), '-q']) == 0
    rows = json.loads(out.read_text())['models']
    assert [r['backend'] for r in rows] == ['onnxruntime', 'openvino']
    capsys.readouterr()
    assert bench_cli.main([path, '--backend', 'tensorflow']) == 2
    assert capsys.readouterr().err.strip().startswith('error:')


def test_openvino_sees_static_ranks_and_a_dynamic_batch():
    """The Conv/ReduceMax conversion failures of the DeformConv graph came from the unconverted
    DeformConv (output of unknown rank and type); the gridsample graph has a static rank everywhere
    while batch, height and width stay dynamic."""
    import openvino as ov
    path, _ = exported('yolact_plus_resnet50', with_raw=True, dcn='gridsample')
    model = ov.Core().read_model(path)
    dynamic_rank = [op.get_friendly_name() for op in model.get_ops()
                    for out in op.outputs() if out.get_partial_shape().rank.is_dynamic]
    assert dynamic_rank == []
    shape = model.inputs[0].get_partial_shape()
    assert [d.is_dynamic for d in shape] == [True, True, True, False]
    assert model.output('num_detections').get_partial_shape()[0].is_dynamic
