"""The TensorRT conformance check: the ONNX parser's documented rules on every exported flavour, and
the known-bad graphs it must reject (a UINT8 intermediate, an INT64 Clip, ...)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_models import exported
from yolact_deploy import plugins
from yolact_deploy.deploy import trt_conformance as tc

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ('10.3', 'newest')


def _vi(name, elem, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes, inputs, outputs, inits=(), opset=19, domains=()):
    graph = helper.make_graph(nodes, 'g', inputs, outputs, initializer=list(inits))
    imports = [helper.make_opsetid('', opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=imports)


def _rules(violations):
    return sorted({(v.target, v.rule) for v in violations})


# -- the rules file --------------------------------------------------------------------------------
def test_rules_are_package_data_with_both_targets():
    rules = tc.load_rules()
    assert tuple(rules['targets']) == TARGETS
    assert rules['targets']['10.3']['opset'] == [9, 20]
    assert rules['targets']['newest']['opset'] == [9, 24]
    for spec in rules['targets'].values():
        assert spec['ops']['Clip']['types'] == ['FP32', 'FP16', 'BF16']          # no INT64 Clip
        assert 'INT64' in spec['ops']['Max']['types'] and 'INT64' in spec['ops']['TopK']['types']
        assert 'UINT8' in spec['ops']['Cast']['types'] and 'UINT8' not in spec['ops']['Shape']['types']
        assert spec['sources']
    assert rules['topk']['k_max_exclusive'] == 3840
    assert "'deploy/data/*.json'" in (ROOT / 'setup.py').read_text()


def test_plugin_contract_matches_the_creators_sources():
    """The creators' names, field names/types and I/O counts, read from plugins/*/ *_plugin.cpp."""
    creators = tc.load_rules()['plugins']['creators']
    common = (ROOT / 'plugins' / 'common' / 'yd_trt_common.h').read_text()
    version = re.search(r'kPluginVersion = "([^"]*)"', common).group(1)
    namespace = re.search(r'kPluginNamespace = "([^"]*)"', common).group(1)
    assert (version, namespace) == (plugins.PLUGIN_VERSION, plugins.PLUGIN_NAMESPACE)
    for folder, op in (('deform_im2col', plugins.DEFORM_IM2COL), ('fast_nms', plugins.FAST_NMS)):
        src = (ROOT / 'plugins' / folder / f'{folder}_plugin.cpp').read_text()
        assert re.search(r'kName = "([^"]*)"', src).group(1) == op
        c = creators[op]
        assert (c['version'], c['namespace']) == (version, namespace)
        assert int(re.search(r'kNbInputs = (\d+)', src).group(1)) == c['inputs']
        outputs = re.search(r'kNbOutputs = (\d+)', src)
        assert (int(outputs.group(1)) if outputs else 1) == c['outputs']
        if op == plugins.DEFORM_IM2COL:   # kAttrs table, all read as integers
            fields = {n: 'INT' for n in re.findall(r'\{"(\w+)", &DeformIm2colAttrs::', src)}
        else:                             # the creator's field list
            fields = {n: {'kINT32': 'INT', 'kFLOAT32': 'FLOAT'}[t] for n, t in re.findall(
                r'mFieldNames\.emplace_back\("(\w+)", nullptr, PluginFieldType::(\w+)', src)}
        assert fields == c['fields'], op
        # input types the wrapper accepts (supportsFormatCombination): FP16 only where it says kHALF
        assert c['input_types'] == (['FP32', 'FP16'] if 'DataType::kHALF' in src else ['FP32']), op


# -- every exported flavour passes ------------------------------------------------------------------
FLAVOURS = [dict(plugins=p, fp16=f, raw=r) for p in (False, True) for f in (False, True)
            for r in (False, True)]


def _flavour_id(kw):
    return '-'.join(['plugins' if kw['plugins'] else 'portable', 'fp16' if kw['fp16'] else 'fp32',
                     'raw' if kw['raw'] else 'e2e'])


@pytest.mark.slow
@pytest.mark.parametrize('preset', ['yolact_lite0_256', 'yolact_plus_resnet50'])
@pytest.mark.parametrize('flavour', FLAVOURS, ids=_flavour_id)
def test_every_exported_flavour_is_conformant(preset, flavour):
    options = {k: v for k, v in flavour.items() if v}
    # the smallest non-DCN preset at 128 px; the DCN one at 256 (mask re-scoring needs >= 249),
    # whose end-to-end exports test_export_onnx shares
    size = 128 if preset == 'yolact_lite0_256' else 256
    path, _ = exported(preset, size, **options)      # the export itself ends with the check
    model = onnx.load(path)
    assert tc.check_model(model) == []
    kinds = {n.op_type for n in model.graph.node}
    if preset == 'yolact_plus_resnet50':
        assert ('YolactDeformIm2col' if flavour['plugins'] else 'DeformConv') in kinds
    if not flavour['raw']:
        assert ('YolactFastNMS' in kinds) == flavour['plugins']
        assert flavour['plugins'] or 'TopK' in kinds
    # the uint8 input feeds a Cast and nothing else
    assert [n.op_type for n in model.graph.node if 'images' in n.input] == ['Cast']


