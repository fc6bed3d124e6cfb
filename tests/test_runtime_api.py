"""The Python Predictor API on the torch backend."""
import numpy as np
import pytest

from yolact_deploy.errors import InputError
from yolact_deploy.runtime import backend_for_path, load_predictor
from yolact_deploy.transforms import load_image


@pytest.fixture(scope='module')
def predictor(small_checkpoint):
    return load_predictor(small_checkpoint)


def test_single_image_and_batch_agree(predictor, samples):
    a, b = load_image(samples[0]), load_image(samples[1])
    single = predictor.predict(a, score_threshold=0.2)
    batch = predictor.predict([a, b], score_threshold=0.2)
    assert len(batch) == 2 and len(single) > 0
    np.testing.assert_array_equal(single.boxes, batch[0].boxes)
    np.testing.assert_array_equal(single.classes, batch[0].classes)
    np.testing.assert_allclose(single.scores, batch[0].scores, atol=1e-5)
    assert (single.masks != batch[0].masks).mean() < 1e-4
    assert batch[1].masks.shape[1:] == b.shape[:2]


def test_outputs_are_sorted_and_thresholded(predictor, samples):
    out = predictor.predict_batch([load_image(samples[2])], score_threshold=0.3, top_k=5)
    r = out.results[0]
    assert len(r) <= 5 and (r.scores > 0.3).all()
    assert (np.diff(r.scores) <= 0).all()
    assert set(out.raw) >= {'loc', 'conf', 'mask', 'priors', 'proto'}
    assert out.detections['masks'].shape[1] == predictor.config.max_num_detections


@pytest.mark.parametrize('bad', [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 'not an array'])
def test_bad_images_raise_input_error(predictor, bad):
    with pytest.raises(InputError):
        predictor.predict([bad])


def test_backend_from_extension():
    assert backend_for_path('a/b.pth') == 'torch'
    assert backend_for_path('m.onnx') == 'onnxruntime'
    assert backend_for_path('e.plan') == 'tensorrt'
    with pytest.raises(InputError, match='extension'):
        backend_for_path('model.bin')


def test_checkpoint_without_batchnorm_counters_loads(tmp_path):
    """Old official files may lack BatchNorm's num_batches_tracked; they still load strictly."""
    import torch
    from yolact_deploy import config
    from yolact_deploy.checkpoint import load_model
    from yolact_deploy.model import Yolact
    sd = {k: v for k, v in Yolact(config.yolact_resnet50).state_dict().items()
          if not k.endswith('num_batches_tracked')}
    path = tmp_path / 'yolact_resnet50_54_800000.pth'
    torch.save(sd, path)
    assert load_model(str(path)).config.name == 'yolact_resnet50'
