"""The engine sidecar's JSON Schema (yolact_deploy/deploy/schemas), shared with the C++ runtime.

The C++ side (engines/src/sidecar_schema.cpp) is checked against the same file and a corpus of edited
sidecars by the engines ctest ``fx_sidecar_corpus_agrees_with_python``.
"""
import copy
import json
import os
import re

import pytest

from yolact_deploy.deploy.sidecar_schema import SidecarError, sidecar_errors, sidecar_schema, validate_sidecar
from yolact_deploy.export import tensorrt_build as tb
from yolact_deploy.export.metadata import build_metadata
from yolact_deploy import config as yconfig
from yolact_deploy.runtime import tensorrt_backend as rt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def written_sidecar(plugin: bool) -> dict:
    """A sidecar from the TensorRT build step's own make_sidecar, with real ONNX metadata."""
    cfg = yconfig.get_preset('yolact_lite0_256')
    lib = {'file': 'libyolact_plugins.so', 'path': '/opt/lib/libyolact_plugins.so', 'sha256': 'ab' * 32,
           'ops': ['YolactFastNMS'], 'version': '1', 'namespace': ''} if plugin else None
    meta = build_metadata(cfg, raw=False, flavour='plugins' if plugin else 'portable', precision='fp16',
                          opset=19, max_detections=100, cross_class=False, proto_size=[64, 64],
                          output_names=('num_detections', 'boxes', 'scores', 'mask_scores', 'classes',
                                        'masks'))
    info = tb.OnnxInfo('m.onnx', meta, ['YolactFastNMS'] if plugin else [], False,
                       ['batch', 'height', 'width', 3], '0' * 64)
    options = tb.BuildOptions()
    sc = tb.make_sidecar(engine_path='m.plan', engine_sha256='e' * 64, trt_version='10.3.0.26',
                         gpu={'index': 0, 'name': 'Orin', 'compute_capability': '8.7'},
                         plan=tb.BuildPlan(True, [], False, False, 'fp16', plugin), options=options,
                         profile=options.profile(cfg.max_size), info=info, plugin=lib, build_seconds=1.0)
    return json.loads(json.dumps(sc))   # as read back from the file


@pytest.mark.parametrize('plugin', [False, True])
def test_python_written_sidecar_follows_the_schema(plugin):
    assert sidecar_errors(written_sidecar(plugin)) == []


BAD = [
    ('/engine_sha256', 'E' * 64, 'engine_sha256'),
    ('/tensorrt_version', 'ten', 'tensorrt_version'),
    ('/gpu/compute_capability', 87, 'gpu/compute_capability'),
    ('/profiles', [], 'profiles'),
    ('/profiles/0/max', [4, 4096, 3], 'profiles/0/max'),
    ('/plugin_library', {'file': 'x.so'}, 'plugin_library'),
    ('/model/graph', 'other', 'model/graph'),
    ('/model/class_names', 'person', 'model/class_names'),
    ('/model/input/network_size', [0, 550], 'model/input/network_size/0'),
    ('/kind', 'other', 'kind'),
]


def set_pointer(doc, pointer, value):
    doc = copy.deepcopy(doc)
    *path, last = pointer.split('/')[1:]
    node = doc
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return doc


@pytest.mark.parametrize('pointer,value,where', BAD)
def test_broken_sidecars_are_rejected_in_one_line(pointer, value, where):
    doc = set_pointer(written_sidecar(False), pointer, value)
    with pytest.raises(SidecarError) as exc:
        validate_sidecar(doc)
    msg = str(exc.value)
    assert '\n' not in msg and f' {where}: ' in msg, msg
    for key in ('schema', 'model', 'gpu'):
        broken = written_sidecar(False)
        del broken[key]
        assert f"'{key}' is a required property" in ' '.join(sidecar_errors(broken))


def test_runtime_reads_only_schema_valid_sidecars(tmp_path):
    engine = tmp_path / 'm.plan'
    engine.write_bytes(b'\0' * 8)
    good = written_sidecar(True)
    (tmp_path / 'm.plan.json').write_text(json.dumps(good))
    assert rt.read_sidecar(str(engine))['plugin_library']['ops'] == ['YolactFastNMS']
    (tmp_path / 'm.plan.json').write_text(json.dumps(set_pointer(good, '/profiles/0/min/0', 0)))
    with pytest.raises(rt.EngineError, match=r'm.plan.json: engine sidecar does not follow the schema: '
                                             r'profiles/0/min/0: 0 is less than the minimum of 1'):
        rt.read_sidecar(str(engine))


def test_schema_uses_only_keywords_the_cpp_validator_implements():
    """engines/src/sidecar_schema.cpp refuses other keywords at run time; this says so before a build."""
    src = open(os.path.join(ROOT, 'engines', 'src', 'sidecar_schema.cpp')).read()
    block = re.search(r'kKeywords = \{(.*?)\};', src, re.S).group(1)
    supported = set(re.findall(r'"([$\w]+)"', block))
    used = set()

    def walk(node):
        if isinstance(node, dict):
            used.update(node)
            for key in ('properties', '$defs'):
                for sub in node.get(key, {}).values():
                    walk(sub)
            if isinstance(node.get('items'), dict):
                walk(node['items'])
    walk(sidecar_schema())
    assert used <= supported, used - supported
    # The schema is package data: setup.py ships it.
    assert "'deploy/schemas/*.json'" in open(os.path.join(ROOT, 'setup.py')).read()
