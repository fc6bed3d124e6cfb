"""yolact-validate: the comparison pieces on constructed cases, and the CLI on exported models."""
from __future__ import annotations

import json

import numpy as np
import pytest

from onnx_models import checkpoint, exported
from yolact_deploy import validate as V
from yolact_deploy.cli import validate as cli
from yolact_deploy.postprocess import ImageDetections


def _dets(boxes, classes, scores, masks):
    return ImageDetections(boxes=np.array(boxes, np.int32).reshape(-1, 4),
                           classes=np.array(classes), scores=np.array(scores, np.float32),
                           mask_scores=np.array(scores, np.float32), masks=np.array(masks, bool))


def test_box_and_mask_iou():
    iou = V.box_iou(np.array([[0, 0, 10, 10], [0, 0, 0, 0]]), np.array([[5, 0, 15, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150], [0]])
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert V.mask_iou(a, b) == 1.0                     # two empty masks agree
    a[:2] = True
    b[1:3] = True
    assert V.mask_iou(a, b) == pytest.approx(4 / 12)


def test_match_results_counts_class_disagreement_and_unmatched():
    m1, m2 = np.zeros((2, 8, 8), bool), np.zeros((3, 8, 8), bool)
    m1[0, :4], m2[0, :4] = True, True
    m1[1, 4:], m2[1, 5:] = True, True
    ref = _dets([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 2], [0.9, 0.8], m1)
    test = _dets([[0, 0, 10, 11], [20, 20, 30, 30], [50, 50, 60, 60]], [1, 3, 4],
                 [0.85, 0.8, 0.3], m2)
    m = V.match_results(ref, test)
    assert (m['matched'], m['unmatched_ref'], m['unmatched_test'], m['class_agree']) == (2, 0, 1, 1)
    assert m['mask_iou'] == [1.0, pytest.approx(24 / 32)]
    assert m['score_diff'][0] == pytest.approx(0.05)


def test_identity_compare_on_contract_outputs():
    def contract(indices, classes, scores):
        n = len(indices)
        pad = 4 - n
        return {'num_detections': np.array([n]),
                'indices': np.array([indices + [-1] * pad]), 'classes': np.array([classes + [-1] * pad]),
                'scores': np.array([scores + [0] * pad], np.float32),
                'mask_scores': np.array([scores + [0] * pad], np.float32),
                'boxes': np.zeros((1, 4, 4), np.float32)}
    ref = contract([5, 9, 2], [1, 1, 0], [0.9, 0.8, 0.7])
    same_set = contract([9, 5, 2], [1, 1, 0], [0.8, 0.9 + 2e-5, 0.7])
    r = V.identity_compare(ref, same_set, 0)
    assert (r['common'], r['only_ref'], r['only_test'], r['same_order']) == (3, 0, 0, False)
    assert r['scores_max_abs'] == pytest.approx(2e-5, abs=1e-6)
    other = contract([5, 9], [1, 2], [0.9, 0.8])
    r = V.identity_compare(ref, other, 0)
    assert (r['common'], r['only_ref'], r['only_test'], r['count_test']) == (1, 2, 1, 2)


def test_check_lists_each_violation():
    report = {'raw': {'conf': {'max_abs': 2e-4}}, 'contract': {},
              'identity': {'images': 2, 'identical': 1, 'only_ref': 1, 'only_test': 0,
                           'boxes_max_abs': 0.0, 'scores_max_abs': 0.0,
                           'mask_scores_max_abs': 0.0},
              'final': {'min_mask_iou_excl_ties': 0.98, 'mean_mask_iou': 0.94, 'ref': 3, 'test': 3,
                        'unmatched_ref': 1, 'unmatched_test': 0},
              'map': {'delta': {'bbox': -0.2, 'segm': -0.7}}}
    fp32 = V.check(report, V.TOLERANCES['fp32'])
    assert any('raw conf' in v for v in fp32) and any('detections differ' in v for v in fp32)
    assert any('mask IoU' in v for v in fp32) and any('segm mAP' in v for v in fp32)
    fp16 = V.check(report, V.TOLERANCES['fp16'])
    assert fp16 == ['mask IoU: mean 0.9400 < 0.95', 'segm mAP delta -0.70 points exceeds 0.5']


def test_cli_passes_on_the_exported_model_and_writes_json(samples, tmp_path, capsys):
    path, ckpt = exported(with_raw=True)
    out = tmp_path / 'report.json'
    code = cli.main([path, '--weights', ckpt, '--images', *samples[:2], '--json', str(out), '-q'])
    text = capsys.readouterr().out
    assert code == 0, text
    assert 'PASS (fp32 tolerances)' in text
    report = json.load(open(out))
    assert report['passed'] and report['images'] == 2 and report['precision'] == 'fp32'
    assert set(report['raw']) == {'loc', 'conf', 'mask', 'priors', 'proto'}
    assert all(e['max_abs'] <= 1e-4 for e in report['raw'].values())
    assert report['identity']['identical'] == 2 and report['final']['class_agreement'] == 1.0


def test_cli_fails_against_other_weights_with_exit_1(samples, tmp_path, capsys):
    from yolact_deploy.testing import make_test_model as make_model
    from yolact_deploy.checkpoint import save_checkpoint
    path, _ = exported(with_raw=True)
    other = str(tmp_path / 'other.pth')
    save_checkpoint(other, make_model('yolact_resnet50', 256, seed=1))   # same preset, other weights
    assert cli.main([path, '--weights', other, '--images', samples[0], '-q']) == 1
    assert 'FAIL (fp32 tolerances)' in capsys.readouterr().out


def test_cli_coco_map_delta(tmp_path, capsys):
    from yolact_deploy.assets import SAMPLE_ANNOTATIONS, SAMPLES_DIR
    path, ckpt = exported(with_raw=True)
    out = tmp_path / 'r.json'
    code = cli.main([path, '--weights', ckpt, '--coco', SAMPLE_ANNOTATIONS, '--image-dir',
                     SAMPLES_DIR, '--limit', '2', '--json', str(out), '-q'])
    assert code == 0, capsys.readouterr().out
    report = json.load(open(out))
    assert set(report['map']['delta']) == {'bbox', 'segm'}
    assert all(abs(d) <= 0.1 for d in report['map']['delta'].values())


def test_cli_bad_input_exit_2(tmp_path, capsys):
    path, ckpt = exported(with_raw=True)
    assert cli.main([str(tmp_path / 'missing.onnx'), '--weights', ckpt]) == 2
    plus = checkpoint('yolact_plus_resnet50')
    assert cli.main([path, '--weights', plus, '-q']) == 2      # another preset than the graph's
    assert 'pass the checkpoint it was exported from' in capsys.readouterr().err
    assert cli.main([path, '--weights', ckpt, '--images', str(tmp_path)]) == 2   # no images
    assert cli.main([path, '--weights', ckpt, '--coco', str(tmp_path / 'none.json')]) == 2


def test_check_refuses_a_vacuous_comparison():
    report = {'raw': {}, 'contract': {},
              'identity': {'images': 3, 'count_ref_total': 0, 'identical': 3, 'only_ref': 0,
                           'only_test': 0, 'boxes_max_abs': 0.0, 'scores_max_abs': 0.0,
                           'mask_scores_max_abs': 0.0},
              'final': {'min_mask_iou_excl_ties': None, 'mean_mask_iou': None, 'ref': 0, 'test': 0,
                        'unmatched_ref': 0, 'unmatched_test': 0}}
    for precision in ('fp32', 'fp16'):
        assert any('nothing was compared' in v for v in V.check(report, V.TOLERANCES[precision]))
