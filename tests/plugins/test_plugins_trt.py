"""TensorRT engines built from one-node plugin ONNX graphs, against yolact_deploy.ops, FP32 and FP16.

Needs a CUDA GPU, the TensorRT Python package and libyolact_plugins.so (scripts/build_plugins.sh on
that machine); skips with the reason otherwise. Engines are strongly typed (FP16 is the graph's input
type, as on TensorRT 11), loaded through IPluginRegistry.load_library like trtexec --dynamicPlugins.
"""
import numpy as np
import pytest
import torch

from yolact_deploy import plugins as P
from yolact_deploy.ops.dcn import deformable_im2col, output_size
from yolact_deploy.ops.nms import fast_nms

from plugin_cases import dcn_case, nms_case, random_boxes

trt = pytest.importorskip('tensorrt', reason='TensorRT Python package not installed: the plugin '
                          'engine tests run on a GPU machine with TensorRT')
if not torch.cuda.is_available():
    pytest.skip('no CUDA device: the plugin engine tests need a GPU', allow_module_level=True)
if P.find_library(P.TRT_LIBRARY) is None:
    pytest.skip(f'{P.TRT_LIBRARY} not built: run scripts/build_plugins.sh on this machine',
                allow_module_level=True)

from onnx import TensorProto, helper  # noqa: E402

NUM_CASES = 20
LOGGER = trt.Logger(trt.Logger.WARNING)
MAJOR = int(trt.__version__.split('.')[0])
_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
          np.dtype(np.int32): torch.int32}


@pytest.fixture(scope='module')
def registry():
    reg = trt.get_plugin_registry()
    if reg.get_creator(P.FAST_NMS, P.PLUGIN_VERSION, P.PLUGIN_NAMESPACE) is None:
        handle = reg.load_library(str(P.trt_library_path()))
        assert handle is not None, f'load_library({P.trt_library_path()}) failed'
    for name in (P.DEFORM_IM2COL, P.FAST_NMS):
        assert reg.get_creator(name, P.PLUGIN_VERSION, P.PLUGIN_NAMESPACE) is not None, name
    return reg


def _onnx(node, inputs: dict, outputs: dict) -> bytes:
    """A one-node model with static shapes; inputs/outputs: name -> (TensorProto type, shape)."""
    vi = helper.make_tensor_value_info
    graph = helper.make_graph([node], 'plugin', [vi(n, t, s) for n, (t, s) in inputs.items()],
                              [vi(n, t, s) for n, (t, s) in outputs.items()])
    model = helper.make_model(graph, ir_version=9,
                              opset_imports=[helper.make_opsetid('', 19), P.opset_import()])
    return model.SerializeToString()


def _engine(model: bytes):
    builder = trt.Builder(LOGGER)
    flags = 0
    if MAJOR < 11:   # 11.x is always strongly typed and has no such flag value to set
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, LOGGER)
    if not parser.parse(model):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        pytest.fail('ONNX parse failed: ' + '; '.join(errors))
    config = builder.create_builder_config()
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, 'engine build failed'
    return trt.Runtime(LOGGER).deserialize_cuda_engine(plan)


def _run(engine, feeds: dict) -> dict:
    context = engine.create_execution_context()
    buffers = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            buffers[name] = torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda()
        else:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = tuple(context.get_tensor_shape(name))
            buffers[name] = torch.empty(shape, dtype=_TORCH[dtype], device='cuda')
        context.set_tensor_address(name, buffers[name].data_ptr())
    stream = torch.cuda.current_stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return {n: t.cpu().numpy() for n, t in buffers.items() if n not in feeds}


def _onnx_type(dtype) -> int:
    return TensorProto.FLOAT16 if np.dtype(dtype) == np.float16 else TensorProto.FLOAT


def _im2col_engine_output(x, off, mask, attrs):
    node = P.deform_im2col_node('x', 'offset', 'mask', 'cols', **attrs)
    kh, kw = P._pair(attrs['kernel_size'])
    t = _onnx_type(x.dtype)
    out_shape = [x.shape[0], x.shape[1] * kh * kw, off.shape[2] * off.shape[3]]
    model = _onnx(node, {'x': (t, x.shape), 'offset': (t, off.shape), 'mask': (t, mask.shape)},
                  {'cols': (t, out_shape)})
    return _run(_engine(model), {'x': x, 'offset': off, 'mask': mask})['cols']


