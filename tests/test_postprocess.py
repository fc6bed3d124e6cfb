"""The shared numpy post-processing against the official torch formulation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolact_deploy.postprocess import ImageDetections, finalize, resize_masks, sanitize_boxes


def official_full_res(boxes, masks, h, w):
    """The official postprocess steps in torch: interpolate + gt(0.5), sanitize + long()."""
    m = F.interpolate(torch.from_numpy(masks)[None], (h, w), mode='bilinear',
                      align_corners=False)[0].gt(0.5).numpy()
    b = torch.from_numpy(boxes)
    x1, x2 = b[:, 0] * w, b[:, 2] * w
    y1, y2 = b[:, 1] * h, b[:, 3] * h
    out = torch.stack([torch.clamp(torch.min(x1, x2), min=0), torch.clamp(torch.min(y1, y2), min=0),
                       torch.clamp(torch.max(x1, x2), max=w), torch.clamp(torch.max(y1, y2), max=h)], 1)
    return out.long().numpy(), m


def make_outputs(rng, batch=2, k=10, hp=32, n=(4, 0)):
    boxes = rng.uniform(-0.1, 1.1, (batch, k, 4)).astype(np.float32)
    scores = np.sort(rng.uniform(0, 1, (batch, k)).astype(np.float32), axis=1)[:, ::-1].copy()
    classes = rng.integers(0, 80, (batch, k))
    for b, count in enumerate(n):
        scores[b, count:] = 0
        classes[b, count:] = -1
    return {'num_detections': np.array(n, np.int32)[:, None], 'boxes': boxes, 'scores': scores,
            'mask_scores': scores * 0.5, 'classes': classes,
            'masks': rng.uniform(0, 1, (batch, k, hp, hp)).astype(np.float32)}


def test_finalize_matches_official_torch_steps():
    rng = np.random.default_rng(0)
    out = make_outputs(rng)
    res = finalize(out, [(50, 70), (40, 40)], ['c%d' % i for i in range(80)])
    assert [len(r) for r in res] == [4, 0]
    boxes, masks = official_full_res(out['boxes'][0, :4], out['masks'][0, :4], 50, 70)
    np.testing.assert_array_equal(res[0].boxes, boxes)
    assert (res[0].masks != masks).mean() < 1e-3
    np.testing.assert_allclose(res[0].mask_scores, out['scores'][0, :4] * 0.5)
    assert res[1].masks.shape == (0, 40, 40)


def test_score_threshold_is_strict_and_top_k_limits():
    rng = np.random.default_rng(1)
    out = make_outputs(rng, n=(6, 3))
    thr = float(out['scores'][0, 2])
    res = finalize(out, [(20, 20), (20, 20)], [], score_threshold=thr, top_k=1)
    assert len(res[0]) == 1 and res[0].scores[0] > thr
    res = finalize(out, [(20, 20), (20, 20)], [], score_threshold=thr)
    assert len(res[0]) == 2  # the detection exactly at the threshold is dropped


def test_resize_masks_many_channels_matches_torch():
    masks = np.random.default_rng(2).uniform(0, 1, (300, 17, 23)).astype(np.float32)
    ours = resize_masks(masks, 61, 45)
    ref = F.interpolate(torch.from_numpy(masks)[None], (61, 45), mode='bilinear',
                        align_corners=False)[0].numpy()
    assert np.abs(ours - ref).max() < 1e-4


def test_sanitize_orders_and_clamps():
    b = sanitize_boxes(np.array([[0.9, 0.8, 0.1, -0.5]], np.float32), 10, 20)
    np.testing.assert_array_equal(b, [[2, 0, 18, 8]])


def test_to_coco_writes_rle_and_both_scores():
    masks = np.zeros((1, 8, 8), bool)
    masks[0, 2:5, 3:6] = True
    det = ImageDetections(np.array([[3, 2, 6, 5]], np.int32), np.array([1]), np.array([0.9], np.float32),
                          np.array([0.5], np.float32), masks, ('a', 'b'))
    entries = det.to_coco(42, [7, 9])
    assert entries[0] == {'image_id': 42, 'category_id': 9, 'bbox': [3, 2, 3, 3], 'score': pytest.approx(0.9)}
    from pycocotools import mask as mask_util
    assert entries[1]['score'] == pytest.approx(0.5)
    assert mask_util.area(entries[1]['segmentation']) == 9


def test_atomic_output_uses_umask_permissions(tmp_path):
    import os
    from yolact_deploy.cli.common import atomic_output
    target = tmp_path / 'out.json'
    with atomic_output(str(target)) as tmp:
        open(tmp, 'w').write('{}')
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
