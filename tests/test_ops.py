"""Reference ops on constructed cases: Fast NMS, modulated deformable conv, crop, boxes, masks.

The expected values are worked out by hand (or by a few-line loop written here independently of the
vectorised ops), so a wrong op fails these tests rather than agreeing with itself.
"""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolact_deploy.ops import (assemble_masks, crop, decode, encode, fast_nms, jaccard,
                               modulated_deform_conv2d, modulated_deform_conv2d_reference,
                               sanitize_coordinates, split_offset_mask, standard_nms)
from yolact_deploy.ops.dcn import deformable_im2col

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------
# Fast NMS
# ------------------------------------------------------------------------------------------------
def _nms_inputs(boxes, scores):
    return (torch.tensor(boxes, dtype=torch.float32)[None],
            torch.tensor(scores, dtype=torch.float32)[None])


def _dets(d, b=0):
    n = int(d.num_detections[b])
    return [(int(d.indices[b, i]), int(d.classes[b, i]), round(float(d.scores[b, i]), 6))
            for i in range(n)]


# A overlaps B (IoU 2/3), B overlaps C (IoU 2/3), A and C overlap less (IoU 3/7 < 0.5).
CHAIN = [[0.00, 0.0, 0.50, 0.5], [0.10, 0.0, 0.60, 0.5], [0.20, 0.0, 0.70, 0.5]]


def test_chain_boxes_have_the_intended_overlaps():
    iou = jaccard(torch.tensor(CHAIN), torch.tensor(CHAIN))
    assert iou[0, 1] == pytest.approx(2 / 3, abs=1e-6)
    assert iou[1, 2] == pytest.approx(2 / 3, abs=1e-6)
    assert iou[0, 2] == pytest.approx(3 / 7, abs=1e-6)


def test_fast_nms_relaxation_differs_from_standard_nms():
    # Standard NMS: A removes B; C survives because its only strong overlap was with B, which is
    # gone. Fast NMS: B still suppresses C although B itself was suppressed.
    boxes, scores = _nms_inputs(CHAIN, [[0.9], [0.8], [0.7]])
    fast = fast_nms(boxes, scores, conf_thresh=0.05, iou_threshold=0.5)
    std = standard_nms(boxes, scores, conf_thresh=0.05, iou_threshold=0.5)
    assert _dets(fast) == [(0, 0, 0.9)]
    assert _dets(std) == [(0, 0, 0.9), (2, 0, 0.7)]


def test_iou_exactly_at_threshold_is_kept():
    # keep = iou_max <= threshold (official), so IoU == threshold does not suppress.
    boxes, scores = _nms_inputs(CHAIN[:2], [[0.9], [0.8]])
    d = fast_nms(boxes, scores, iou_threshold=2 / 3 + 1e-6)
    assert [i for i, _, _ in _dets(d)] == [0, 1]
    d = fast_nms(boxes, scores, iou_threshold=0.6)
    assert [i for i, _, _ in _dets(d)] == [0]


def test_class_wise_versus_cross_class():
    # Same box, two classes. Class-wise NMS keeps one detection per class; cross-class keeps one.
    box = [0.1, 0.1, 0.5, 0.5]
    boxes, scores = _nms_inputs([box, box], [[0.9, 0.0], [0.0, 0.8]])
    assert _dets(fast_nms(boxes, scores)) == [(0, 0, 0.9), (1, 1, 0.8)]
    assert _dets(fast_nms(boxes, scores, cross_class=True)) == [(0, 0, 0.9)]


def test_survivors_below_conf_thresh_are_kept_like_the_official_code():
    # Prior 0 is a candidate through class 0; its class-1 entry (score 0.01) survives NMS in class
    # 1's list and is reported (the official Fast NMS has no second threshold by default).
    boxes, scores = _nms_inputs([[0.1, 0.1, 0.5, 0.5]], [[0.9, 0.01]])
    assert _dets(fast_nms(boxes, scores)) == [(0, 0, 0.9), (0, 1, 0.01)]
    assert _dets(fast_nms(boxes, scores, second_threshold=True)) == [(0, 0, 0.9)]


