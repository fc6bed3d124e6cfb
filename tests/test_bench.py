"""yolact-bench: statistics, warm-up exclusion, reports, one-line errors, and real runs on .pth/.onnx."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from yolact_deploy import bench as B
from yolact_deploy.cli import bench as cli
from yolact_deploy.postprocess import ImageDetections
from yolact_deploy.runtime.predictor import PredictionOutput, Predictor


def test_summary_statistics_match_numpy():
    rng = np.random.default_rng(0)
    samples = list(rng.gamma(2.0, 0.01, size=57))
    s = B.summarize(samples)
    ms = np.array(samples) * 1000
    for key, q in (('p50_ms', 50), ('p90_ms', 90), ('p99_ms', 99)):
        assert s[key] == pytest.approx(np.percentile(ms, q), rel=1e-12)
    assert s['mean_ms'] == pytest.approx(ms.mean()) and s['std_ms'] == pytest.approx(ms.std())
    assert s['min_ms'] == pytest.approx(ms.min()) and s['max_ms'] == pytest.approx(ms.max())
    assert s['runs'] == 57 and s['median_ms'] == s['p50_ms']
    assert B.throughput({'mean_ms': 250.0}, 4) == pytest.approx(16.0)
    with pytest.raises(ValueError):
        B.summarize([])


def test_timed_excludes_warmup():
    calls = []
    out = B.timed(lambda: calls.append(1), warmup=3, iters=5)
    assert len(calls) == 8 and len(out) == 5 and all(t >= 0 for t in out)


class FakePredictor(Predictor):
    """Fixed-cost backend: checks that every mode and batch size is measured."""

    backend = 'onnxruntime'
    class_names = ('a',)

    def __init__(self):
        self.batches = []

    def run(self, images):
        self.batches.append(len(images))
        b = len(images)
        return ({'num_detections': np.ones(b, np.int64), 'boxes': np.tile([[[.1, .1, .5, .5]]], (b, 1, 1)),
                 'scores': np.full((b, 1), .9, np.float32), 'classes': np.zeros((b, 1), np.int64),
                 'masks': np.ones((b, 1, 4, 4), np.float32)}, {})


def test_bench_predictor_modes_and_csv(tmp_path):
    pred = FakePredictor()
    images = [np.zeros((48, 64, 3), np.uint8)]
    out = B.bench_predictor(pred, images, [1, 3], warmup=1, iters=2)
    assert [r['batch'] for r in out['results']] == [1, 3]
    assert set(pred.batches) == {1, 3}
    r = out['results'][1]
    assert r['end_to_end']['runs'] == 2 and r['inference']['runs'] == 2
    assert r['detections_per_image'] == [1, 1, 1]
    report = B.new_report({'batches': [1, 3]})
    report['models'].append({'model': 'fake.onnx', **B.describe_predictor(pred), **out})
    B.finish_report(report)
    path = tmp_path / 'r.csv'
    B.write_csv(report, str(path))
    rows = list(csv.DictReader(open(path)))
    assert {(row['batch'], row['mode']) for row in rows} == {
        (str(b), m) for b in (1, 3) for m in ('end_to_end', 'inference', 'postprocess')}
    assert r['postprocess']['runs'] == 2
    assert r['postprocess_per_image_ms'] == pytest.approx(r['postprocess']['p50_ms'] / 3)
    assert 'host post-processing' in B.summary_lines(report)[1]
    assert all(float(row['p99_ms']) >= float(row['p50_ms']) for row in rows)
    assert B.summary_lines(report)[0].startswith('fake.onnx')


def test_machine_facts_are_recorded():
    facts = B.machine_facts()
    assert facts['cpu'] and facts['cpu_cores'] >= 1 and facts['versions']['numpy']
    assert 'tensorrt' in facts['versions'] and 'jetson' in facts
    if facts['gpu'] is None:
        assert facts['gpu_note']          # says why there is no GPU entry


def test_jetson_facts_absent_off_jetson(monkeypatch):
    monkeypatch.setattr(B, '_read', lambda path: None)
    assert B.jetson_facts() is None


@pytest.mark.parametrize('argv, needle', [
    (['nope.onnx'], 'model file not found'),
    (['random:yolact_lite0_256', '--batch', '0'], '--batch sizes must be in 1..1024'),
    (['random:yolact_lite0_256', '--batch', 'x'], '--batch expects'),
    (['random:yolact_lite0_256', '--iters', '1'], '--iters must be >= 2'),
    (['random:yolact_lite0_256', '--image-size', '0x5'], 'sizes must be >= 2'),
    (['random:yolact_lite0_256', '--images', 'missing.jpg'], 'image not found'),
])
def test_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert cli.main(argv + ['-q']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and needle in err[0]


def test_bench_random_pth_end_to_end(tmp_path, capsys):
    out_json, out_csv = tmp_path / 'b.json', tmp_path / 'b.csv'
    code = cli.main(['random:yolact_lite0_256', '--batch', '1', '--warmup', '1', '--iters', '2',
                     '--image-size', '120x160', '--json', str(out_json), '--csv', str(out_csv),
                     '-q'])
    assert code == 0
    report = json.loads(out_json.read_text())
    m = report['models'][0]
    assert m['backend'] == 'torch' and m['preset'] == 'yolact_lite0_256'
    r = m['results'][0]
    assert r['end_to_end']['runs'] == 2 and r['stages']['backbone']['runs'] == 2
    assert set(r['stages']) == {'preprocess', 'backbone', 'fpn', 'protonet', 'heads', 'detect'}
    assert report['settings']['image_size'] == [120, 160]
    assert report['machine']['loadavg_end'] is not None
    assert 'end-to-end p50' in capsys.readouterr().out


def _small_onnx(tmp_path):
    try:   # shared, cached exports of the ONNX tests, when present
        import onnx_models
        return onnx_models.exported('yolact_resnet50', 256)[0]
    except ImportError:
        from yolact_deploy.testing import make_test_model as make_model

        from yolact_deploy.export.onnx_export import ExportOptions, export_onnx
        path = str(tmp_path / 'small.onnx')
        export_onnx(make_model('yolact_resnet50', 256), path, ExportOptions(), quiet=True)
        return path


def test_bench_onnx_runs(tmp_path):
    onnx_path = _small_onnx(tmp_path)
    out_json = tmp_path / 'o.json'
    assert cli.main([onnx_path, '--batch', '1,2', '--warmup', '1', '--iters', '2', '--threads', '1',
                     '--image-size', '120x160', '--json', str(out_json), '-q']) == 0
    m = json.loads(out_json.read_text())['models'][0]
    assert m['backend'] == 'onnxruntime' and [r['batch'] for r in m['results']] == [1, 2]
    assert 'stages' not in m['results'][0]
    assert m['results'][0]['postprocess']['runs'] == 2  # host post-processing for every backend