def _im2col_ref(x, off, mask, attrs):
    return deformable_im2col(*(torch.from_numpy(a.astype(np.float32)) for a in (x, off, mask)),
                             **attrs).numpy()


@pytest.mark.parametrize('dtype', [np.float32, np.float16])
def test_deform_im2col_engine_matches_ops(registry, dtype):
    for i in range(NUM_CASES):
        x, off, mask, attrs = dcn_case(i, dtype)
        got = _im2col_engine_output(x, off, mask, attrs)
        want = _im2col_ref(x, off, mask, attrs)
        if dtype == np.float32:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f'case {i} {attrs}')
        else:   # FP32 compute on the FP16 values, rounded once
            np.testing.assert_array_equal(got, want.astype(np.float16), err_msg=f'case {i} {attrs}')


@pytest.mark.parametrize('dtype', [np.float32, np.float16])
def test_deform_im2col_engine_at_yolact_plus_stage2_shape(registry, dtype):
    rng = np.random.default_rng(0)
    h = w = 69
    ho = output_size(h, 3, 1, 1, 1)
    x = rng.standard_normal((2, 128, h, w)).astype(dtype)
    off = (rng.standard_normal((2, 18, ho, ho)) * 3).astype(dtype)
    mask = rng.random((2, 9, ho, ho)).astype(dtype)
    attrs = dict(kernel_size=3, stride=1, padding=1, dilation=1)
    got = _im2col_engine_output(x, off, mask, attrs)
    want = _im2col_ref(x, off, mask, attrs)
    tol = 1e-5 if dtype == np.float32 else 0
    np.testing.assert_allclose(got.astype(np.float32), want.astype(dtype).astype(np.float32),
                               rtol=0, atol=tol)


def _nms_engine_outputs(boxes, scores, attrs):
    node = P.fast_nms_node('boxes', 'scores', **attrs)
    b, k = boxes.shape[0], attrs['max_detections']
    t = _onnx_type(boxes.dtype)
    i32 = TensorProto.INT32
    outputs = dict(zip(P.FAST_NMS_OUTPUTS, [(i32, [b, 1]), (t, [b, k, 4]), (t, [b, k]), (i32, [b, k]),
                                            (i32, [b, k])]))
    model = _onnx(node, {'boxes': (t, boxes.shape), 'scores': (t, scores.shape)}, outputs)
    return _run(_engine(model), {'boxes': boxes, 'scores': scores})


def _check_nms(got, boxes, scores, attrs, where):
    ref = fast_nms(*(torch.from_numpy(a.astype(np.float32)) for a in (boxes, scores)), **attrs)
    dtype = boxes.dtype
    np.testing.assert_array_equal(got['num_detections'][:, 0], ref.num_detections.numpy(), where)
    np.testing.assert_array_equal(got['indices'], ref.indices.numpy(), where)
    np.testing.assert_array_equal(got['classes'], ref.classes.numpy(), where)
    np.testing.assert_array_equal(got['scores'], ref.scores.numpy().astype(dtype), where)
    valid = got['indices'] >= 0
    np.testing.assert_array_equal(got['boxes'][valid], ref.boxes.numpy().astype(dtype)[valid], where)
    assert not got['boxes'][~valid].any(), where


def test_fast_nms_engine_refuses_fp16(registry):
    """NMS stays FP32: an FP16-typed YolactFastNMS node must not build (the exporters cast around it)."""
    boxes, scores, attrs = nms_case(0, np.float16)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        _nms_engine_outputs(boxes, scores, attrs)


@pytest.mark.parametrize('dtype', [np.float32])
def test_fast_nms_engine_matches_ops(registry, dtype):
    for i in range(NUM_CASES):
        boxes, scores, attrs = nms_case(i, dtype)
        _check_nms(_nms_engine_outputs(boxes, scores, attrs), boxes, scores, attrs,
                   f'case {i} {attrs}')


@pytest.mark.parametrize('dtype', [np.float32])
def test_fast_nms_engine_at_official_shapes(registry, dtype):
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 2, 57744).astype(dtype)
    logits = torch.from_numpy(rng.standard_normal((2, 57744, 81)).astype(np.float32) * 3)
    scores = torch.softmax(logits, -1)[..., 1:].numpy().astype(dtype)
    attrs = dict(conf_thresh=0.05, iou_threshold=0.5, top_k=200, max_detections=100)
    _check_nms(_nms_engine_outputs(boxes, scores, attrs), boxes, scores, attrs, 'official shapes')
