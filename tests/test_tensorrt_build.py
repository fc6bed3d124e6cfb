"""TensorRT engine building and the TensorRT backend.

Everything that needs no GPU runs everywhere: the build plan for 10.x and 11.x, presets and profile
options, ONNX inspection, the sidecar and every compatibility check (with fake sidecars), the
one-line errors of yolact-export --to trt and of the backend without TensorRT. The tests marked
``gpu`` build and run real engines; they skip with the reason when TensorRT or a GPU is missing.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from yolact_deploy import trt_compat as compat
from yolact_deploy.errors import InputError, YolactError
from yolact_deploy.cli import export as export_cli
from yolact_deploy.export import tensorrt_build as tb
from yolact_deploy.runtime import tensorrt_backend as rt

V10 = (10, 3, 0)
V11 = (11, 4, 0)


# ---------------------------------------------------------------------------------------------------
# helpers

def tiny_onnx(path, precision='fp32', plugin_ops=(), qdq=False, input_dims=('batch', 'height',
                                                                            'width', 3)):
    """A minimal graph with our metadata: images uint8 [B,H,W,3] -> Cast -> out."""
    import onnx
    from onnx import TensorProto, helper

    from yolact_deploy.export.metadata import attach_metadata
    nodes = [helper.make_node('Cast', ['images'], ['x'], to=TensorProto.FLOAT)]
    last = 'x'
    if qdq:
        nodes += [helper.make_node('QuantizeLinear', ['x', 's'], ['q']),
                  helper.make_node('DequantizeLinear', ['q', 's'], ['dq'])]
        last = 'dq'
    for i, op in enumerate(plugin_ops):
        nodes.append(helper.make_node(op, [last], [f'p{i}'], domain='yolact_deploy'))
        last = f'p{i}'
    # the end-to-end output names (inspect_onnx checks the graph is the kind its metadata says)
    outs = ['num_detections', 'boxes', 'scores', 'classes', 'masks']
    nodes += [helper.make_node('Identity', [last], [o]) for o in outs]
    inits = [helper.make_tensor('s', TensorProto.FLOAT, [], [0.1])] if qdq else []
    graph = helper.make_graph(
        nodes, 'tiny', [helper.make_tensor_value_info('images', TensorProto.UINT8, list(input_dims))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19)])
    attach_metadata(model, {'schema': 1, 'preset': 'tiny', 'precision': precision,
                            'flavour': 'plugins' if plugin_ops else 'portable',
                            'class_names': ['a'], 'category_ids': [1],
                            'input': {'network_size': [64, 64]}, 'graph': 'end_to_end'})
    onnx.save(model, str(path))
    return str(path)


def info_for(precision='fp32', plugin_ops=(), qdq=False):
    meta = {'precision': precision, 'input': {'network_size': [550, 550]}, 'graph': 'end_to_end',
            'flavour': 'plugins' if plugin_ops else 'portable', 'preset': 'tiny',
            'class_names': ['a', 'b'], 'category_ids': [1, 2]}
    return tb.OnnxInfo('m.onnx', meta,
                       list(plugin_ops), qdq, ['batch', 'height', 'width', 3], '0' * 64)


# ---------------------------------------------------------------------------------------------------
# The build plan: 10.x vs 11.x

def test_fp16_default_is_strongly_typed_from_the_fp16_graph_on_both_majors():
    for ver in (V10, V11):
        plan = tb.plan_build(info_for('fp16'), tb.BuildOptions(precision='fp16'), ver)
        assert plan.strongly_typed and plan.flags == [] and plan.precision_label == 'fp16'


def test_fp16_from_fp32_graph_needs_weak_mode_on_10x_and_is_refused_on_11x():
    with pytest.raises(tb.BuildError, match='--fp16-mode weak'):
        tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='fp16'), V10)
    plan = tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='fp16', fp16_mode='weak'), V10)
    assert not plan.strongly_typed and plan.flags == ['FP16'] and plan.precision_label == 'fp16-weak'
    with pytest.raises(tb.BuildError, match='FP32 graph') as e:
        tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='fp16'), V11)
    assert 'weak' not in str(e.value)
    with pytest.raises(tb.BuildError, match='removed in 11.0'):
        tb.plan_build(info_for('fp16'), tb.BuildOptions(precision='fp16', fp16_mode='weak'), V11)
    with pytest.raises(tb.BuildError, match='takes the FP32 graph'):
        tb.plan_build(info_for('fp16'), tb.BuildOptions(precision='fp16', fp16_mode='weak'), V10)


def test_fp32_build_needs_fp32_graph():
    for ver in (V10, V11):
        assert tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='fp32'), ver).strongly_typed
        with pytest.raises(tb.BuildError, match='FP32 engine needs the FP32'):
            tb.plan_build(info_for('fp16'), tb.BuildOptions(precision='fp32'), ver)


def test_int8_without_calibration_images_is_a_clear_error():
    for ver in (V10, V11):
        with pytest.raises(tb.BuildError, match='--int8 needs calibration images'):
            tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='int8'), ver)


def test_int8_calibration_route_on_10x(tmp_path):
    (tmp_path / 'a.jpg').write_bytes(b'x')
    plan = tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='int8',
                                                           calib_images=str(tmp_path)), V10)
    assert plan.calibrate and plan.flags == ['FP16', 'INT8'] and not plan.strongly_typed
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(tb.BuildError, match='no images'):
        tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='int8', calib_images=str(empty)),
                      V10)
    with pytest.raises(tb.BuildError, match='not found'):
        tb.plan_build(info_for('fp32'), tb.BuildOptions(precision='int8',
                                                        calib_images=str(tmp_path / 'nope')), V10)


def test_int8_on_11x_needs_qdq_or_modelopt(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'x')
    opts = tb.BuildOptions(precision='int8', calib_images=str(tmp_path))
    with pytest.raises(tb.BuildError, match='modelopt.onnx.quantization'):
        tb.plan_build(info_for('fp32'), opts, V11, modelopt_available=False)
    plan = tb.plan_build(info_for('fp32'), opts, V11, modelopt_available=True)
    assert plan.modelopt_quantize and plan.strongly_typed
    for ver in (V10, V11):   # a Q/DQ graph needs no images, and builds strongly typed
        plan = tb.plan_build(info_for('fp32', qdq=True), tb.BuildOptions(precision='int8'), ver)
        assert plan.strongly_typed and plan.precision_label == 'int8-qdq' and not plan.calibrate


def test_plugin_graph_is_detected():
    plan = tb.plan_build(info_for('fp16', plugin_ops=['YolactFastNMS']), tb.BuildOptions(), V10)
    assert plan.needs_plugins


# ---------------------------------------------------------------------------------------------------
# Options, presets, profiles

def test_parse_batch_and_sizes():
    assert tb.parse_triple('1,4,8') == (1, 4, 8)
    assert tb.parse_triple('2') == (2, 2, 2)
    for bad in ('0,1,2', '4,2,8', '1,2', 'a'):
        with pytest.raises(tb.BuildError):
            tb.parse_triple(bad)
    assert tb.parse_size('720x1280') == (720, 1280)
    assert tb.parse_size('640') == (640, 640)
    assert tb.parse_image_sizes('480x640') == ((480, 640),) * 3
    assert tb.parse_image_sizes('32x32,net,1080x1920') == ((32, 32), None, (1080, 1920))
    with pytest.raises(tb.BuildError):
        tb.parse_image_sizes('100x100,50x50,200x200')
    with pytest.raises(tb.BuildError):
        tb.parse_size('1x')


def test_presets_load_and_make_valid_profiles():
    names = tb.list_presets()
    assert {'desktop_fp16', 'jetson_orin_fp16', 'int8'} <= set(names)
    for name in names:
        opts = tb.options_from_preset(tb.load_preset(name))
        prof = opts.profile(550)
        for i in range(3):
            assert prof['min'][i] <= prof['opt'][i] <= prof['max'][i]
        assert prof['opt'][1:3] == [550, 550]
    jetson = tb.options_from_preset(tb.load_preset('jetson_orin_fp16'))
    assert jetson.precision == 'fp16' and jetson.workspace_mib <= 2048
    assert tb.options_from_preset(tb.load_preset('int8')).precision == 'int8'
    with pytest.raises(tb.BuildError, match='unknown preset'):
        tb.load_preset('no_such_preset')


def test_preset_with_unknown_key_is_rejected(tmp_path):
    p = tmp_path / 'x.json'
    p.write_text(json.dumps({'precision': 'fp16', 'batchsize': 3}))
    with pytest.raises(tb.BuildError, match='unknown keys'):
        tb.load_preset(str(p))


def test_cli_flags_override_preset():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--fp16', action='store_true')
    parser.add_argument('--plugins', action='store_true')
    export_cli.add_trt_arguments(parser)
    args = parser.parse_args(['--preset', 'desktop_fp16', '--batch', '1,2,2', '--workspace', '512',
                              '--image-size', '480x640'])
    opts = export_cli.trt_options_from_args(args)
    assert opts.batch == (1, 2, 2) and opts.workspace_mib == 512 and opts.precision == 'fp16'
    assert opts.profile(550)['max'] == [2, 480, 640, 3]
    with pytest.raises(tb.BuildError, match='exclude'):
        export_cli.trt_options_from_args(parser.parse_args(['--int8', '--fp32']))
    with pytest.raises(tb.BuildError, match='opt-level'):
        export_cli.trt_options_from_args(parser.parse_args(['--opt-level', '7']))


def test_profile_against_static_graph_dims():
    info = info_for()
    info.input_shape = [1, 'height', 'width', 3]
    prof = tb.BuildOptions(batch=(1, 1, 4)).profile(550)
    with pytest.raises(tb.BuildError, match='fixed batch of 1'):
        tb.check_profile_against_graph(info, prof)
    tb.check_profile_against_graph(info, tb.BuildOptions(batch=(1, 1, 1)).profile(550))


# ---------------------------------------------------------------------------------------------------
# ONNX inspection

def test_inspect_onnx_finds_metadata_plugins_and_qdq(tmp_path):
    info = tb.inspect_onnx(tiny_onnx(tmp_path / 'p.onnx', 'fp16', plugin_ops=['YolactFastNMS']))
    assert info.precision == 'fp16' and info.plugin_ops == ['YolactFastNMS'] and not info.has_qdq
    assert info.input_shape == ['batch', 'height', 'width', 3] and info.network_size == 64
    info = tb.inspect_onnx(tiny_onnx(tmp_path / 'q.onnx', qdq=True))
    assert info.has_qdq and info.plugin_ops == []
    with pytest.raises(InputError, match='not found'):
        tb.inspect_onnx(str(tmp_path / 'missing.onnx'))
    bad = tmp_path / 'bad.onnx'
    bad.write_bytes(b'not a protobuf at all \x00\xff')
    with pytest.raises(YolactError):
        tb.inspect_onnx(str(bad))


# ---------------------------------------------------------------------------------------------------
# Sidecar and compatibility checks (fake sidecars; no GPU)

def fake_sidecar(**over):
    plan = tb.BuildPlan(True, [], False, False, 'fp16', False)
    info = info_for('fp16')
    sc = tb.make_sidecar(engine_path='m.plan', engine_sha256='e' * 64, trt_version='10.3.0.26',
                         gpu={'name': 'Orin', 'compute_capability': '8.7'}, plan=plan,
                         options=tb.BuildOptions(), profile=tb.BuildOptions().profile(550),
                         info=info, plugin=None, build_seconds=12.0)
    sc.update(over)
    return sc


ORIN = {'name': 'Orin', 'compute_capability': '8.7'}


def test_sidecar_content():
    sc = fake_sidecar()
    assert sc['kind'] == rt.SIDECAR_KIND and sc['schema'] == rt.SIDECAR_SCHEMA
    assert sc['profiles'][0] == {'input': 'images', 'min': [1, 32, 32, 3], 'opt': [1, 550, 550, 3],
                                 'max': [4, 4096, 4096, 3]}
    assert sc['model']['precision'] == 'fp16' and sc['precision'] == 'fp16'
    json.dumps(sc)
    assert rt.check_compatibility(sc, installed_trt='10.3.0.26', gpu=ORIN,
                                  engine_sha256='e' * 64) == []


def test_engine_from_another_tensorrt_version():
    with pytest.raises(rt.EngineError, match=r'built with TensorRT 10.3.0.26 but TensorRT 11.4.0'):
        rt.check_compatibility(fake_sidecar(), installed_trt='11.4.0.106', gpu=ORIN)
    with pytest.raises(rt.EngineError, match='rebuild it here'):
        rt.check_compatibility(fake_sidecar(), installed_trt='10.16.2', gpu=ORIN)


def test_engine_for_another_gpu():
    h100 = {'name': 'NVIDIA H100 80GB HBM3', 'compute_capability': '9.0'}
    with pytest.raises(rt.EngineError, match=r'compute capability 8.7 \(Orin\).*H100.*9.0'):
        rt.check_compatibility(fake_sidecar(), installed_trt='10.3.0', gpu=h100)
    warn = rt.check_compatibility(fake_sidecar(), installed_trt='10.3.0',
                                  gpu={'name': 'Orin NX', 'compute_capability': '8.7'})
    assert len(warn) == 1 and 'same compute capability' in warn[0]


def test_engine_and_sidecar_must_match():
    with pytest.raises(rt.EngineError, match='does not belong'):
        rt.check_compatibility(fake_sidecar(), installed_trt='10.3.0', gpu=ORIN,
                               engine_sha256='f' * 64)


def _fake_elf(path, machine):
    head = bytearray(64)
    head[:4] = b'\x7fELF'
    head[4], head[5] = 2, 1
    head[18:20] = int(machine).to_bytes(2, 'little')
    path.write_bytes(bytes(head))
    return str(path)


def test_plugin_library_checks(tmp_path):
    plugin = {'file': 'libyolact_plugins.so', 'sha256': 'a' * 64, 'ops': ['YolactFastNMS']}
    sc = fake_sidecar(plugin_library=plugin)
    kw = dict(installed_trt='10.3.0', gpu=ORIN, machine='x86_64')
    with pytest.raises(rt.EngineError, match='needs the plugin library.*YolactFastNMS'):
        rt.check_compatibility(sc, plugin_path=None, **kw)
    with pytest.raises(rt.EngineError, match='not found'):
        rt.check_compatibility(sc, plugin_path=str(tmp_path / 'nope.so'), **kw)
    arm = _fake_elf(tmp_path / 'arm.so', 183)
    with pytest.raises(rt.EngineError, match='built for aarch64, this machine is x86_64'):
        rt.check_compatibility(sc, plugin_path=arm, plugin_sha256='a' * 64, **kw)
    txt = tmp_path / 'text.so'
    txt.write_text('hello')
    with pytest.raises(rt.EngineError, match='not an ELF'):
        rt.check_compatibility(sc, plugin_path=str(txt), **kw)
    good = _fake_elf(tmp_path / 'x86.so', 62)
    assert rt.check_compatibility(sc, plugin_path=good, plugin_sha256='a' * 64, **kw) == []
    with pytest.raises(rt.EngineError, match='not the one'):
        rt.check_compatibility(sc, plugin_path=good, plugin_sha256='b' * 64, **kw)
    warn = rt.check_compatibility(sc, plugin_path=good, plugin_sha256='b' * 64,
                                  strict_plugin=False, **kw)
    assert 'sha256 differs' in warn[0]


def test_read_sidecar_errors(tmp_path):
    engine = tmp_path / 'm.plan'
    engine.write_bytes(b'\x00' * 16)
    with pytest.raises(rt.EngineError, match='has no sidecar'):
        rt.read_sidecar(str(engine))
    side = tmp_path / 'm.plan.json'
    side.write_text('{not json')
    with pytest.raises(rt.EngineError, match='cannot read'):
        rt.read_sidecar(str(engine))
    side.write_text(json.dumps({'kind': 'something else'}))
    with pytest.raises(rt.EngineError, match='not a yolact-deploy engine sidecar'):
        rt.read_sidecar(str(engine))
    side.write_text(json.dumps(fake_sidecar(schema=99)))
    with pytest.raises(rt.EngineError, match='upgrade'):
        rt.read_sidecar(str(engine))
    side.write_text(json.dumps(fake_sidecar()))
    assert rt.read_sidecar(str(engine))['engine_sha256'] == 'e' * 64


def test_batch_and_size_beyond_profile():
    prof = rt.profile_of(fake_sidecar())
    rt.check_input((4, 480, 640, 3), prof)
    with pytest.raises(InputError, match=r'batch 8 is outside the engine profile \(batch 1..4\)'):
        rt.check_input((8, 480, 640, 3), prof)
    with pytest.raises(InputError, match='image size 8000x640 is outside'):
        rt.check_input((1, 8000, 640, 3), prof)
    with pytest.raises(InputError, match=r'\[B, H, W, 3\]'):
        rt.check_input((1, 480, 640), prof)


def test_normalize_contract_and_device_names():
    out = rt.normalize_contract({'num_detections': np.array([[3]], np.int32),
                                 'classes': np.zeros((1, 2), np.int32),
                                 'masks': np.zeros((1, 2, 4, 4), np.float16)})
    assert out['num_detections'].shape == (1,) and out['classes'].dtype == np.int64
    assert out['masks'].dtype == np.float32
    assert rt.cuda_device_index(None) == 0 and rt.cuda_device_index('cpu') == 0
    assert rt.cuda_device_index('cuda:1') == 1
    with pytest.raises(InputError):
        rt.cuda_device_index('tpu')


def test_build_progress_lines():
    import io
    buf = io.StringIO()
    p = tb.BuildProgress(stream=buf, min_interval=0)
    p.phase_start('Building engine', None, 3)
    p.phase_start('Tactic selection', 'Building engine', 10)
    assert p.step_complete('Tactic selection', 4) is True
    p.phase_finish('Tactic selection')
    p.phase_finish('Building engine')
    text = buf.getvalue()
    assert 'Building engine' in text and 'done in' in text
    p.cancelled = True
    assert p.step_complete('Building engine', 1) is False


# ---------------------------------------------------------------------------------------------------
# Without TensorRT: one line, exit code 2

no_trt = pytest.mark.skipif(compat.tensorrt_available(),
                            reason='TensorRT is installed: this checks the message without it')


@no_trt
def test_export_to_trt_without_tensorrt_is_one_line_exit_2(tmp_path, capsys):
    from yolact_deploy.cli import export as cli
    onnx_path = tiny_onnx(tmp_path / 'm.onnx', 'fp16')
    code = cli.main(['--to', 'trt', '--onnx', onnx_path, '-o', str(tmp_path / 'm.plan')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith('error: ') and 'TensorRT' in err[-1]
    assert not (tmp_path / 'm.plan').exists()


@no_trt
def test_build_engine_without_tensorrt_is_one_line(tmp_path):
    with pytest.raises(compat.TensorRTUnavailable) as e:
        tb.build_engine(tiny_onnx(tmp_path / 'm.onnx', 'fp16'), str(tmp_path / 'm.plan'))
    assert '\n' not in str(e.value)


@no_trt
def test_backend_without_tensorrt_is_one_line(tmp_path):
    from yolact_deploy.runtime import load_predictor
    engine = tmp_path / 'm.plan'
    engine.write_bytes(b'\x00' * 16)
    (tmp_path / 'm.plan.json').write_text(json.dumps(fake_sidecar()))
    with pytest.raises(YolactError) as e:
        load_predictor(str(engine))
    assert '\n' not in str(e.value) and 'TensorRT' in str(e.value)


# ---------------------------------------------------------------------------------------------------
# With TensorRT and a GPU: real builds (skipped here, with the reason)

def _require_trt_gpu():
    pytest.importorskip('tensorrt', reason='TensorRT is not installed on this machine')
    try:
        return compat.gpu_info(0)
    except YolactError as exc:
        pytest.skip(f'no usable CUDA GPU: {exc}')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """FP32 and FP16 end-to-end ONNX graphs of a small lively-random model (shared exports)."""
    _require_trt_gpu()
    from yolact_deploy.testing import make_test_model as make_model

    from yolact_deploy.export.onnx_export import ExportOptions, export_onnx
    d = tmp_path_factory.mktemp('trt')
    model = make_model('yolact_resnet50', 256)
    paths = {}
    for precision in ('fp32', 'fp16'):
        paths[precision] = str(d / f'm_{precision}.onnx')
        export_onnx(model, paths[precision], ExportOptions(fp16=precision == 'fp16', max_batch=4),
                    quiet=True)
    return model, paths, d


@pytest.mark.gpu
@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_gpu_build_run_and_match_pytorch(exported, precision):
    model, paths, d = exported
    from yolact_deploy.assets import sample_images
    from yolact_deploy.runtime.torch_backend import TorchPredictor
    from yolact_deploy.transforms import load_image
    engine = str(d / f'm_{precision}.plan')
    sidecar = tb.build_engine(paths[precision], engine, tb.BuildOptions(
        precision=precision, batch=(1, 2, 4), image_max=(1024, 1024),
        timing_cache=str(d / 'timing.cache')), quiet=True)
    assert os.path.isfile(engine) and os.path.isfile(tb.sidecar_path(engine))
    assert sidecar['precision'] == precision and sidecar['gpu']['compute_capability']
    pred = rt.create(engine)
    ref = TorchPredictor(model)
    images = [load_image(p) for p in sample_images()[:2]]
    for image in images:
        a = ref.predict_batch([image]).detections
        b = pred.predict_batch([image]).detections
        tol = 1e-3 if precision == 'fp32' else 5e-2
        n = int(a['num_detections'][0])
        assert abs(n - int(b['num_detections'][0])) <= (0 if precision == 'fp32' else 3)
        if precision == 'fp32':
            np.testing.assert_allclose(b['boxes'][0, :n], a['boxes'][0, :n], atol=tol)
    same = np.stack([images[0]] * 2)
    out = pred.infer(same, timed=True)
    assert out['boxes'].shape[0] == 2 and pred.last_timing['total'] > 0
    with pytest.raises(InputError, match='outside the engine profile'):
        pred.infer(np.stack([images[0]] * 5))
    pred.close()


@pytest.mark.gpu
def test_gpu_cuda_graph_matches_plain_run(exported):
    _, paths, d = exported
    engine = str(d / 'g.plan')
    tb.build_engine(paths['fp16'], engine, tb.BuildOptions(batch=(1, 1, 2),
                                                           image_max=(1024, 1024)), quiet=True)
    from yolact_deploy.assets import default_sample
    from yolact_deploy.transforms import load_image
    x = load_image(default_sample())[None]
    plain = rt.create(engine).infer(x)
    graphed = rt.create(engine, cuda_graph=True)
    for _ in range(3):
        out = graphed.infer(x)
    for k in plain:
        np.testing.assert_array_equal(plain[k], out[k])


@pytest.mark.gpu
def test_gpu_engine_with_wrong_sidecar_version_is_refused(exported):
    _, paths, d = exported
    engine = str(d / 'v.plan')
    tb.build_engine(paths['fp16'], engine, tb.BuildOptions(batch=(1, 1, 1),
                                                           image_max=(1024, 1024)), quiet=True)
    side = json.loads(open(tb.sidecar_path(engine)).read())
    side['tensorrt_version'] = '9.9.9'
    with open(tb.sidecar_path(engine), 'w') as f:
        json.dump(side, f)
    with pytest.raises(rt.EngineError, match='built with TensorRT 9.9.9'):
        rt.create(engine)


@pytest.mark.gpu
def test_gpu_polygraphy_engine_vs_onnxruntime(exported):
    pytest.importorskip('polygraphy', reason='polygraphy is not installed')
    _, paths, d = exported
    engine = str(d / 'p.plan')
    tb.build_engine(paths['fp32'], engine, tb.BuildOptions(precision='fp32', batch=(1, 1, 1),
                                                           image_max=(1024, 1024)), quiet=True)
    report = rt.polygraphy_compare(engine, paths['fp32'], image_size=(480, 640), atol=1e-3,
                                   rtol=1e-3)
    assert 'boxes' in report['outputs']
