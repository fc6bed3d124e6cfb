"""The plugins' CPU instance against the semantic reference yolact_deploy.ops.

Every plugin gets >= 500 FP32 cases (random and adversarial: offsets far outside the input, exact
boundaries, zero masks; no detection above threshold, every box overlapping, equal scores, K larger
than the candidates, zero-area and NaN boxes, batch > 1) held to the issue's 1e-5 in FP32, plus FP16
cases, where the reference is ops in FP32 on the FP16 inputs, rounded once to FP16.
YOLACT_PLUGIN_CASES overrides the case count (the AddressSanitizer run uses the same default).
"""
import os

import numpy as np
import pytest
import torch

from yolact_deploy import plugins as P
from yolact_deploy.ops.dcn import (deformable_im2col, modulated_deform_conv2d,
                                   modulated_deform_conv2d_reference, output_size)
from yolact_deploy.ops.nms import fast_nms

from plugin_cases import dcn_case as _dcn_case, nms_case as _nms_case, random_boxes as _boxes

NUM_CASES = int(os.environ.get('YOLACT_PLUGIN_CASES', '520'))
NUM_FP16_CASES = max(NUM_CASES // 8, 10)
FP32_ATOL = 1e-5

pytestmark = pytest.mark.usefixtures('cpu_lib')


# ------------------------------------------------------------------------------------------------
# binary16 conversions used by the kernels' CPU path

def test_half_to_float_is_exact_for_every_half():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    got = P.half_to_float_cpu(bits)
    want = bits.view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(got, want)   # NaN == NaN here


def test_float_to_half_rounds_like_numpy():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 2 ** 32, size=1 << 20, dtype=np.uint64).astype(np.uint32).view(np.float32)
    near = (rng.standard_normal(1 << 18) * 1e-4).astype(np.float32)          # subnormal range
    # Exact midpoints between neighbouring halves, and the overflow edge.
    halves = np.arange(0, 0x7c00, dtype=np.uint16).view(np.float16).astype(np.float32)
    mid = ((halves[:-1].astype(np.float64) + halves[1:]) / 2).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 65504, 65519.99, 65520, -65520, 2 ** -25,
                        2 ** -24, 3 * 2 ** -26, 2 ** -14], np.float32)
    values = np.concatenate([raw, near, mid, -mid, special])
    got = P.float_to_half_cpu(values)
    with np.errstate(over='ignore'):
        want = values.astype(np.float16)
    nan = np.isnan(values)
    np.testing.assert_array_equal(got[~nan], want[~nan].view(np.uint16))
    assert np.isnan(got[nan].view(np.float16)).all()


# ------------------------------------------------------------------------------------------------
# YolactDeformIm2col

def _dcn_reference(x, off, mask, attrs) -> np.ndarray:
    t = [torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in (x, off, mask)]
    return deformable_im2col(*t, **attrs).numpy()


def test_deform_im2col_fp32_matches_ops():
    worst, exact = 0.0, 0
    for i in range(NUM_CASES):
        x, off, mask, attrs = _dcn_case(i)
        got = P.deform_im2col_cpu(x, off, mask, **attrs)
        want = _dcn_reference(x, off, mask, attrs)
        assert got.shape == want.shape and got.dtype == np.float32
        diff = float(np.abs(got - want).max()) if got.size else 0.0
        assert diff <= FP32_ATOL, f'case {i} {attrs}: max |diff| {diff}'
        worst = max(worst, diff)
        exact += int(np.array_equal(got, want))
    print(f'deform_im2col FP32: {NUM_CASES} cases, max |diff| {worst:g}, bit-identical {exact}')


def test_deform_im2col_fp16_matches_ops_rounded_once():
    for i in range(NUM_FP16_CASES):
        x, off, mask, attrs = _dcn_case(i, np.float16)
        got = P.deform_im2col_cpu(x, off, mask, **attrs)
        want = _dcn_reference(x, off, mask, attrs).astype(np.float16)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, want, err_msg=f'case {i} {attrs}')


def test_deform_im2col_accepts_torch_and_returns_torch():
    x, off, mask, attrs = _dcn_case(3)
    got = P.deform_im2col_cpu(torch.from_numpy(x), torch.from_numpy(off), torch.from_numpy(mask), **attrs)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), _dcn_reference(x, off, mask, attrs))


