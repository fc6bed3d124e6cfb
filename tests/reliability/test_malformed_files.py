"""Malformed files and output faults: one line, exit code 2, nothing left behind.

ONNX metadata is validated once where it is read (export/metadata.py) and the graph against it;
checkpoint ``meta`` and training state once where they are read; COCO json once in
data/coco.py:read_annotations. Malicious pickles never run in any command that loads a checkpoint
(``weights_only`` loading).
"""
from __future__ import annotations

import copy
import errno
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from yolact_deploy.assets import SAMPLE_ANNOTATIONS, SAMPLES_DIR
from yolact_deploy.errors import YolactError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def one_line_exit_2(tool: str, argv: list, capsys, needle: str = '') -> str:
    module = importlib.import_module(f'yolact_deploy.cli.{tool}')
    code = module.main(argv)
    text = capsys.readouterr().err
    err = [e for e in text.strip().splitlines() if e.startswith('error')]  # not progress lines
    assert code == 2 and len(err) == 1 and err[0].startswith('error: '), (code, text[-2000:])
    assert 'Traceback' not in text
    assert needle in err[0], err[0]
    return err[0]


# -- ONNX metadata ---------------------------------------------------------------------------------

GOOD_META = {'schema': 1, 'graph': 'end_to_end', 'flavour': 'portable', 'class_names': ['a', 'b'],
             'category_ids': [1, 2], 'input': {'network_size': [64, 64]}, 'max_detections': 1,
             'config': {'class_names': ['a', 'b']}}
CONTRACT = {'num_detections': ('int32', [1, 1]), 'boxes': ('float32', [1, 1, 4]),
            'scores': ('float32', [1, 1]), 'mask_scores': ('float32', [1, 1]),
            'classes': ('int32', [1, 1]), 'masks': ('float32', [1, 1, 4, 4])}