# -- known-bad graphs fail --------------------------------------------------------------------------
def test_uint8_intermediate_fails():
    """What every export did before this check: Transpose on the uint8 input, then Cast."""
    model = _model([helper.make_node('Transpose', ['images'], ['t'], perm=[0, 3, 1, 2]),
                    helper.make_node('Cast', ['t'], ['out'], to=TensorProto.FLOAT)],
                   [_vi('images', TensorProto.UINT8, ['b', 'h', 'w', 3])],
                   [_vi('out', TensorProto.FLOAT, None)])
    violations = tc.check_model(model)
    assert _rules(violations) == [(t, 'uint8') for t in TARGETS]
    assert any('UINT8 intermediate' in v.message for v in violations)
    fixed = _model([helper.make_node('Cast', ['images'], ['c'], to=TensorProto.FLOAT),
                    helper.make_node('Transpose', ['c'], ['out'], perm=[0, 3, 1, 2])],
                   [_vi('images', TensorProto.UINT8, ['b', 'h', 'w', 3])],
                   [_vi('out', TensorProto.FLOAT, None)])
    assert tc.check_model(fixed) == []


def test_uint8_input_read_by_shape_fails():
    model = _model([helper.make_node('Shape', ['images'], ['out'])],
                   [_vi('images', TensorProto.UINT8, ['b', 'h', 'w', 3])],
                   [_vi('out', TensorProto.INT64, None)])
    assert _rules(tc.check_model(model)) == [(t, 'uint8') for t in TARGETS]


def test_int64_clip_fails_and_max_min_pass():
    lo = numpy_helper.from_array(np.array(0, np.int64), 'lo')
    hi = numpy_helper.from_array(np.array(100, np.int64), 'hi')
    inputs = [_vi('x', TensorProto.INT64, ['n'])]
    clip = _model([helper.make_node('Clip', ['x', 'lo', 'hi'], ['out'])], inputs,
                  [_vi('out', TensorProto.INT64, None)], [lo, hi])
    violations = tc.check_model(clip)
    assert _rules(violations) == [(t, 'dtype') for t in TARGETS]
    assert 'INT64' in violations[0].message and 'Clip' in str(violations[0])
    maxmin = _model([helper.make_node('Max', ['x', 'lo'], ['m']),
                     helper.make_node('Min', ['m', 'hi'], ['out'])], inputs,
                    [_vi('out', TensorProto.INT64, None)], [lo, hi])
    assert tc.check_model(maxmin) == []


def _topk(k, sorted_=1, k_const=True):
    x = _vi('x', TensorProto.FLOAT, [1, 5000])
    inputs = [x] + ([] if k_const else [_vi('k', TensorProto.INT64, [1])])
    inits = [numpy_helper.from_array(np.array([k], np.int64), 'k')] if k_const else []
    node = helper.make_node('TopK', ['x', 'k'], ['v', 'i'], axis=-1, largest=1, sorted=sorted_)
    return _model([node], inputs, [_vi('v', TensorProto.FLOAT, None), _vi('i', TensorProto.INT64, None)],
                  inits)


def test_topk_rules():
    assert tc.check_model(_topk(3839)) == []
    assert _rules(tc.check_model(_topk(3840))) == [(t, 'topk') for t in TARGETS]
    assert _rules(tc.check_model(_topk(10, sorted_=0))) == [(t, 'topk') for t in TARGETS]
    assert 'not a constant' in tc.check_model(_topk(10, k_const=False))[0].message


def test_deformconv_rules_and_opset_range():
    w = numpy_helper.from_array(np.zeros((4, 2, 3, 3), np.float32), 'w')
    names = ['x', 'w', 'o']
    inputs = [_vi('x', TensorProto.FLOAT, [1, 2, 8, 8]), _vi('o', TensorProto.FLOAT, [1, 18, 8, 8])]

    def graph(pads, opset=19):
        node = helper.make_node('DeformConv', names, ['y'], pads=pads, strides=[1, 1])
        return _model([node], inputs, [_vi('y', TensorProto.FLOAT, None)], [w], opset=opset)
    assert tc.check_model(graph([1, 1, 1, 1])) == []
    assert _rules(tc.check_model(graph([1, 1, 0, 0]))) == [(t, 'deformconv') for t in TARGETS]
    # opset 21: fine for the newest parser, outside 10.3's 9..20
    assert _rules(tc.check_model(graph([1, 1, 1, 1], opset=21))) == [('10.3', 'opset')]


