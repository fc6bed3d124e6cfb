"""COCO evaluation: the metric path on known answers, and yolact-eval end to end."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from yolact_deploy.assets import SAMPLE_ANNOTATIONS, SAMPLES_DIR
from yolact_deploy.checkpoint import save_checkpoint
from yolact_deploy.cli.eval import main as eval_main
from yolact_deploy.data import decode_segmentation, read_annotations
from yolact_deploy.evaluation import evaluate, evaluate_results, format_table
from yolact_deploy.model import Yolact


def _gt_as_results(ann_file):
    from pycocotools import mask as mask_utils
    data = read_annotations(ann_file)
    size = {im['id']: (im['height'], im['width']) for im in data['images']}
    out = []
    for a in data['annotations']:
        if a.get('iscrowd'):
            continue
        h, w = size[a['image_id']]
        rle = mask_utils.encode(np.asfortranarray(decode_segmentation(a['segmentation'], h, w)))
        rle['counts'] = rle['counts'].decode('ascii')
        out.append({'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': a['bbox'],
                    'score': 1.0})
        out.append({'image_id': a['image_id'], 'category_id': a['category_id'],
                    'segmentation': rle, 'score': 1.0})
    return out


def test_ground_truth_as_detections_scores_100():
    metrics = evaluate_results(SAMPLE_ANNOTATIONS, _gt_as_results(SAMPLE_ANNOTATIONS), verbose=False)
    assert metrics['box']['AP'] == pytest.approx(100.0, abs=0.01)
    assert metrics['mask']['AP'] == pytest.approx(100.0, abs=0.01)
    table = format_table(metrics)
    assert 'box' in table and 'mask' in table and '100.00' in table


def test_no_detections_scores_zero():
    metrics = evaluate_results(SAMPLE_ANNOTATIONS, [], verbose=False)
    assert metrics['box']['AP'] == 0 and metrics['mask']['AP'] == 0


def test_shifted_boxes_lower_box_ap_only():
    results = _gt_as_results(SAMPLE_ANNOTATIONS)
    for r in results:
        if 'segmentation' not in r:
            x, y, w, h = r['bbox']
            r['bbox'] = [x + 0.6 * w, y, w, h]          # IoU 0.25 with its ground truth
    metrics = evaluate_results(SAMPLE_ANNOTATIONS, results, verbose=False)
    assert metrics['box']['AP50'] < 5 and metrics['mask']['AP'] > 99.9


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    import torch
    from test_train import tiny_config
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('eval') / 'tiny.pth')
    # Untrained scores are ~1/81: a low threshold so that detections exist.
    save_checkpoint(path, Yolact(tiny_config(size=96, nms_conf_thresh=0.001)).eval())
    return path


def test_evaluate_a_checkpoint_and_write_detections(tiny_checkpoint, tmp_path):
    out = str(tmp_path / 'dets.json')
    metrics = evaluate(tiny_checkpoint, SAMPLES_DIR, SAMPLE_ANNOTATIONS, limit=2, output_json=out,
                       progress=False, verbose=False)
    assert set(metrics) == {'box', 'mask'} and 0 <= metrics['mask']['AP'] <= 100
    dets = json.load(open(out))
    assert isinstance(dets, list) and dets, 'an untrained model still emits detections'
    ids = {im['id'] for im in sorted(read_annotations(SAMPLE_ANNOTATIONS)['images'],
                                     key=lambda im: im['id'])[:2]}
    assert {d['image_id'] for d in dets} <= ids
    assert any('segmentation' in d for d in dets) and any('bbox' in d for d in dets)


def test_eval_cli_prints_table_and_fails_cleanly(tiny_checkpoint, tmp_path, capsys):
    code = eval_main(['--weights', tiny_checkpoint, '--images', SAMPLES_DIR, '--annotations',
                      SAMPLE_ANNOTATIONS, '--limit', '1', '--no-progress',
                      '--metrics-json', str(tmp_path / 'm.json')])
    out = capsys.readouterr().out
    assert code == 0 and '  box |' in out and ' mask |' in out
    assert json.load(open(tmp_path / 'm.json'))['mask'].keys() >= {'AP', 'AP50'}
    for argv, message in (
            (['--images', str(tmp_path / 'none'), '--annotations', SAMPLE_ANNOTATIONS], 'missing'),
            (['--images', SAMPLES_DIR, '--annotations', str(tmp_path / 'x.json')], 'not found')):
        code = eval_main(['--weights', tiny_checkpoint, '--no-progress'] + argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