def tiny_onnx(path, meta, outputs=CONTRACT):
    """A graph with the contract's outputs (constants) and ``meta`` as our metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, outs, inits = [], [], []
    for name, (dtype, shape) in outputs.items():
        inits.append(numpy_helper.from_array(np.zeros(shape, dtype), f'{name}_value'))
        nodes.append(helper.make_node('Identity', [f'{name}_value'], [name]))
        outs.append(helper.make_tensor_value_info(
            name, TensorProto.INT32 if dtype == 'int32' else TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info(
        'images', TensorProto.UINT8, ['B', 'H', 'W', 3])], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key = 'yolact_deploy'
        entry.value = meta if isinstance(meta, str) else json.dumps(meta)
    onnx.save(model, str(path))
    return str(path)


def meta_with(**changes):
    meta = copy.deepcopy(GOOD_META)
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    return meta


BAD_META = {
    'json list': ([1, 2], None, 'expected a JSON object'),
    'no class_names': (meta_with(class_names=None), None, 'class_names'),
    'string schema': (meta_with(schema='1'), None, '"schema"'),
    'bool schema': (meta_with(schema=True), None, '"schema"'),
    'unknown graph kind': (meta_with(graph='resnet'), None, '"graph"'),
    'ids do not match names': (meta_with(category_ids=[1]), None, 'category_ids'),
    'no network size': (meta_with(input={}), None, 'network_size'),
    'K not a number': (meta_with(max_detections='100'), None, 'max_detections'),
    '5 names for a 2-class model': (meta_with(class_names=list('abcde'), category_ids=[1, 2, 3, 4, 5]),
                                    None, 'built for 2 classes'),
    'not a YOLACT graph': (GOOD_META, {'y': ('float32', [1, 3])}, 'not a YOLACT end-to-end graph'),
    'raw graph, 5 names, 80-class conf': (
        meta_with(graph='raw', class_names=list('abcde'), category_ids=[1, 2, 3, 4, 5],
                  config={'class_names': list('abcde')}),
        {'loc': ('float32', [1, 8, 4]), 'conf': ('float32', [1, 8, 81]), 'mask': ('float32', [1, 8, 4]),
         'priors': ('float32', [8, 4]), 'proto': ('float32', [1, 4, 4, 4])}, 'graph scores 80'),
    'corrupt json': ('{"schema": 1', None, 'corrupt'),
    'deeply nested json': ('[' * 100000, None, 'metadata'),
}


def test_good_tiny_graph_loads(tmp_path):
    from yolact_deploy.runtime import load_predictor
    p = load_predictor(tiny_onnx(tmp_path / 'ok.onnx', GOOD_META))
    assert p.class_names == ('a', 'b')


@pytest.mark.parametrize('case', list(BAD_META))
def test_malformed_onnx_metadata_is_one_error(tmp_path, case):
    from yolact_deploy.runtime import load_predictor
    meta, outputs, needle = BAD_META[case]
    path = tiny_onnx(tmp_path / 'bad.onnx', meta, outputs or CONTRACT)
    with pytest.raises(YolactError, match=needle.replace('(', r'\(')):
        load_predictor(path)


@pytest.mark.parametrize('case', ['json list', 'no class_names', 'not a YOLACT graph',
                                  '5 names for a 2-class model'])
def test_malformed_onnx_metadata_in_the_tools(tmp_path, capsys, case):
    meta, outputs, _ = BAD_META[case]
    path = tiny_onnx(tmp_path / 'bad.onnx', meta, outputs or CONTRACT)
    one_line_exit_2('serve', ['--weights', path, '--port', '0'], capsys)
    one_line_exit_2('infer', ['--weights', path, '--output', str(tmp_path / 'out'),
                              os.path.join(SAMPLES_DIR, sorted(os.listdir(SAMPLES_DIR))[0])], capsys)
    one_line_exit_2('export', ['--to', 'triton', '--onnx', path, '-o', str(tmp_path / 'repo')], capsys)
    assert not (tmp_path / 'out').exists()
    assert not (tmp_path / 'repo').exists() or os.listdir(tmp_path / 'repo') == []


# -- checkpoints -----------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_state():
    from yolact_deploy.testing import make_test_model
    return make_test_model('yolact_lite0_256', 256).state_dict()


@pytest.mark.parametrize('meta,needle', [
    ('a string', '"meta" must be a dictionary'),
    ({'config': {'backbone': 'resnet', 'fpn': {}}}, '"backbone" must be an object'),
    ({'config': ['x']}, 'expected an object'),
    ({'config': {'backbone': {'kind': 1, 'nope': 2}, 'fpn': {}}}, 'invalid config'),
    ({'preset': 7}, 'meta.preset'),
])
def test_malformed_checkpoint_meta(tmp_path, capsys, tiny_state, meta, needle):
    from yolact_deploy.checkpoint import load_model
    path = str(tmp_path / 'bad.pth')
    torch.save({'model': tiny_state, 'meta': meta}, path)
    with pytest.raises(YolactError, match=needle):
        load_model(path)
    one_line_exit_2('export', ['--weights', path, '-o', str(tmp_path / 'm.onnx'), '-q'], capsys)
    assert os.listdir(tmp_path) == ['bad.pth']


def test_resume_without_optimizer_state(tmp_path, capsys):
    from yolact_deploy.checkpoint import save_checkpoint
    from yolact_deploy.testing import make_test_model
    path = str(tmp_path / 'no_opt.pth')
    save_checkpoint(path, make_test_model('yolact_lite0_256', 256),
                    extra={'train_state': {'iteration': 5}})
    one_line_exit_2('train', ['--images', SAMPLES_DIR, '--annotations', SAMPLE_ANNOTATIONS,
                              '--out', str(tmp_path / 'run'), '--resume', path, '--device', 'cpu',
                              '--backbone-weights', 'none', '--no-tensorboard'], capsys,
                    'no optimizer state')


# -- COCO json -------------------------------------------------------------------------------------

def coco_fault(tmp_path, mutate) -> str:
    data = json.load(open(SAMPLE_ANNOTATIONS))
    mutate(data)
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(data))
    return str(path)


def _first(key):
    return lambda d: d[key][0]


COCO_FAULTS = {
    'missing area': (lambda d: d['annotations'][0].pop('area'), 'area'),
    'missing iscrowd': (lambda d: d['annotations'][0].pop('iscrowd'), 'iscrowd'),
    'string image id': (lambda d: d['images'][0].update(id='7'), 'non-integer id'),
    'string annotation image_id': (lambda d: d['annotations'][0].update(image_id='x'), 'integer image_id'),
    'integer file name': (lambda d: d['images'][0].update(file_name=12), 'file_name'),
    'string bbox': (lambda d: d['annotations'][0].update(bbox='1,2,3,4'), 'bbox'),
    'string bbox values': (lambda d: d['annotations'][0].update(bbox=['1', 2, 3, 4]), 'bbox'),
    'string height': (lambda d: d['images'][0].update(height='480'), 'width and height'),
    'string width': (lambda d: d['images'][0].update(width='640'), 'width and height'),
    'string segmentation': (lambda d: d['annotations'][0].update(segmentation='poly'), 'segmentation of type str'),
    '2-coordinate polygon': (lambda d: d['annotations'][0].update(segmentation=[[1.0, 2.0]]), '2 coordinates'),
    'odd polygon': (lambda d: d['annotations'][0].update(segmentation=[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]),
                    '7 coordinates'),
    'string category id': (lambda d: d['categories'][0].update(id='1'), 'integer id'),
    'iscrowd 2': (lambda d: d['annotations'][0].update(iscrowd=2), 'iscrowd'),
    'annotation not an object': (lambda d: d['annotations'].__setitem__(0, 5), 'not an object'),
    'duplicate image id': (lambda d: d['images'].append(dict(d['images'][0])), 'repeats id'),
}


@pytest.mark.parametrize('case', list(COCO_FAULTS))
def test_coco_json_faults_in_eval(tmp_path, capsys, case):
    mutate, needle = COCO_FAULTS[case]
    ann = coco_fault(tmp_path, mutate)
    out = tmp_path / 'dets.json'
    one_line_exit_2('eval', ['--images', SAMPLES_DIR, '--annotations', ann, '--output-json', str(out),
                             '--no-progress'], capsys, needle)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ['ann.json']


@pytest.mark.parametrize('case', ['string image id', 'string bbox', 'string height',
                                  'string segmentation', 'integer file name'])
def test_coco_json_faults_in_train(tmp_path, capsys, case):
    mutate, needle = COCO_FAULTS[case]
    ann = coco_fault(tmp_path, mutate)
    one_line_exit_2('train', ['--images', SAMPLES_DIR, '--annotations', ann, '--out',
                              str(tmp_path / 'run'), '--device', 'cpu', '--backbone-weights', 'none',
                              '--no-tensorboard', '--max-iter', '1'], capsys, needle)


def test_degenerate_polygon_is_a_bad_training_sample_not_a_box():
    from yolact_deploy.data.coco import decode_segmentation, read_annotations
    with pytest.raises(ValueError, match='fewer than 3 points'):
        decode_segmentation([[1.0, 2.0, 3.0, 4.0]], 10, 10)
    read_annotations(SAMPLE_ANNOTATIONS, for_eval=True)


# -- output faults ---------------------------------------------------------------------------------

def test_train_out_is_a_file_or_unwritable(tmp_path, capsys):
    f = tmp_path / 'file'
    f.write_text('x')
    base = ['--images', SAMPLES_DIR, '--annotations', SAMPLE_ANNOTATIONS, '--device', 'cpu',
            '--backbone-weights', 'none', '--no-tensorboard', '--max-iter', '1']
    one_line_exit_2('train', base + ['--out', str(f)], capsys, 'not a directory')
    one_line_exit_2('train', base + ['--out', '/proc/yolact-out'], capsys, 'not writable')


def test_infer_outputs_that_are_directories_or_full(tmp_path, capsys, monkeypatch, samples):
    (tmp_path / 'res.json').mkdir()
    one_line_exit_2('infer', ['--no-draw', '--save-json', str(tmp_path / 'res.json'), samples[0]],
                    capsys, 'is a directory')
    from yolact_deploy.cli import infer

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(infer.json, 'dump', full)
    one_line_exit_2('infer', ['--no-draw', '--save-json', str(tmp_path / 'r2.json'), samples[0]],
                    capsys, 'No space left on device')
    assert sorted(os.listdir(tmp_path)) == ['res.json']


def test_bundle_model_to_an_unwritable_folder(tmp_path, small_checkpoint):
    metrics = tmp_path / 'm.json'
    metrics.write_text('{"box": {"AP": 1}, "mask": {"AP": 1}}')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'bundle_model.py'),
                           small_checkpoint, '--metrics', str(metrics), '--command', 'x', '--data', 'y',
                           '--out', '/proc/yolact/model.pth'], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith('error: '), proc.stderr


# -- malicious checkpoints -------------------------------------------------------------------------

class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def evil_checkpoint(tmp_path, where='model') -> tuple:
    marker = str(tmp_path / 'PWNED')
    path = str(tmp_path / 'evil.pth')
    payload = {'model': Payload(marker)} if where == 'model' else \
        {'model': {}, 'meta': {}, 'train_state': Payload(marker)}
    torch.save(payload, path)
    return path, marker


COMMANDS = {
    'infer': lambda p, t: ['--weights', p, '--no-draw', os.path.join(SAMPLES_DIR, '000000000139.jpg')],
    'export': lambda p, t: ['--weights', p, '-o', str(t / 'm.onnx'), '-q'],
    'export triton': lambda p, t: ['--to', 'triton', '--weights', p, '-o', str(t / 'repo')],
    'validate': lambda p, t: [str(t / 'nope.onnx'), '--weights', p],
    'eval': lambda p, t: ['--weights', p, '--images', SAMPLES_DIR, '--annotations', SAMPLE_ANNOTATIONS],
    'bench': lambda p, t: [p, '--iters', '2', '-q'],
    'serve': lambda p, t: ['--weights', p, '--port', '0'],
    'train --resume': lambda p, t: ['--images', SAMPLES_DIR, '--annotations', SAMPLE_ANNOTATIONS,
                                    '--out', str(t / 'run'), '--resume', p, '--device', 'cpu',
                                    '--backbone-weights', 'none', '--no-tensorboard'],
    'train --backbone-weights': lambda p, t: ['--images', SAMPLES_DIR, '--annotations',
                                              SAMPLE_ANNOTATIONS, '--out', str(t / 'run'),
                                              '--device', 'cpu', '--backbone-weights', p,
                                              '--no-tensorboard', '--config', 'yolact_resnet50'],
    'pipeline': lambda p, t: ['--weights', p, '--out', str(t / 'pipe'), '--no-trt'],
}


@pytest.mark.parametrize('command', list(COMMANDS))
def test_malicious_checkpoints_never_run(tmp_path, capsys, command):
    path, marker = evil_checkpoint(tmp_path)
    tool = command.split()[0]
    module = importlib.import_module(f'yolact_deploy.cli.{tool}')
    assert module.main(COMMANDS[command](path, tmp_path)) == 2
    assert 'error: ' in capsys.readouterr().err
    assert not os.path.exists(marker)


def test_malicious_checkpoint_in_bundle_model_and_load_api(tmp_path):
    from yolact_deploy.checkpoint import load_model
    from yolact_deploy.runtime import load_predictor
    path, marker = evil_checkpoint(tmp_path, where='train_state')
    for load in (load_model, load_predictor):
        with pytest.raises(YolactError):
            load(path)
    metrics = tmp_path / 'm.json'
    metrics.write_text('{}')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'bundle_model.py'), path,
                           '--metrics', str(metrics), '--command', 'x', '--data', 'y',
                           '--out', str(tmp_path / 'b.pth')], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert proc.returncode == 2 and not os.path.exists(marker), proc.stderr