def _plugin_node(op=plugins.FAST_NMS, outputs=5, drop=(), **over):
    attrs = dict(conf_thresh=0.05, iou_threshold=0.5, top_k=200, max_detections=100, cross_class=0,
                 second_threshold=0, plugin_version='1', plugin_namespace='')
    attrs.update(over)
    attrs = {k: v for k, v in attrs.items() if k not in drop}
    node = helper.make_node(op, ['boxes', 'scores'], [f'o{i}' for i in range(outputs)],
                            domain=plugins.DOMAIN, **attrs)
    outs = [_vi(f'o{i}', TensorProto.FLOAT, None) for i in range(outputs)]
    return _model([node], [_vi('boxes', TensorProto.FLOAT, [1, 10, 4]),
                           _vi('scores', TensorProto.FLOAT, [1, 10, 3])], outs,
                  domains=[plugins.DOMAIN])


@pytest.mark.parametrize('case, expect', [
    (dict(), None),
    (dict(plugin_namespace='yolact'), "plugin_namespace='yolact' but the creator has ''"),
    (dict(plugin_version='2'), "plugin_version='2'"),
    (dict(drop=('plugin_version',)), 'no plugin_version attribute'),
    (dict(drop=('top_k',)), "attribute 'top_k' missing"),
    (dict(top_k=200.0), "'top_k' is FLOAT, the creator reads INT"),
    (dict(outputs=4), '4 outputs, the plugin has 5'),
    (dict(op='YolactUnknownOp'), 'no known plugin creator'),
    (dict(op='DeformConv'), 'named like the built-in ONNX op'),
])
def test_custom_node_rules(case, expect):
    violations = tc.check_model(_plugin_node(**case))
    if expect is None:
        assert violations == []
    else:
        assert {v.rule for v in violations} == {'plugin'} and expect in violations[0].message


def test_assert_conformant_is_one_line():
    with pytest.raises(tc.ConformanceError) as e:
        tc.assert_conformant(_topk(5000), what='m.onnx')
    text = str(e.value)
    assert '\n' not in text and text.startswith('m.onnx fails the TensorRT conformance check')
    assert 'and 1 more' in text


# -- the command, and the deployment layer without torch -------------------------------------------
def _run_without_torch(code: str, *args) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter where ``import torch`` fails (a Jetson box without it)."""
    prelude = "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, '-c', prelude + code, *args], capture_output=True,
                          text=True, env=env, cwd=str(ROOT))


def test_check_trt_command_without_torch(tmp_path):
    good, bad = tmp_path / 'good.onnx', tmp_path / 'bad.onnx'
    onnx.save(_topk(100), str(good))
    onnx.save(_topk(5000), str(bad))
    main = 'from yolact_deploy.cli.export import main; sys.exit(main(sys.argv[1:]))'
    ok = _run_without_torch(main, '--check-trt', str(good))
    assert ok.returncode == 0, ok.stderr
    assert 'conformant with the ONNX parser rules of TensorRT 10.3 and newest' in ok.stdout
    no = _run_without_torch(main, '--check-trt', str(bad))
    lines = no.stderr.strip().splitlines()
    assert no.returncode == 2 and lines[-1].startswith('error: ') and 'K = 5000' in lines[-1]
    assert 'Traceback' not in no.stderr and 'TensorRT 10.3: 1 violation(s)' in no.stderr
    missing = _run_without_torch(main, '--check-trt', str(tmp_path / 'none.onnx'))
    assert missing.returncode == 2 and 'not found' in missing.stderr
    imports = _run_without_torch('import yolact_deploy.deploy.trt_conformance as t; '
                                 'print(sorted(m for m in sys.modules if m.startswith("yolact")))')
    assert imports.returncode == 0, imports.stderr


def test_export_options_refuse_opsets_tensorrt_cannot_parse():
    from yolact_deploy.config import get_preset
    from yolact_deploy.export import ExportError, ExportOptions, check_options
    cfg = get_preset('yolact_resnet50')
    with pytest.raises(ExportError, match='--opset 21 is outside .* TensorRT 10.3 .*--no-trt-check'):
        check_options(cfg, ExportOptions(opset=21))
    check_options(cfg, ExportOptions(opset=21, trt_check=False))
    check_options(cfg, ExportOptions(opset=20))


def test_engine_build_checks_the_graph_first(tmp_path, monkeypatch):
    """build_engine refuses a non-conformant graph in one line before any TensorRT work."""
    from test_tensorrt_build import tiny_onnx
    from yolact_deploy.export import tensorrt_build as tb
    path = tiny_onnx(tmp_path / 'm.onnx', 'fp16')
    model = onnx.load(path)
    model.graph.node.insert(0, helper.make_node('Transpose', ['images'], ['t'], perm=[0, 1, 2, 3]))
    model.graph.node[1].input[0] = 't'
    onnx.save(model, path)
    monkeypatch.setattr(tb.compat, 'import_tensorrt', lambda: object())
    monkeypatch.setattr(tb.compat, 'version', lambda trt=None: (10, 3, 0))
    with pytest.raises(tc.ConformanceError, match='UINT8') as e:
        tb.build_engine(path, str(tmp_path / 'm.plan'))
    assert '\n' not in str(e.value) and not (tmp_path / 'm.plan').exists()
