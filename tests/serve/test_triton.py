"""yolact-export --to triton: the repository layout and config.pbtxt checked against the engine
contract and against the model file's own tensors (no Triton server here)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from yolact_deploy.errors import YolactError
from yolact_deploy.export.triton import (CONTRACT_OUTPUTS, TritonError, build_repository,
                                         parse_pbtxt)

ONNX_TO_TRITON = {1: 'TYPE_FP32', 2: 'TYPE_UINT8', 6: 'TYPE_INT32', 7: 'TYPE_INT64', 10: 'TYPE_FP16'}


def load_config(model_dir: str) -> dict:
    with open(os.path.join(model_dir, 'config.pbtxt')) as f:
        return parse_pbtxt(f.read())


def one(cfg, key):
    values = cfg[key]
    assert len(values) == 1, (key, values)
    return values[0]


def check_contract(cfg: dict, meta: dict, max_batch: int):
    """The structural check: the fields Triton needs, consistent with the engine contract."""
    assert one(cfg, 'max_batch_size') == max_batch
    (inp,) = cfg['input']
    assert one(inp, 'name') == 'images' and one(inp, 'data_type') == 'TYPE_UINT8'
    assert len(inp['dims']) == 3 and inp['dims'][2] == 3  # [H, W, 3]; batch is implicit
    outs = {one(o, 'name'): o for o in cfg['output']}
    assert set(CONTRACT_OUTPUTS) <= set(outs)
    k = meta['max_detections']
    hp, wp = meta['proto_size']
    expect = {'num_detections': ('TYPE_INT32', [1]), 'boxes': (None, [k, 4]), 'scores': (None, [k]),
              'mask_scores': (None, [k]), 'classes': ('TYPE_INT32', [k]), 'masks': (None, [k, hp, wp])}
    for name, (dtype, dims) in expect.items():
        assert outs[name]['dims'] == dims, name
        if dtype:
            assert one(outs[name], 'data_type') == dtype
        else:
            assert one(outs[name], 'data_type') in ('TYPE_FP32', 'TYPE_FP16')
    db = one(cfg, 'dynamic_batching')
    assert one(db, 'max_queue_delay_microseconds') >= 0
    assert one(one(db, 'default_queue_policy'), 'max_queue_size') >= 1
    assert all(1 <= b <= max_batch for b in db.get('preferred_batch_size', []))
    (group,) = cfg['instance_group']
    assert one(group, 'kind') in ('KIND_GPU', 'KIND_CPU') and one(group, 'count') >= 1


def test_onnx_repository_matches_the_graph(serve_onnx, tmp_path):
    import onnx
    dest = build_repository(serve_onnx, str(tmp_path / 'repo'), max_batch=4,
                            preferred_batch_sizes=[2, 4], kind='cpu')
    assert dest == str(tmp_path / 'repo' / 'yolact')
    assert sorted(os.listdir(dest)) == ['1', 'README.md', 'config.pbtxt', 'yolact_metadata.json']
    with open(serve_onnx, 'rb') as a, open(os.path.join(dest, '1', 'model.onnx'), 'rb') as b:
        assert a.read() == b.read()
    cfg = load_config(dest)
    assert one(cfg, 'name') == 'yolact' and one(cfg, 'platform') == 'onnxruntime_onnx'
    with open(os.path.join(dest, 'yolact_metadata.json')) as f:
        meta = json.load(f)
    check_contract(cfg, meta, 4)
    assert one(one(cfg, 'instance_group'), 'kind') == 'KIND_CPU'
    assert one(cfg, 'dynamic_batching')['preferred_batch_size'] == [2, 4]
    # Every configured tensor agrees with the ONNX graph (name, type, dims after the batch dim).
    graph = onnx.load(serve_onnx, load_external_data=False).graph
    tensors = {vi.name: vi for vi in list(graph.input) + list(graph.output)}
    for entry in cfg['input'] + cfg['output']:
        vi = tensors[one(entry, 'name')]
        assert ONNX_TO_TRITON[vi.type.tensor_type.elem_type] == one(entry, 'data_type')
        dims = [d.dim_value if d.HasField('dim_value') else -1 for d in vi.type.tensor_type.shape.dim]
        assert dims[0] == -1 and entry['dims'] == dims[1:]
    assert len(meta['class_names']) == len(meta['category_ids']) > 0
    # The copied model runs and has the outputs the config promises.
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(dest, '1', 'model.onnx'),
                                providers=['CPUExecutionProvider'])
    assert {o.name for o in sess.get_outputs()} == {one(o, 'name') for o in cfg['output']}
    out = sess.run(['num_detections', 'masks'], {'images': np.zeros((2, 40, 50, 3), np.uint8)})
    assert out[0].shape == (2, 1) and list(out[1].shape[1:]) == cfg['output'][
        [one(o, 'name') for o in cfg['output']].index('masks')]['dims']


def test_cli_to_triton(serve_onnx, tmp_path, capsys):
    from yolact_deploy.cli.export import main
    repo = str(tmp_path / 'model_repository')
    assert main(['--to', 'triton', '--onnx', serve_onnx, '-o', repo, '--triton-name', 'seg',
                 '--triton-max-batch', '2', '--triton-max-queue', '16']) == 0
    assert 'wrote Triton model repository' in capsys.readouterr().out
    cfg = load_config(os.path.join(repo, 'seg'))
    assert one(cfg, 'name') == 'seg' and one(cfg, 'max_batch_size') == 2
    # An existing model folder is not overwritten silently.
    assert main(['--to', 'triton', '--onnx', serve_onnx, '-o', repo, '--triton-name', 'seg']) == 2
    assert 'exists' in capsys.readouterr().err
    assert main(['--to', 'triton', '--onnx', serve_onnx, '-o', repo, '--triton-name', 'seg',
                 '--triton-overwrite', '--triton-max-batch', '3']) == 0
    assert one(load_config(os.path.join(repo, 'seg')), 'max_batch_size') == 3
    assert not [d for d in os.listdir(repo) if d.startswith('.tmp')]
    assert main(['--to', 'triton', '--onnx', serve_onnx, '-o', repo, '--triton-preferred-batch',
                 '4,x']) == 2


def fake_engine(tmp_path, plugin=True, io=True, batch=(1, 2, 4), image=((32, 32), (4096, 4096))):
    """A stand-in .plan (bytes) with a sidecar written by the TensorRT build step's make_sidecar."""
    from yolact_deploy import config
    from yolact_deploy.export import tensorrt_build as tb
    from yolact_deploy.export.metadata import build_metadata
    cfg = config.get_preset('yolact_lite0_256')
    meta = build_metadata(cfg, raw=False, flavour='plugins' if plugin else 'portable',
                          precision='fp16', opset=19, max_detections=100, cross_class=False,
                          proto_size=(64, 64), output_names=CONTRACT_OUTPUTS)
    info = tb.OnnxInfo('m.onnx', meta, ['YolactFastNMS'] if plugin else [], False,
                       ['batch', 'height', 'width', 3], '0' * 64)
    options = tb.BuildOptions(batch=batch, image_min=image[0], image_max=image[1])
    tensors = [{'name': 'images', 'mode': 'input', 'dtype': 'UINT8', 'shape': [-1, -1, -1, 3]},
               {'name': 'num_detections', 'mode': 'output', 'dtype': 'INT32', 'shape': [-1, 1]},
               {'name': 'boxes', 'mode': 'output', 'dtype': 'FLOAT', 'shape': [-1, 100, 4]},
               {'name': 'scores', 'mode': 'output', 'dtype': 'FLOAT', 'shape': [-1, 100]},
               {'name': 'mask_scores', 'mode': 'output', 'dtype': 'FLOAT', 'shape': [-1, 100]},
               {'name': 'classes', 'mode': 'output', 'dtype': 'INT32', 'shape': [-1, 100]},
               {'name': 'masks', 'mode': 'output', 'dtype': 'HALF', 'shape': [-1, 100, 64, 64]}]
    plugin_rec = {'file': 'libyolact_plugins.so', 'path': '/opt/yolact/lib/libyolact_plugins.so',
                  'sha256': 'ab' * 32, 'ops': ['YolactFastNMS'], 'version': '1',
                  'namespace': ''} if plugin else None
    engine = tmp_path / 'model.plan'
    engine.write_bytes(b'not really a TensorRT engine')
    sidecar = tb.make_sidecar(engine_path=str(engine), engine_sha256='e' * 64,
                              trt_version='10.3.0.26', gpu={'name': 'Orin', 'compute_capability': '8.7'},
                              plan=tb.BuildPlan(True, [], False, False, 'fp16', plugin),
                              options=options, profile=options.profile(cfg.max_size), info=info,
                              plugin=plugin_rec, build_seconds=1.0, io_tensors=tensors if io else [])
    with open(tb.sidecar_path(str(engine)), 'w') as f:
        json.dump(sidecar, f)
    return str(engine), meta


