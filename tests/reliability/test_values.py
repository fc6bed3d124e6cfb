"""Values are validated at the boundary: argparse types shared by every tool (cli/common.py) give one
line and exit code 2; the Python API raises the project's own errors; a truncated JPEG is refused
the same way by yolact-infer, training's image loader and the service."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from yolact_deploy.errors import InputError, YolactError
from yolact_deploy.runtime.predictor import Predictor

TRAIN = ['--images', 'x', '--annotations', 'y.json']

CASES = [
    ('infer', ['--score-threshold', 'nan'], '--score-threshold'),
    ('infer', ['--score-threshold', '5'], '--score-threshold'),
    ('infer', ['--top-k', '0'], '--top-k'),
    ('infer', ['--max-frames', '-1'], '--max-frames'),
    ('train', TRAIN + ['--max-iter', '-1'], '--max-iter'),
    ('train', TRAIN + ['--max-iter', '0'], '--max-iter'),
    ('train', TRAIN + ['--lr', '-1'], '--lr'),
    ('train', TRAIN + ['--lr', 'inf'], '--lr'),
    ('train', TRAIN + ['--save-every', '-1'], '--save-every'),
    ('train', TRAIN + ['--workers', '-1'], '--workers'),
    ('train', TRAIN + ['--threads', '-3'], '--threads'),
    ('train', TRAIN + ['--batch-size', '100000'], '--batch-size'),
    ('train', TRAIN + ['--clip-grad', '-1'], '--clip-grad'),
    ('eval', ['--weights', 'w.pth', '--annotations', 'a.json', '--limit', '-1'], '--limit'),
    ('eval', ['--weights', 'w.pth', '--annotations', 'a.json', '--batch-size', '0'], '--batch-size'),
    ('validate', ['m.onnx', '--limit', '-1'], '--limit'),
    ('validate', ['m.onnx', '--score-threshold', 'nan'], '--score-threshold'),
    ('bench', ['--batch', '100000'], '--batch'),
    ('bench', ['--iters', '0'], '--iters'),
    ('bench', ['--threads', '-3'], '--threads'),
    ('export', ['--raw', '--with-raw'], '--with-raw'),
    ('export', ['--max-batch', '100000'], '--max-batch'),
    ('serve', ['--threads', '-3'], '--threads'),
    ('serve', ['--score-threshold', 'nan'], '--score-threshold'),
    ('serve', ['--max-queue', '0'], '--max-queue'),
    ('pipeline', ['--iters', '1'], '--iters'),
]


@pytest.mark.parametrize('tool,argv,flag', CASES, ids=[f'{t} {" ".join(a[-2:])}' for t, a, _ in CASES])
def test_bad_values_are_one_line_exit_2(tool, argv, flag, capsys):
    module = importlib.import_module(f'yolact_deploy.cli.{tool}')
    assert module.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and flag in err[0], err


class Unreachable(Predictor):
    class_names = ('thing',)

    def run(self, images):
        raise AssertionError('bad input reached the model')


@pytest.mark.parametrize('call', [
    lambda p: p.predict(None),
    lambda p: p.predict('dog.jpg'),
    lambda p: p.predict(np.zeros((0, 0, 3), np.uint8)),
    lambda p: p.predict(np.zeros((4, 0, 3), np.uint8)),
    lambda p: p.predict(np.zeros((8, 8, 3), np.uint8), score_threshold=float('nan')),
    lambda p: p.predict(np.zeros((8, 8, 3), np.uint8), score_threshold=2),
    lambda p: p.predict(np.zeros((8, 8, 3), np.uint8), top_k=-1),
    lambda p: p.predict(np.zeros((8, 8, 3), np.uint8), top_k=2.5),
    lambda p: p.predict_batch(np.zeros((2, 8, 8, 3), np.uint8)),
    lambda p: p.predict_batch([]),
], ids=['None', 'str', '0x0', '4x0', 'nan threshold', 'threshold 2', 'top_k -1', 'top_k float',
        'batch array', 'empty batch'])
def test_python_api_raises_our_errors(call):
    with pytest.raises(InputError):
        call(Unreachable())


def truncated_sample(tmp_path, samples):
    data = open(samples[0], 'rb').read()
    path = tmp_path / 'cut.jpg'
    path.write_bytes(data[:len(data) * 2 // 3])
    return str(path)


def test_truncated_jpeg_is_refused_everywhere(tmp_path, samples, capsys):
    from yolact_deploy.cli import infer
    from yolact_deploy.serve.errors import RequestError
    from yolact_deploy.serve.inputs import parse_detect_request
    from yolact_deploy.transforms import load_image
    cut = truncated_sample(tmp_path, samples)
    with pytest.raises(InputError, match='truncated JPEG'):
        load_image(cut)  # yolact-infer, yolact-eval and training (data/coco.py) read through it
    assert infer.main(['--output', str(tmp_path / 'out'), cut]) == 2
    assert 'truncated JPEG' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
    with pytest.raises(RequestError) as info:
        parse_detect_request(open(cut, 'rb').read(), 'image/jpeg', '', max_images=1,
                             max_pixels=10 ** 8)
    assert info.value.status == 400
    load_image(samples[0])  # complete files still load


def test_argument_errors_are_yolact_errors():
    from yolact_deploy.cli.common import ArgumentParser, probability
    p = ArgumentParser(prog='x')
    p.add_argument('--t', type=probability)
    with pytest.raises(YolactError, match='--t'):
        p.parse_args(['--t', '-0.1'])
    assert p.parse_args(['--t', '1']).t == 1.0