def test_conf_threshold_is_strict():
    boxes, scores = _nms_inputs([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7]], [[0.25], [0.2500001]])
    for cross in (False, True):
        d = fast_nms(boxes, scores, conf_thresh=0.25, cross_class=cross)
        assert [i for i, _, _ in _dets(d)] == [1]
    assert [i for i, _, _ in _dets(standard_nms(boxes, scores, conf_thresh=0.25))] == [1]


def test_ties_keep_the_lower_prior_index_first():
    far = [[0.0, 0.0, 0.1, 0.1], [0.3, 0.3, 0.4, 0.4], [0.6, 0.6, 0.7, 0.7], [0.8, 0.8, 0.9, 0.9]]
    boxes, scores = _nms_inputs(far, [[0.5], [0.6], [0.5], [0.5]])
    for cross in (False, True):
        assert [i for i, _, _ in _dets(fast_nms(boxes, scores, cross_class=cross))] == [1, 0, 2, 3]
    # Tied and overlapping: the lower index ranks first, so it is the one kept.
    same = [[0.2, 0.2, 0.6, 0.6]] * 3
    boxes, scores = _nms_inputs(same, [[0.1], [0.7], [0.7]])
    for cross in (False, True):
        assert [i for i, _, _ in _dets(fast_nms(boxes, scores, cross_class=cross))] == [1]


def test_top_k_limits_each_class_list_before_nms():
    # Three far-apart boxes; top_k=2 drops the lowest-scoring one before NMS even looks at it.
    far = [[0.0, 0.0, 0.1, 0.1], [0.3, 0.3, 0.4, 0.4], [0.6, 0.6, 0.7, 0.7]]
    boxes, scores = _nms_inputs(far, [[0.5], [0.9], [0.7]])
    assert [i for i, _, _ in _dets(fast_nms(boxes, scores, top_k=2))] == [1, 2]


def test_padding_when_k_exceeds_the_detections():
    boxes, scores = _nms_inputs([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.8, 0.8]], [[0.9], [0.6]])
    for cross in (False, True):
        d = fast_nms(boxes, scores, max_detections=7, cross_class=cross)
        assert d.boxes.shape == (1, 7, 4) and d.scores.shape == (1, 7)
        assert int(d.num_detections[0]) == 2
        assert d.classes[0, 2:].tolist() == [-1] * 5 and d.indices[0, 2:].tolist() == [-1] * 5
        assert torch.all(d.scores[0, 2:] == 0) and torch.all(d.boxes[0, 2:] == 0)
        torch.testing.assert_close(d.boxes[0, :2], boxes[0, [0, 1]])


def test_max_detections_truncates_by_score():
    far = [[0.1 * i, 0.0, 0.1 * i + 0.05, 0.05] for i in range(6)]
    boxes, scores = _nms_inputs(far, [[0.1 + 0.1 * i] for i in range(6)])
    d = fast_nms(boxes, scores, max_detections=3)
    assert int(d.num_detections[0]) == 3 and [i for i, _, _ in _dets(d)] == [5, 4, 3]


def test_no_candidates():
    boxes, scores = _nms_inputs([[0.0, 0.0, 0.2, 0.2]] * 4, [[0.01, 0.05]] * 4)
    for cross in (False, True):
        d = fast_nms(boxes, scores, conf_thresh=0.05, max_detections=5, cross_class=cross)
        assert int(d.num_detections[0]) == 0
        assert d.classes.tolist() == [[-1] * 5] and d.indices.tolist() == [[-1] * 5]
        assert torch.all(d.scores == 0) and torch.all(d.boxes == 0)


def _random_case(seed, n=60, c=4):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 0.8
    wh = 0.05 + torch.rand(n, 2, generator=g) * 0.25
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.softmax(torch.randn(n, c + 1, generator=g) * 2, -1)[:, 1:]
    return boxes, scores