@pytest.mark.parametrize('groups,dg', [(1, 1), (2, 1), (4, 2), (2, 4)])
def test_im2col_plus_grouped_matmul_is_the_modulated_deform_conv(groups, dg):
    """The graph form: plugin columns, then a grouped MatMul (what the TensorRT MatMul computes)."""
    rng = np.random.default_rng(groups * 10 + dg)
    batch, cin, cout, h, w = 2, 8, 12, 9, 7
    kh, kw, stride, pad, dil = 3, 3, (2, 1), (1, 2), (1, 2)
    ho, wo = output_size(h, kh, 2, 1, 1), output_size(w, kw, 1, 2, 2)
    x = torch.from_numpy(rng.standard_normal((batch, cin, h, w)).astype(np.float32))
    off = torch.from_numpy(rng.standard_normal((batch, 2 * dg * 9, ho, wo)).astype(np.float32) * 2)
    mask = torch.from_numpy(rng.random((batch, dg * 9, ho, wo)).astype(np.float32))
    weight = torch.from_numpy(rng.standard_normal((cout, cin // groups, kh, kw)).astype(np.float32))
    bias = torch.from_numpy(rng.standard_normal(cout).astype(np.float32))
    cols = P.deform_im2col_cpu(x, off, mask, (kh, kw), stride, pad, dil)      # [B, Cin*9, Ho*Wo]
    cols = cols.reshape(batch, groups, cin // groups * kh * kw, ho * wo)
    out = torch.matmul(weight.reshape(groups, cout // groups, -1)[None], cols)
    out = out.reshape(batch, cout, ho, wo) + bias.reshape(1, -1, 1, 1)
    ref = modulated_deform_conv2d_reference(x, off, mask, weight, bias, stride, pad, dil, groups)
    torch.testing.assert_close(out, ref, rtol=0, atol=FP32_ATOL)
    tv = modulated_deform_conv2d(x, off, mask, weight, bias, stride, pad, dil)
    torch.testing.assert_close(out, tv, rtol=1e-4, atol=1e-4)   # torchvision accumulates differently


def test_deform_im2col_rejects_bad_input():
    x, off, mask, attrs = _dcn_case(0)
    with pytest.raises(P.PluginError, match='share a dtype'):
        P.deform_im2col_cpu(x, off.astype(np.float16), mask, **attrs)
    with pytest.raises(P.PluginError, match='not supported'):
        P.deform_im2col_cpu(x.astype(np.float64), off, mask, **attrs)
    with pytest.raises(P.PluginError, match='multiple of'):
        P.deform_im2col_cpu(x, off, mask[:, :1], kernel_size=(3, 3))
    with pytest.raises(P.PluginError, match='invalid shape or attribute'):
        P.deform_im2col_cpu(x, off, mask, **{**attrs, 'stride': 0})


# ------------------------------------------------------------------------------------------------
# YolactFastNMS

def _nms_reference(boxes, scores, attrs):
    t = [torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in (boxes, scores)]
    return fast_nms(*t, **attrs)


def _compare_nms(got, ref, boxes, where: str, out_dtype=np.float32):
    batch = ref.num_detections.shape[0]
    assert got.num_detections.shape == (batch, 1) and got.num_detections.dtype == np.int32
    assert got.classes.dtype == np.int32 and got.indices.dtype == np.int32
    np.testing.assert_array_equal(got.num_detections[:, 0], ref.num_detections.numpy(), err_msg=where)
    np.testing.assert_array_equal(got.indices, ref.indices.numpy(), err_msg=where)
    np.testing.assert_array_equal(got.classes, ref.classes.numpy(), err_msg=where)
    np.testing.assert_array_equal(got.scores, ref.scores.numpy().astype(out_dtype), err_msg=where)
    valid = got.indices >= 0
    ref_boxes = ref.boxes.numpy().astype(out_dtype)
    np.testing.assert_array_equal(got.boxes[valid], ref_boxes[valid], err_msg=where)
    # Padding boxes are exactly zero on both sides, even when some input box holds a NaN.
    assert not got.boxes[~valid].any(), where
    assert not ref_boxes[~valid].any() and not np.isnan(ref_boxes[~valid]).any(), where


def test_fast_nms_fp32_matches_ops():
    kept = 0
    for i in range(NUM_CASES):
        boxes, scores, attrs = _nms_case(i)
        got = P.fast_nms_cpu(boxes, scores, **attrs)
        ref = _nms_reference(boxes, scores, attrs)
        _compare_nms(got, ref, boxes, f'case {i} {attrs}')
        kept += int(ref.num_detections.sum())
    print(f'fast_nms FP32: {NUM_CASES} cases identical to ops, {kept} detections in total')


def test_fast_nms_fp16_matches_ops_on_fp16_values():
    for i in range(NUM_FP16_CASES):
        boxes, scores, attrs = _nms_case(i, np.float16)
        got = P.fast_nms_cpu(boxes, scores, **attrs)
        assert got.boxes.dtype == np.float16 and got.scores.dtype == np.float16
        _compare_nms(got, _nms_reference(boxes, scores, attrs), boxes, f'case {i} {attrs}', np.float16)


def test_fast_nms_official_shapes():
    """YOLACT++ 550 sizes: 57744 priors x 80 classes, official thresholds."""
    rng = np.random.default_rng(7)
    batch, n, c = 1, 57744, 80
    boxes = _boxes(rng, batch, n).astype(np.float32)
    logits = rng.standard_normal((batch, n, c + 1)).astype(np.float32) * 3
    scores = torch.softmax(torch.from_numpy(logits), -1)[..., 1:].contiguous().numpy()
    attrs = dict(conf_thresh=0.05, iou_threshold=0.5, top_k=200, max_detections=100)
    got = P.fast_nms_cpu(boxes, scores, **attrs)
    ref = _nms_reference(boxes, scores, attrs)
    assert int(ref.num_detections.min()) == 100
    _compare_nms(got, ref, boxes, 'official shapes')


def test_fast_nms_rejects_bad_input():
    boxes, scores, attrs = _nms_case(0)
    with pytest.raises(P.PluginError, match='share a dtype'):
        P.fast_nms_cpu(boxes, scores.astype(np.float16), **attrs)
    with pytest.raises(P.PluginError, match=r'\[B, N, 4\]'):
        P.fast_nms_cpu(boxes[..., :3], scores, **attrs)
    with pytest.raises(P.PluginError, match='invalid shape or attribute'):
        P.fast_nms_cpu(boxes, scores, **{**attrs, 'top_k': 0})


def test_missing_library_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv('YOLACT_PLUGINS_CPU_LIB', str(tmp_path / 'nope.so'))
    with pytest.raises(P.PluginLibraryError, match='not found'):
        P.cpu_library_path()
