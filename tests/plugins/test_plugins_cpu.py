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

def _dcn_case(i: int, dtype=np.float32):
    """Case i: shapes, per-axis attributes and inputs; i % 10 picks the adversarial kind."""
    rng = np.random.default_rng(10_000 + i)
    kind = i % 10
    while True:
        dg, cpg, batch = (int(v) for v in rng.integers(1, 4, size=3))
        kh, kw, sh, sw = (int(v) for v in rng.integers(1, 4, size=4))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        ho, wo = output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw)
        if ho >= 1 and wo >= 1:
            break
    c = dg * cpg
    taps = kh * kw
    x = rng.standard_normal((batch, c, h, w))
    off_shape = (batch, 2 * dg * taps, ho, wo)
    mask = rng.random((batch, dg * taps, ho, wo))
    if kind == 5:      # far outside the input, both signs
        off = rng.choice([-1, 1], size=off_shape) * 10.0 ** rng.uniform(3, 6, size=off_shape)
    elif kind == 6:    # whole-pixel offsets: corners exactly on the grid and on the edges
        off = rng.integers(-max(h, w) - 2, max(h, w) + 3, size=off_shape).astype(np.float64)
    elif kind == 7:    # positions at -1, 0, H-1, H (+- a hair): the inside test's boundaries
        edges = np.array([-1.0, 0.0, h - 1.0, float(h), w - 1.0, float(w)])
        target = rng.choice(edges, size=off_shape) + rng.choice([0.0, 1e-6, -1e-6], size=off_shape)
        off = target - rng.integers(-2, 3, size=off_shape)
    elif kind == 8:    # zero mask
        off = rng.standard_normal(off_shape) * 2
        mask = np.zeros_like(mask)
    elif kind == 9:    # mixed scales, masks outside [0, 1]
        off = rng.standard_normal(off_shape) * rng.choice([0.5, 5.0, 500.0], size=off_shape)
        mask = rng.standard_normal(mask.shape) * 2
    else:
        off = rng.standard_normal(off_shape) * 2
    if dtype == np.float16:
        off = np.clip(off, -6e4, 6e4)   # stay finite: non-finite offsets are outside the contract
    attrs = dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    return x.astype(dtype), off.astype(dtype), mask.astype(dtype), attrs


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

def _boxes(rng, batch, n):
    xy = rng.random((batch, n, 2))
    wh = rng.random((batch, n, 2)) * 0.5
    return np.concatenate([xy, xy + wh], -1)


def _nms_case(i: int, dtype=np.float32):
    """Case i: inputs and attributes; i % 12 picks the adversarial kind."""
    rng = np.random.default_rng(20_000 + i)
    kind = i % 12
    batch = int(rng.integers(1, 4))
    n = int(rng.integers(1, 70))
    c = int(rng.integers(1, 7))
    boxes = _boxes(rng, batch, n)
    logits = rng.standard_normal((batch, n, c + 1)) * 2
    scores = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores = scores[..., 1:]
    attrs = dict(conf_thresh=float(rng.choice([0.0, 0.05, 0.1, 0.3])),
                 iou_threshold=float(rng.choice([0.3, 0.5, 0.7, rng.uniform(0.05, 0.95)])),
                 top_k=int(rng.integers(1, n + 10)), max_detections=int(rng.integers(1, 40)),
                 cross_class=bool(rng.random() < 0.3), second_threshold=bool(rng.random() < 0.2))
    if kind == 1:      # no detection above the threshold
        attrs['conf_thresh'] = float(scores.max()) if rng.random() < 0.5 else 1.0
    elif kind == 2:    # every box overlapping: identical, or all nested around one centre
        if rng.random() < 0.5:
            boxes = np.broadcast_to(boxes[:, :1], boxes.shape).copy()
        else:
            half = rng.uniform(0.2, 0.3, size=(batch, n, 1))
            boxes = np.concatenate([0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half], -1)
    elif kind == 3:    # equal scores: a few levels, or all the same
        levels = np.array([0.5]) if rng.random() < 0.3 else np.array([0.0, 0.25, 0.5, 0.75])
        scores = rng.choice(levels, size=scores.shape)
    elif kind == 4:    # K larger than the candidates
        attrs['max_detections'] = n * c + int(rng.integers(1, 20))
        attrs['top_k'] = n + int(rng.integers(0, 5))
    elif kind == 5:    # zero-area boxes (0/0 IoU is NaN in the reference, which suppresses)
        zero = rng.random((batch, n)) < 0.5
        boxes[zero, 2] = boxes[zero, 0]
    elif kind == 6:    # cross-class with tied best classes
        attrs['cross_class'] = True
        scores = rng.choice(np.array([0.1, 0.4, 0.4, 0.7]), size=scores.shape)
    elif kind == 7:    # scores exactly at the threshold, and -0.0
        attrs['conf_thresh'] = 0.25
        scores = rng.choice(np.array([0.25, 0.5, -0.0, 0.0, 0.2500001]), size=scores.shape)
    elif kind == 8:    # second threshold on
        attrs['second_threshold'] = True
        attrs['conf_thresh'] = 0.1
    elif kind == 9:    # larger lists: more priors and classes than the rest
        n, c = int(rng.integers(150, 400)), int(rng.integers(8, 30))
        boxes = _boxes(rng, batch, n)
        scores = rng.random((batch, n, c)) ** 4
        attrs['top_k'] = int(rng.integers(20, 200))
        attrs['max_detections'] = int(rng.integers(20, 120))
    elif kind == 10:   # raw, partly negative scores
        scores = rng.standard_normal(scores.shape)
    elif kind == 11:   # NaN scores (the prior drops out) and NaN box coordinates
        scores[rng.random(scores.shape) < 0.05] = np.nan
        boxes[rng.random(boxes.shape) < 0.05] = np.nan
    return boxes.astype(dtype), scores.astype(dtype), attrs


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
    # Padding boxes are zero. ops._select multiplies a gathered box by 0 there, so a NaN coordinate
    # in prior 0's box turns its padding into NaN (reported; the plugin keeps the documented zeros).
    assert not got.boxes[~valid].any(), where
    ref_pad = ref_boxes[~valid]
    assert not ref_pad[~np.isnan(ref_pad)].any(), where
    if np.isnan(ref_pad).any():
        assert np.isnan(boxes[:, 0]).any(), where


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
    """YOLACT++ 550 sizes: 57744 priors x 80 classes, official thresholds, batch 2."""
    rng = np.random.default_rng(7)
    batch, n, c = 2, 57744, 80
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