def _oracle_fast_nms(boxes, scores, conf, thr, top_k, max_det, cross_class):
    """The official per-image algorithm as plain loops (float64 IoU)."""
    b = boxes.double().numpy()
    s = scores.double().numpy()

    def iou(p, q):
        iw = max(0.0, min(b[p, 2], b[q, 2]) - max(b[p, 0], b[q, 0]))
        ih = max(0.0, min(b[p, 3], b[q, 3]) - max(b[p, 1], b[q, 1]))
        inter = iw * ih
        area = lambda k: (b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1])  # noqa: E731
        return inter / (area(p) + area(q) - inter)

    cand = [p for p in range(len(b)) if s[p].max() > conf]
    lists = ([(None, sorted(cand, key=lambda p: -s[p].max())[:top_k])] if cross_class else
             [(c, sorted(cand, key=lambda p: -s[p, c])[:top_k]) for c in range(s.shape[1])])
    dets = []
    for c, order in lists:
        for r, p in enumerate(order):
            if all(iou(order[q], p) <= thr for q in range(r)):   # suppressed ones still count
                cls = int(s[p].argmax()) if c is None else c
                dets.append((p, cls, float(s[p, cls])))
    dets.sort(key=lambda d: -d[2])
    return [(p, c, round(v, 6)) for p, c, v in dets[:max_det]]


@pytest.mark.parametrize('cross_class', [False, True])
def test_fast_nms_matches_a_loop_oracle_batched(cross_class):
    cases = [_random_case(s) for s in range(3)]
    boxes = torch.stack([c[0] for c in cases])
    scores = torch.stack([c[1] for c in cases])
    kw = dict(conf_thresh=0.2, iou_threshold=0.3, top_k=15, max_detections=20)
    d = fast_nms(boxes, scores, cross_class=cross_class, **kw)
    for b, (bx, sc) in enumerate(cases):
        expected = _oracle_fast_nms(bx, sc, 0.2, 0.3, 15, 20, cross_class)
        assert len(expected) > 3
        assert _dets(d, b) == expected
        # batching does not mix images
        single = fast_nms(bx[None], sc[None], cross_class=cross_class, **kw)
        assert _dets(single) == expected


_TOPK = torch.topk


def _topk_reverse_ties(values, k, dim=-1, largest=True, sorted=True):
    """torch.topk with the opposite tie rule (higher index first): an allowed ITopKLayer order."""
    v, i = _TOPK(values.flip(dim), k, dim=dim, largest=largest, sorted=sorted)
    return v, values.shape[dim] - 1 - i


def test_tie_free_topk_equals_the_stable_sort_whatever_topk_does_with_ties():
    from yolact_deploy.ops.nms import tie_free_topk
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        n = int(torch.randint(2, 50, (1,), generator=g))
        k = int(torch.randint(1, n + 1, (1,), generator=g))
        pool = torch.tensor([0.3, 0.7, 0.5, -1.0, float('-inf')])   # NMS keys: sentinels too
        values = pool[torch.randint(0, 5, (2, 3, n), generator=g)]
        ref_v, ref_i = torch.sort(values, dim=-1, descending=True, stable=True)
        for topk in (torch.topk, _topk_reverse_ties):
            v, i = tie_free_topk(values, k, topk=topk)
            assert torch.equal(v, ref_v[..., :k]) and torch.equal(i, ref_i[..., :k])
    # the plain selection depends on the tie rule: this is what the graph must not rely on
    values = torch.tensor([[0.5, 0.9, 0.5, 0.9]])
    assert not torch.equal(_topk_reverse_ties(values, 3)[1], torch.topk(values, 3)[1])


