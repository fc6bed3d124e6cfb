"""yolact-infer end to end on real bundled images, and its one-line errors."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from yolact_deploy.cli.infer import main
from yolact_deploy.runtime import load_predictor


def run_cli(args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'yolact_deploy.cli.infer', *args],
                          capture_output=True, text=True, cwd=cwd)


def test_infer_writes_drawn_image_json_and_raw(small_checkpoint, samples, tmp_path):
    image = samples[0]
    rc = main([image, '--weights', small_checkpoint, '-o', str(tmp_path / 'out'),
               '--save-json', str(tmp_path / 'r.json'), '--dump-raw', str(tmp_path / 'raw.npz'),
               '--score-threshold', '0.3'])
    assert rc == 0
    drawn = cv2.imread(str(tmp_path / 'out' / os.path.basename(image)))
    original = cv2.imread(image)
    assert drawn.shape == original.shape and not np.array_equal(drawn, original)
    results = json.load(open(tmp_path / 'r.json'))
    assert results and all(r['image_id'] == int(os.path.basename(image)[:-4]) for r in results)
    raw = np.load(tmp_path / 'raw.npz')
    for key in ('raw_loc', 'raw_conf', 'raw_mask', 'raw_priors', 'raw_proto', 'det_boxes',
                'det_masks', 'final_boxes', 'final_masks'):
        assert key in raw
    assert raw['raw_loc'].shape[1] == raw['raw_priors'].shape[0]
    # The dumped final detections are what the Python API returns.
    dets = load_predictor(small_checkpoint).predict(cv2.imread(image), score_threshold=0.3, top_k=15)
    np.testing.assert_array_equal(dets.boxes, raw['final_boxes'])
    np.testing.assert_array_equal(dets.masks, raw['final_masks'])
    assert (raw['final_scores'] > 0.3).all()


def test_infer_folder_batch(small_checkpoint, samples, tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for s in samples[:2]:
        os.symlink(s, folder / os.path.basename(s))
    assert main([str(folder), '--weights', small_checkpoint, '-o', str(tmp_path / 'o')]) == 0
    assert sorted(os.listdir(tmp_path / 'o')) == sorted(os.path.basename(s) for s in samples[:2])


@pytest.mark.parametrize('make_bad, message', [
    (lambda d: str(d / 'missing.jpg'), 'input not found'),
    (lambda d: (d / 'text.jpg').write_text('hello') and str(d / 'text.jpg'), 'cannot decode image'),
])
def test_bad_image_one_line_exit_2_no_output(make_bad, message, small_checkpoint, tmp_path):
    bad = make_bad(tmp_path)
    out = tmp_path / 'out'
    proc = run_cli([bad, '--weights', small_checkpoint, '-o', str(out), '--save-json',
                    str(tmp_path / 'r.json')])
    assert proc.returncode == 2
    assert message in proc.stderr and 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'r.json').exists() and not (out.exists() and os.listdir(out))


def _truncated(src, d):
    data = open(src, 'rb').read()
    (d / 'trunc.pth').write_bytes(data[: len(data) // 3])
    return str(d / 'trunc.pth')


@pytest.mark.parametrize('weights, extra, message', [
    (lambda ck, d: _truncated(ck, d), [], 'corrupt, truncated'),
    (lambda ck, d: ck, ['--config', 'no_such_preset'], "unknown preset 'no_such_preset'"),
    (lambda ck, d: ck, ['--config', 'yolact_base'], "does not match preset 'yolact_base'"),
    (lambda ck, d: str(d / 'none.pth'), [], 'model file not found'),
])
def test_bad_checkpoint_one_line_exit_2(weights, extra, message, small_checkpoint, samples, tmp_path):
    proc = run_cli([samples[0], '--weights', weights(small_checkpoint, tmp_path), '-o',
                    str(tmp_path / 'out'), *extra])
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def test_official_checkpoint_of_another_preset_is_refused(tmp_path, samples):
    """An official flat state dict named for one preset but holding another preset's weights."""
    import torch
    from yolact_deploy import config
    from yolact_deploy.model import Yolact
    sd = Yolact(config.yolact_resnet50).state_dict()
    path = tmp_path / 'yolact_darknet53_54_800000.pth'
    torch.save(sd, path)
    proc = run_cli([samples[0], '--weights', str(path), '--no-draw'])
    assert proc.returncode == 2
    assert "does not match preset 'yolact_darknet53'" in proc.stderr
