"""Parity with the official dbolya/yolact code, run beside ours on the CPU.

Skipped unless ``YOLACT_OFFICIAL_DIR`` points to a checkout of https://github.com/dbolya/yolact (it is
imported at run time from there, never copied). By default three presets run, one per backbone
family (ResNet, DarkNet, ResNet with DCN), about two minutes on one core:

    YOLACT_OFFICIAL_DIR=/tmp/official pytest tests/test_official_parity.py

All seven official presets (about ten minutes), in pytest or with the harness that records
``benchmarks/results/official_parity.json``:

    YOLACT_OFFICIAL_DIR=/tmp/official YOLACT_OFFICIAL_PRESETS=all pytest tests/test_official_parity.py
    python tools/official_parity.py --official-dir /tmp/official \\
        --json benchmarks/results/official_parity.json

``YOLACT_PARITY_IMAGE`` picks the image (default: a COCO val2017 image from the shared data, else a
bundled sample).
"""
import glob
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_DIR = os.environ.get('YOLACT_OFFICIAL_DIR', '')
DEFAULT_PRESETS = ('yolact_resnet50', 'yolact_darknet53', 'yolact_plus_resnet50')

pytestmark = pytest.mark.skipif(
    not OFFICIAL_DIR or not os.path.isfile(os.path.join(OFFICIAL_DIR, 'yolact.py')),
    reason='set YOLACT_OFFICIAL_DIR to a dbolya/yolact checkout to compare with the official code')


def _harness():
    spec = importlib.util.spec_from_file_location(
        'official_parity', os.path.join(ROOT, 'tools', 'official_parity.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _presets():
    value = os.environ.get('YOLACT_OFFICIAL_PRESETS', '')
    if value == 'all':
        return _harness().OFFICIAL_PRESETS
    return tuple(p for p in value.replace(',', ' ').split()) or DEFAULT_PRESETS


def _image(harness):
    candidates = [os.environ.get('YOLACT_PARITY_IMAGE', ''), harness.DEFAULT_IMAGE]
    candidates += sorted(glob.glob(os.path.join(ROOT, 'yolact_deploy', 'assets', 'samples', '*.jpg')))
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    pytest.skip('no image to run the parity check on (set YOLACT_PARITY_IMAGE)')


@pytest.mark.parametrize('preset', _presets())
def test_official_parity(preset, tmp_path):
    h = _harness()
    image = _image(h)
    calib = h.DEFAULT_CALIB_IMAGE if os.path.isfile(h.DEFAULT_CALIB_IMAGE) else image
    r = h.run_preset(OFFICIAL_DIR, preset, image, calib, workdir=str(tmp_path), log=lambda s: None)

    sd = r['state_dict']
    assert sd['strict_load'] and sd['preset_inferred_from_filename'] == preset
    assert sd['ours_matches_official'], 'state-dict keys/shapes differ from the official model'

    bad = {k: v for k, v in r['raw'].items() if not v['ok']}
    assert not bad, f'raw outputs beyond {h.TOL_RAW_REL} of their largest magnitude: {bad}'
    assert r['raw_ok']
    assert r['preprocessing']['ours_vs_official_input_max_abs'] <= 1e-4

    d = r['detections']
    # real detections that survive the thresholds, in both implementations
    assert d['official_count'] > 0 and d['official_above']['0.3'] > 0
    assert not d['unmatched_official_scores'] and not d['unmatched_ours_scores'], d
    assert d['max_score_err'] <= h.TOL_SCORE and d['max_mask_score_err'] <= h.TOL_SCORE
    assert d['max_box_err_px'] <= h.TOL_BOX_PX
    assert d['max_mask_disagreement_frac_of_union'] <= h.TOL_MASK_FRAC
    if 'plus' in preset:
        dcn = r['dcn']   # the deformable convs really deformed
        assert dcn['layers'] > 0 and dcn['fraction_non_integer_min'] > 0.5
        assert dcn['fraction_samples_outside_max'] > 0
    assert r['ok']
