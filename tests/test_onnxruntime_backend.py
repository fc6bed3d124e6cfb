"""The ONNX Runtime backend behind the Predictor API, and yolact-infer with .onnx models."""
from __future__ import annotations

import numpy as np
import pytest

from onnx_models import exported
from yolact_deploy.cli import infer
from yolact_deploy.errors import InputError, YolactError
from yolact_deploy.runtime import load_predictor
from yolact_deploy.runtime.onnxruntime_backend import OnnxRuntimePredictor
from yolact_deploy.transforms import load_image


def _assert_results_equal(a, b):
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    assert np.abs(a.boxes.astype(int) - b.boxes).max() <= 1   # int pixels of boxes within 1e-4
    inter = np.logical_and(a.masks, b.masks).sum()
    assert inter / np.logical_or(a.masks, b.masks).sum() > 0.999


def test_predictor_from_extension_matches_torch(samples):
    path, ckpt = exported(with_raw=True)
    ort_pred = load_predictor(path)
    assert isinstance(ort_pred, OnnxRuntimePredictor) and ort_pred.backend == 'onnxruntime'
    torch_pred = load_predictor(ckpt)
    assert ort_pred.class_names == torch_pred.class_names
    assert ort_pred.category_ids == torch_pred.category_ids and ort_pred.input_size == 256
    image = load_image(samples[1])
    _assert_results_equal(torch_pred.predict(image, 0.1), ort_pred.predict(image, 0.1))


def test_batch_with_mixed_image_sizes(samples):
    path, _ = exported(with_raw=True)
    pred = load_predictor(path)
    images = [load_image(p) for p in samples[:3]]
    images.insert(1, images[0].copy())                  # two equal-size images share one call
    batch = pred.predict_batch(images, 0.1)
    assert batch.detections['num_detections'].shape == (4,)
    assert batch.detections['classes'].dtype == np.int64
    for image, result in zip(images, batch.results):
        single = pred.predict(image, 0.1)
        np.testing.assert_array_equal(single.classes, result.classes)
        np.testing.assert_array_equal(single.boxes, result.boxes)
        assert result.masks.shape[1:] == image.shape[:2]


def test_raw_graph_detects_with_reference_ops(samples):
    path, ckpt = exported(raw=True)
    pred = load_predictor(path)
    image = load_image(samples[4])
    out = pred.predict_batch([image])
    assert set(out.raw) == {'loc', 'conf', 'mask', 'priors', 'proto'}
    ref = load_predictor(ckpt).predict_batch([image])
    for key in out.raw:
        np.testing.assert_allclose(out.raw[key], ref.raw[key], atol=1e-4, err_msg=key)
    np.testing.assert_array_equal(out.detections['indices'], ref.detections['indices'])
    _assert_results_equal(ref.results[0], out.results[0])


@pytest.mark.parametrize('preset', ['yolact_resnet50', 'yolact_plus_resnet50'])
@pytest.mark.parametrize('cross_class', [False, True])
def test_numpy_detect_matches_the_reference_ops(preset, cross_class, samples):
    """deploy.detect (numpy, raw graphs without PyTorch) == Yolact.detect on the same raw outputs."""
    import types

    import torch

    from yolact_deploy.deploy import detect as numpy_detect
    from yolact_deploy.model.yolact import Yolact
    from yolact_deploy.testing import make_test_model
    from yolact_deploy.transforms import preprocess
    model = make_test_model(preset, 256).eval()
    cfg = model.config.replace(use_maskiou=False)     # a raw graph has no re-scoring net
    with torch.no_grad():
        raw = model(preprocess([load_image(p) for p in samples[:3]], model.config))
        ref = Yolact.detect(types.SimpleNamespace(config=cfg), raw, cross_class=cross_class,
                            max_detections=100)
    got = numpy_detect.detect({k: v.numpy() for k, v in raw.items()},
                              conf_thresh=cfg.nms_conf_thresh, nms_thresh=cfg.nms_thresh,
                              top_k=cfg.nms_top_k, max_detections=100, cross_class=cross_class)
    assert ref['num_detections'].sum() > 100
    for key in ('num_detections', 'classes', 'indices'):
        np.testing.assert_array_equal(got[key], ref[key].numpy(), err_msg=key)
    for key in ('boxes', 'scores', 'mask_scores', 'masks'):
        np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-6, err_msg=key)
        assert got[key].dtype == np.float32


@pytest.mark.parametrize('kind', ['end_to_end', 'raw'])
def test_infer_dump_raw_has_the_torch_keys(kind, samples, tmp_path):
    path, ckpt = exported(with_raw=True) if kind == 'end_to_end' else exported(raw=True)
    keys = {}
    for name, weights in (('torch', ckpt), ('onnx', path)):
        dump = tmp_path / f'{name}.npz'
        assert infer.main([samples[0], '--weights', weights, '--no-draw', '--dump-raw',
                           str(dump)]) == 0
        keys[name] = dict(np.load(dump))
    assert set(keys['onnx']) == set(keys['torch'])
    for key in ('final_classes', 'det_indices', 'det_num_detections'):
        np.testing.assert_array_equal(keys['onnx'][key], keys['torch'][key])
        assert keys['onnx'][key].dtype == keys['torch'][key].dtype


def test_end_to_end_graph_without_raw_dumps_detections_only(samples, tmp_path):
    path, _ = exported('yolact_plus_resnet50')   # a default export: no raw outputs
    dump = tmp_path / 'e2e.npz'
    assert infer.main([samples[0], '--weights', path, '--no-draw', '--dump-raw', str(dump)]) == 0
    keys = set(np.load(dump))
    assert 'det_masks' in keys and 'final_masks' in keys
    assert not any(k.startswith('raw_') for k in keys)


def test_backend_errors(tmp_path, capsys):
    bad = tmp_path / 'bad.onnx'
    bad.write_bytes(b'not an onnx file')
    with pytest.raises(YolactError, match='cannot read ONNX'):
        load_predictor(str(bad))
    with pytest.raises(InputError, match='not found'):
        load_predictor(str(tmp_path / 'missing.onnx'))
    path, _ = exported(raw=True)
    with pytest.raises(InputError, match='no CUDA provider'):
        load_predictor(path, device='cuda:0')
    path, _ = exported('yolact_plus_resnet50')
    with pytest.raises(InputError, match='class-wise Fast NMS'):
        load_predictor(path, cross_class=True)
    assert infer.main([str(bad), '--weights', str(bad), '--no-draw']) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith('error:')


def test_plugin_graph_without_plugin_library_is_one_clear_error(monkeypatch, tmp_path):
    import onnx

    from yolact_deploy import plugins
    from yolact_deploy.export.metadata import attach_metadata, read_metadata
    path, _ = exported(raw=True)
    model = onnx.load(path)
    meta = read_metadata(path)
    meta['flavour'] = 'plugins'
    attach_metadata(model, meta)
    fake = tmp_path / 'plugins.onnx'
    onnx.save(model, str(fake))

    def missing(*args, **kwargs):
        raise plugins.PluginLibraryError('libyolact_plugins_cpu.so not found (build the plugins)')
    monkeypatch.setattr(plugins, 'ort_session_options_with_plugins', missing)
    with pytest.raises(YolactError, match='plugin nodes.*cannot run them here.*not found'):
        load_predictor(str(fake))
    image = str(tmp_path / 'x.jpg')
    import cv2
    cv2.imwrite(image, np.zeros((32, 32, 3), np.uint8))
    assert infer.main([image, '--weights', str(fake), '--no-draw']) == 2