@pytest.mark.parametrize('cross_class', [False, True])
def test_exported_fast_nms_does_not_depend_on_topk_tie_order(monkeypatch, cross_class):
    """Fast NMS as exported (TopK path) gives the eager reference result under either tie rule, on
    inputs full of exact ties (overlapping boxes, repeated scores, more candidates than top_k)."""
    from yolact_deploy.ops import nms
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(2, 40, 2, generator=g) * 0.8
    boxes = torch.cat([xy, xy + 0.15], -1)
    scores = torch.tensor([0.3, 0.7, 0.3, 0.02])[torch.randint(0, 4, (2, 40, 3), generator=g)]
    kw = dict(conf_thresh=0.05, iou_threshold=0.5, top_k=6, max_detections=5,
              cross_class=cross_class)
    ref = fast_nms(boxes, scores, **kw)
    monkeypatch.setattr(nms, '_exporting', lambda: True)
    for topk in (torch.topk, _topk_reverse_ties):
        monkeypatch.setattr(torch, 'topk', topk)
        out = fast_nms(boxes, scores, **kw)
        for a, b in zip(ref, out):
            assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------
# Modulated deformable convolution
# ------------------------------------------------------------------------------------------------
def _dcn_both(x, offset, mask, weight, bias, stride, padding, dilation):
    """Both implementations; asserts they agree and returns the reference result."""
    ref = modulated_deform_conv2d_reference(x, offset, mask, weight, bias, stride, padding, dilation)
    tv = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(tv, ref, rtol=1e-5, atol=1e-5)
    return ref


def _out_hw(h, w, k, stride, padding, dilation):
    return tuple((n + 2 * p - (d * (k - 1) + 1)) // s + 1
                 for n, s, p, d in zip((h, w), stride, padding, dilation))


@pytest.mark.parametrize('stride,padding,dilation,dg', [
    ((1, 1), (1, 1), (1, 1), 1),
    ((2, 1), (1, 2), (2, 1), 1),     # asymmetric everything
    ((1, 2), (0, 3), (1, 3), 2),     # two deformable groups
])
def test_dcn_zero_offsets_unit_mask_is_plain_conv(stride, padding, dilation, dg):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 9, 11, generator=g)
    weight = torch.randn(5, 4, 3, 3, generator=g)
    bias = torch.randn(5, generator=g)
    ho, wo = _out_hw(9, 11, 3, stride, padding, dilation)
    offset = torch.zeros(2, dg * 18, ho, wo)
    mask = torch.ones(2, dg * 9, ho, wo)
    out = _dcn_both(x, offset, mask, weight, bias, stride, padding, dilation)
    expected = F.conv2d(x, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # a constant modulation scales the conv (bias untouched)
    out = _dcn_both(x, offset, mask * 0.25, weight, bias, stride, padding, dilation)
    expected = F.conv2d(x, weight, None, stride, padding, dilation) * 0.25 + bias.view(1, -1, 1, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_dcn_reference_with_groups_is_grouped_conv():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 6, 8, 8, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)   # groups=2
    offset = torch.zeros(1, 18, 8, 8)
    mask = torch.ones(1, 9, 8, 8)
    out = modulated_deform_conv2d_reference(x, offset, mask, weight, None, 1, 1, 1, groups=2)
    torch.testing.assert_close(out, F.conv2d(x, weight, None, 1, 1, 1, groups=2),
                               rtol=1e-5, atol=1e-5)
    # torchvision infers the groups from the weight shape
    tv = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1)
    torch.testing.assert_close(tv, out, rtol=1e-5, atol=1e-5)


