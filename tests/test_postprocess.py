"""The shared numpy post-processing against the official torch formulation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolact_deploy.ops.boxes import crop
from yolact_deploy.postprocess import (ImageDetections, MaskCrops, _window_values, crop_resize_masks,
                                         finalize, resize_masks, sanitize_boxes)


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


# --- Masks computed inside their boxes only: identical to the full-image path ----------------------

def full_image_path(masks, h, w):
    """The reference: every mask resized over the whole image, then > 0.5."""
    return resize_masks(masks, h, w) > 0.5


def adversarial_masks(rng, n, hp, wp):
    """Cropped probabilities (ops.crop, as the model makes them) for boxes at and beyond the borders,
    1-pixel and empty boxes, the whole image, and many overlapping random boxes; plus all-zero,
    all-0.5 (exactly at the threshold) and single-pixel maps."""
    special = [[0, 0, 1, 1], [-0.5, -0.5, 0.02, 0.03], [0.97, 0.98, 1.6, 1.3], [-1, -1, -0.5, -0.2],
               [1.2, 0.1, 1.5, 0.3], [0.5, 0.5, 0.5 + 1 / wp, 0.5 + 1 / hp], [0.3, 0.4, 0.3, 0.4],
               [0.9, 0.1, 0.2, 0.6], [0, 0, 1 / wp, 1], [0, 0.999, 1, 1]]
    boxes = np.concatenate([np.array(special, np.float32),
                            rng.uniform(-0.1, 1.1, (n - len(special), 4)).astype(np.float32)])
    probs = torch.sigmoid(torch.from_numpy(rng.normal(0, 3, (n, hp, wp)).astype(np.float32)))
    masks = crop(probs, torch.from_numpy(boxes), padding=0).numpy()
    masks[-3] = 0
    masks[-2] = 0.5
    masks[-1] = 0
    masks[-1, hp // 2, wp // 3] = 1
    return masks


@pytest.mark.parametrize('hp,wp,h,w', [
    (32, 32, 480, 640),   # upsampling, non-square image
    (24, 20, 61, 333),    # non-square prototypes, odd sizes
    (32, 32, 32, 32),     # same size (OpenCV copies)
    (32, 32, 13, 9),      # image smaller than the prototypes
    (32, 32, 16, 16),     # exact 2x downscale (OpenCV averages 2x2 blocks)
    (32, 32, 16, 17),     # near-2x: bilinear again
    (32, 32, 1, 1),
    (5, 7, 300, 2),
])
def test_crop_resize_is_bit_identical_to_full_image_path(hp, wp, h, w):
    rng = np.random.default_rng(hp * 1000 + h + w)
    masks = adversarial_masks(rng, 40, hp, wp)
    crops = crop_resize_masks(masks, h, w)
    full = resize_masks(masks, h, w)
    np.testing.assert_array_equal(crops.to_dense(), full > 0.5)
    # Stronger than the thresholded masks: the float values in each window are the same bits, and
    # the full-image resize is exactly 0 outside the window.
    for i, (y, x, vals) in enumerate(_window_values(masks, h, w)):
        outside = full[i].copy()
        if vals is not None:
            window = (slice(y, y + vals.shape[0]), slice(x, x + vals.shape[1]))
            np.testing.assert_array_equal(vals.view(np.int32), full[i][window].view(np.int32))
            outside[window] = 0
        assert not outside.any()
    for i in range(len(crops)):  # each crop is the tight bounding box of its True pixels
        b = crops.bitmaps[i]
        assert b.size == 0 or (b[0].any() and b[-1].any() and b[:, 0].any() and b[:, -1].any())


@pytest.mark.parametrize('count', [1, 2, 3, 4, 5, 129, 131])
def test_full_image_path_does_not_depend_on_the_number_of_masks(count):
    """OpenCV computes 1, 3 and 4 channel images with other arithmetic: the reference pads them, so
    a mask's pixels are the same whether its image has one detection or many."""
    masks = np.random.default_rng(count).uniform(0, 1, (count, 17, 23)).astype(np.float32)
    together = resize_masks(masks, 61, 45)
    alone = np.concatenate([resize_masks(masks[i:i + 1], 61, 45) for i in range(count)])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(crop_resize_masks(masks, 61, 45).to_dense(), together > 0.5)