def test_engine_repository(tmp_path):
    engine, meta = fake_engine(tmp_path)
    dest = build_repository(engine, str(tmp_path / 'repo'))
    assert sorted(os.listdir(os.path.join(dest, '1'))) == ['model.plan', 'model.plan.json']
    cfg = load_config(dest)
    assert one(cfg, 'platform') == 'tensorrt_plan'
    check_contract(cfg, meta, 4)  # the engine profile's max batch
    masks = [o for o in cfg['output'] if one(o, 'name') == 'masks'][0]
    assert one(masks, 'data_type') == 'TYPE_FP16'  # from the engine's I/O, not guessed
    assert one(cfg, 'input')['dims'] == [-1, -1, 3]
    readme = open(os.path.join(dest, 'README.md')).read()
    assert 'libyolact_triton_preload.so' in readme and 'YOLACT_PLUGINS_LIB' in readme
    assert 'plugins=' in readme
    # A fixed-size profile gives fixed dims; batch beyond the profile and CPU instances are refused.
    engine, meta = fake_engine(tmp_path, plugin=False, image=((256, 256), (256, 256)))
    dest = build_repository(engine, str(tmp_path / 'repo2'))
    assert one(load_config(dest), 'input')['dims'] == [256, 256, 3]
    assert 'preload' not in open(os.path.join(dest, 'README.md')).read()
    with pytest.raises(TritonError, match='exceeds the engine profile'):
        build_repository(engine, str(tmp_path / 'repo3'), max_batch=8)
    with pytest.raises(TritonError, match='GPU instances only'):
        build_repository(engine, str(tmp_path / 'repo3'), kind='cpu')
    engine, _ = fake_engine(tmp_path, io=False)
    with pytest.raises(TritonError, match='io_tensors'):
        build_repository(engine, str(tmp_path / 'repo3'))
    os.remove(engine + '.json')
    with pytest.raises(YolactError, match='no sidecar'):
        build_repository(engine, str(tmp_path / 'repo3'))
    assert not os.path.exists(tmp_path / 'repo3' / 'yolact')