def _shift(x, dy, dx):
    """out[..., y, x] = x[..., y + dy, x + dx], zero outside."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    ys_src, xs_src = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
    out[..., ys, xs] = x[..., ys_src, xs_src]
    return out


def _offsets(dg, taps, ho, wo, shifts):
    """Offset tensor with (dy, dx) per deformable group, the same for every tap: channel
    g*2*taps + 2*t is dy and +1 is dx (the DCNv2 layout)."""
    off = torch.zeros(1, dg * 2 * taps, ho, wo)
    for gi, (dy, dx) in enumerate(shifts):
        for t in range(taps):
            off[:, gi * 2 * taps + 2 * t] = dy
            off[:, gi * 2 * taps + 2 * t + 1] = dx
    return off


@pytest.mark.parametrize('dy,dx', [(1, 0), (0, -2), (2, 3), (-1, -1)])
def test_dcn_integer_offsets_are_a_shifted_conv(dy, dx):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 10, 12, generator=g)
    weight = torch.randn(2, 3, 3, 3, generator=g)
    offset = _offsets(1, 9, 10, 12, [(dy, dx)])
    out = _dcn_both(x, offset, torch.ones(1, 9, 10, 12), weight, None, 1, 1, 1)
    # Shifting every sample by (dy, dx) samples the zero-padded input shifted the same way.
    padded = F.pad(x, (1, 1, 1, 1))
    expected = F.conv2d(_shift(padded, dy, dx), weight)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_dcn_deformable_groups_use_their_own_offsets():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 4, 7, 7, generator=g)
    weight = torch.randn(3, 4, 3, 3, generator=g)
    offset = _offsets(2, 9, 7, 7, [(1, 0), (0, -1)])
    out = _dcn_both(x, offset, torch.ones(1, 18, 7, 7), weight, None, 1, 1, 1)
    padded = F.pad(x, (1, 1, 1, 1))
    expected = (F.conv2d(_shift(padded[:, :2], 1, 0), weight[:, :2])
                + F.conv2d(_shift(padded[:, 2:], 0, -1), weight[:, 2:]))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_dcn_samples_far_outside_are_zero():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 6, 6, generator=g)
    weight = torch.randn(2, 3, 3, 3, generator=g)
    bias = torch.tensor([0.5, -1.0])
    for dy, dx in [(1000.0, 0.0), (0.0, -1000.0), (-7.0, 7.0)]:
        offset = _offsets(1, 9, 6, 6, [(dy, dx)])
        out = _dcn_both(x, offset, torch.ones(1, 9, 6, 6), weight, bias, 1, 1, 1)
        torch.testing.assert_close(out, bias.view(1, 2, 1, 1).expand_as(out))


@pytest.mark.parametrize('dy,expected', [
    (0.0, 1.0), (-0.5, 0.5), (0.25, 0.75), (-0.999, 0.001),
    (-1.0, 0.0),     # exactly one pixel outside: the whole sample is zero (y <= -1)
    (1.0, 0.0),      # y == H: outside
    (0.999, 0.001),
])
def test_dcn_bilinear_weights_at_the_border(dy, expected):
    # A 1x1 image of value 1 and a 1x1 kernel: the output is the bilinear weight of the only pixel.
    x = torch.ones(1, 1, 1, 1)
    weight = torch.ones(1, 1, 1, 1)
    offset = torch.tensor([dy, 0.0]).view(1, 2, 1, 1)
    out = _dcn_both(x, offset, torch.ones(1, 1, 1, 1), weight, None, 1, 0, 1)
    assert float(out) == pytest.approx(expected, abs=1e-6)


def test_dcn_bilinear_interior_value():
    # Sample at (0.5, 1.25) of a 2x3 ramp: bilinear by hand.
    x = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]).view(1, 1, 2, 3)
    offset = torch.zeros(1, 2, 2, 3)
    offset[0, :, 0, 0] = torch.tensor([0.5, 1.25])       # output (0, 0) only
    mask = torch.full((1, 1, 2, 3), 2.0)
    out = _dcn_both(x, offset, mask, torch.ones(1, 1, 1, 1), None, 1, 0, 1)
    torch.testing.assert_close(out[0, 0].flatten()[1:], 2 * x.flatten()[1:])
    # rows 0/1 at x=1.25: 1.25 and 11.25; halfway: 6.25; times the mask 2
    assert float(out[0, 0, 0, 0]) == pytest.approx(12.5, abs=1e-5)


def test_dcn_torchvision_path_equals_reference_on_random_deformation():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 6, 13, 10, generator=g)
    weight = torch.randn(4, 6, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    for stride, padding, dilation, dg in [(1, 1, 1, 1), ((2, 1), (2, 1), (1, 2), 2), (2, 0, 1, 3)]:
        ho, wo = _out_hw(13, 10, 3, *(torch.nn.modules.utils._pair(v)
                                       for v in (stride, padding, dilation)))
        offset = torch.randn(2, dg * 18, ho, wo, generator=g) * 4     # many samples land outside
        mask = torch.rand(2, dg * 9, ho, wo, generator=g)
        _dcn_both(x, offset, mask, weight, bias, stride, padding, dilation)


def test_deformable_im2col_layout():
    # Row c * taps + t of the columns is channel c at tap t (the GEMM layout the plugin uses).
    x = torch.arange(2 * 3 * 3, dtype=torch.float32).view(1, 2, 3, 3)
    cols = deformable_im2col(x, torch.zeros(1, 18, 3, 3), torch.ones(1, 9, 3, 3), 3, 1, 1, 1)
    assert cols.shape == (1, 2 * 9, 9)
    unfold = F.unfold(x, 3, padding=1)      # same (channel, tap) row order
    torch.testing.assert_close(cols, unfold)


def test_split_offset_mask_official_layout():
    t = torch.arange(27, dtype=torch.float32).view(1, 27, 1, 1)
    offset, mask = split_offset_mask(t)
    assert offset.flatten().tolist() == list(range(18))
    torch.testing.assert_close(mask.flatten(), torch.sigmoid(torch.arange(18, 27).float()))


# ------------------------------------------------------------------------------------------------
# crop, boxes, masks
# ------------------------------------------------------------------------------------------------
def _crop_expected(h, w, box, padding=1):
    """Official crop semantics by hand: sanitise (order, scale, pad by 1, clamp), then keep
    x1 <= c < x2 and y1 <= r < y2. In float32 like the official tensors: 0.2 * 5 - 1 is exactly 0
    there, but 1.5e-8 in float64."""
    f = np.float32
    box = [f(v) for v in box]
    padding = f(padding)
    x1, x2 = sorted((box[0] * f(w), box[2] * f(w)))
    y1, y2 = sorted((box[1] * f(h), box[3] * f(h)))
    x1, y1 = max(x1 - padding, 0), max(y1 - padding, 0)
    x2, y2 = min(x2 + padding, w), min(y2 + padding, h)
    out = np.zeros((h, w), np.float32)
    for r, c in itertools.product(range(h), range(w)):
        out[r, c] = float(x1 <= c < x2 and y1 <= r < y2)
    return out


@pytest.mark.parametrize('box', [
    [0.25, 0.3, 0.55, 0.7],       # interior, fractional edges
    [-0.2, -0.1, 1.3, 1.2],       # beyond every border: the whole mask
    [0.0, 0.0, 0.1, 0.1],         # top-left corner: padding clamps at 0
    [0.9, 0.95, 1.0, 1.0],        # bottom-right corner: padding clamps at w/h
    [0.55, 0.7, 0.25, 0.3],       # corners swapped: ordered first
    [0.5, 0.5, 0.5, 0.5],         # zero size: the padding still keeps 2 pixels
    [0.3, 0.2, 0.4, 0.2],         # zero height
    [0.2, 0.25, 0.6, 0.5],        # x1 * w - 1 lands exactly on column 0 (float32)
])
def test_crop_matches_official_semantics(box):
    h, w = 10, 8
    masks = torch.ones(1, h, w)
    out = crop(masks, torch.tensor([box]))
    np.testing.assert_array_equal(out[0].numpy(), _crop_expected(h, w, box))


def test_crop_hand_values_and_batching():
    # w = 10, box x from 0.25 to 0.55: 2.5 - 1 = 1.5 <= c < 5.5 + 1 = 6.5 -> columns 2..6
    masks = torch.rand(2, 3, 4, 10) + 0.5
    boxes = torch.tensor([[0.25, 0.0, 0.55, 1.0]]).expand(2, 3, 4)
    out = crop(masks, boxes)
    kept = (out[0, 0] != 0).any(0).nonzero().flatten().tolist()
    assert kept == [2, 3, 4, 5, 6]
    torch.testing.assert_close(out[..., 2:7], masks[..., 2:7])
    # sanitize: relative -> absolute, ordered, padded and clamped, not rounded
    lo, hi = sanitize_coordinates(torch.tensor([0.55]), torch.tensor([0.25]), 10, padding=1)
    assert float(lo) == pytest.approx(1.5) and float(hi) == pytest.approx(6.5)


def test_decode_hand_values_and_encode_roundtrip():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    loc = torch.tensor([[1.0, -2.0, 0.0, 5.0 * float(np.log(2.0))]])
    box = decode(loc, priors)[0]
    # cx = 0.5 + 1 * 0.1 * 0.2 = 0.52, cy = 0.5 - 2 * 0.1 * 0.4 = 0.42, w = 0.2, h = 0.4 * 2
    torch.testing.assert_close(box, torch.tensor([0.42, 0.02, 0.62, 0.82]))
    g = torch.Generator().manual_seed(7)
    priors = torch.cat([torch.rand(20, 2, generator=g), 0.05 + torch.rand(20, 2, generator=g)], 1)
    loc = torch.randn(20, 4, generator=g)
    torch.testing.assert_close(encode(decode(loc, priors), priors), loc, rtol=1e-4, atol=1e-4)


def test_assemble_masks_matches_a_loop():
    g = torch.Generator().manual_seed(8)
    proto = torch.rand(2, 6, 5, 4, generator=g)
    coeffs = torch.randn(2, 3, 4, generator=g)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.6, 0.5], [0.5, 0.0, 1.0, 0.4]])
    boxes = boxes.expand(2, 3, 4)
    out = assemble_masks(proto, coeffs, boxes)
    for b, k in itertools.product(range(2), range(3)):
        m = torch.sigmoid((proto[b] * coeffs[b, k]).sum(-1))
        keep = torch.from_numpy(_crop_expected(6, 5, boxes[b, k].tolist()))
        torch.testing.assert_close(out[b, k], m * keep)
    torch.testing.assert_close(assemble_masks(proto, coeffs, boxes, crop_masks=False)[0, 0],
                               torch.sigmoid(proto[0] @ coeffs[0, 0]))


def test_dcn_matches_an_independent_port_of_the_dcnv2_kernel():
    """tools/official_parity.py carries a CPU port of the official DCNv2 CUDA im2col kernel (written
    from the .cu file, not from ops/dcn.py); both must agree, also far outside the image."""
    import importlib.util
    import os
    import types
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        'tools', 'official_parity.py')
    spec = importlib.util.spec_from_file_location('official_parity', path)
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    shim = types.ModuleType('dcn_v2_shim')
    exec(harness.DCN_SHIM_SOURCE, shim.__dict__)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 4, 9, 8, generator=g)
    weight = torch.randn(3, 4, 3, 3, generator=g)
    bias = torch.randn(3, generator=g)
    for stride, padding, dilation, dg in [(1, 1, 1, 1), (2, 2, 2, 2), ((2, 1), (1, 0), (1, 2), 4)]:
        ho, wo = _out_hw(9, 8, 3, *(torch.nn.modules.utils._pair(v)
                                     for v in (stride, padding, dilation)))
        offset = torch.randn(2, dg * 18, ho, wo, generator=g) * 3
        mask = torch.rand(2, dg * 9, ho, wo, generator=g)
        expected = shim.dcn_v2_conv(x, offset, mask, weight, bias, stride, padding, dilation, dg)
        out = _dcn_both(x, offset, mask, weight, bias, stride, padding, dilation)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