def test_finalize_keeps_compact_masks_and_materialises_on_access():
    rng = np.random.default_rng(5)
    out = make_outputs(rng, batch=1, k=12, hp=32, n=(12,))
    out['masks'][0] = adversarial_masks(rng, 12, 32, 32)
    det = finalize(out, [(90, 150)], [])[0]
    assert isinstance(det.mask_crops, MaskCrops) and det._dense is None
    assert sum(b.size for b in det.mask_crops.bitmaps) < 12 * 90 * 150
    ref = finalize(out, [(90, 150)], [], full_image_masks=True)[0]
    assert ref._crops is None and ref.to_coco(1, range(80)) == det.to_coco(1, range(80))
    np.testing.assert_array_equal(det.masks, full_image_path(out['masks'][0], 90, 150))
    np.testing.assert_array_equal(det.masks, ref.masks)
    assert det.image_size == (90, 150)
    sub = det.subset(np.array([3, 0]))
    np.testing.assert_array_equal(sub.masks, det.masks[[3, 0]])
    assert sub._crops is not None


def test_rle_from_crops_is_pycocotools_encoding_byte_for_byte():
    from pycocotools import mask as mask_util
    rng = np.random.default_rng(7)
    masks = adversarial_masks(rng, 30, 24, 20)
    for h, w in [(61, 47), (16, 17), (1, 1), (5, 300)]:
        crops = crop_resize_masks(masks, h, w)
        dense = crops.to_dense()
        # Also masks whose runs cross columns (full height) and that start/end with True.
        extra = np.ones((3, h, w), bool)
        extra[1, h // 2:, w // 2] = False
        extra[2, 0, 0] = False
        for group in (crops, MaskCrops.from_dense(extra)):
            for i in range(len(group)):
                ref = mask_util.encode(np.asfortranarray(group.dense(i).astype(np.uint8)))
                ours = group.rle(i)
                assert ours == {'size': [h, w], 'counts': ref['counts'].decode('ascii')}, (h, w, i)
                assert group.area(i) == int(mask_util.area(ref))
        np.testing.assert_array_equal(MaskCrops.from_dense(dense).to_dense(), dense)


def test_image_detections_needs_one_kind_of_masks():
    with pytest.raises(ValueError, match='exactly one'):
        ImageDetections(np.zeros((0, 4), np.int32), np.zeros(0), np.zeros(0), np.zeros(0))


def test_real_images_with_the_bundled_model_identical_to_full_image_path():
    """Real photos, every detection the bundled model keeps (threshold 0): 0 differing pixels and the
    same RLE strings (benchmarks/finalize_crop.py does the same on the 80 coco_mini val images)."""
    from pycocotools import mask as mask_util

    from yolact_deploy.assets import sample_images
    from yolact_deploy.runtime import load_predictor
    from yolact_deploy.transforms import load_image
    pred = load_predictor()
    for path in sample_images()[:1]:
        image = load_image(path)
        dets, _ = pred.run([image])
        new = finalize(dets, [image.shape[:2]], pred.class_names)[0]
        ref = finalize(dets, [image.shape[:2]], pred.class_names, full_image_masks=True)[0]
        assert len(new) > 10
        np.testing.assert_array_equal(new.masks, ref.masks)
        for i in range(len(new)):
            enc = mask_util.encode(np.asfortranarray(ref.masks[i].astype(np.uint8)))
            assert new.mask_rle(i)['counts'] == enc['counts'].decode('ascii')