def tiny_onnx(path, *, graph='end_to_end', flavour='portable', input_type=2, drop=()):
    """A hand-made graph with the contract's signature (Identity-like ops), for error paths."""
    import onnx
    from onnx import TensorProto, helper
    outs, nodes = [], []
    shapes = {'num_detections': (TensorProto.INT32, ['batch', 1]),
              'boxes': (TensorProto.FLOAT, ['batch', 5, 4]), 'scores': (TensorProto.FLOAT, ['batch', 5]),
              'mask_scores': (TensorProto.FLOAT, ['batch', 5]),
              'classes': (TensorProto.INT32, ['batch', 5]),
              'masks': (TensorProto.FLOAT, ['batch', 5, 8, 8])}
    for name, (t, shape) in shapes.items():
        if name in drop:
            continue
        outs.append(helper.make_tensor_value_info(name, t, shape))
        nodes.append(helper.make_node('ConstantOfShape', ['shape_' + name], [name],
                                      value=helper.make_tensor('v', t, [1], [0])))
    inits = [helper.make_tensor('shape_' + n, TensorProto.INT64, [len(s)], [1] * len(s))
             for n, (t, s) in shapes.items() if n not in drop]
    g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info(
        'images', input_type, ['batch', 'height', 'width', 3])], outs, initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid('', 19)])
    entry = model.metadata_props.add()
    entry.key = 'yolact_deploy'
    entry.value = json.dumps({'schema': 1, 'graph': graph, 'flavour': flavour, 'max_detections': 5,
                              'proto_size': [8, 8], 'class_names': ['a'], 'category_ids': [1],
                              'input': {'network_size': [64, 64]}})
    onnx.save(model, path)
    return path


@pytest.mark.parametrize('kwargs, needle', [
    ({'graph': 'raw'}, 'raw graph'),
    ({'flavour': 'plugins'}, 'plugin nodes'),
    ({'input_type': 1}, 'expected images TYPE_UINT8'),
    ({'drop': ('masks',)}, 'lacks the contract outputs masks'),
])
def test_onnx_errors(tmp_path, kwargs, needle):
    pytest.importorskip('onnx')
    path = tiny_onnx(str(tmp_path / 'm.onnx'), **kwargs)
    with pytest.raises(TritonError, match=needle):
        build_repository(path, str(tmp_path / 'repo'))
    assert not os.path.exists(tmp_path / 'repo' / 'yolact')


def test_tiny_onnx_ok_and_mask_scores_optional(tmp_path):
    pytest.importorskip('onnx')
    path = tiny_onnx(str(tmp_path / 'm.onnx'), drop=('mask_scores',))
    cfg = load_config(build_repository(path, str(tmp_path / 'repo')))
    assert [one(o, 'name') for o in cfg['output']] == ['num_detections', 'boxes', 'scores',
                                                        'classes', 'masks']
    with pytest.raises(YolactError, match='not found'):
        build_repository(str(tmp_path / 'nope.onnx'), str(tmp_path / 'repo'))
    with pytest.raises(TritonError, match='invalid Triton model name'):
        build_repository(path, str(tmp_path / 'repo'), name='a/b')


def test_parse_pbtxt():
    cfg = parse_pbtxt('''
      # comment
      name: "m \\"q\\"" platform: 'x'
      max_batch_size: 8
      input [ { name: "a", dims: [ -1, 3 ] }, { name: "b" dims: [1] } ]
      dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 }
      parameters { key: "k" value: { string_value: "v" } }
      flag: true ratio: 0.5
    ''')
    assert cfg['name'] == ['m "q"'] and cfg['platform'] == ['x'] and cfg['max_batch_size'] == [8]
    assert [i['name'][0] for i in cfg['input']] == ['a', 'b'] and cfg['input'][0]['dims'] == [-1, 3]
    assert cfg['dynamic_batching'][0]['preferred_batch_size'] == [2, 4]
    assert cfg['parameters'][0]['value'][0]['string_value'] == ['v']
    assert cfg['flag'] == [True] and cfg['ratio'] == [0.5]
    for bad in ('name: "x', 'input [ { name: "a" ', '{'):
        with pytest.raises((ValueError, IndexError)):
            parse_pbtxt(bad)
