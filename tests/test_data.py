"""COCO-format dataset and SSD augmentation."""
from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from yolact_deploy.assets import SAMPLE_ANNOTATIONS, SAMPLES_DIR
from yolact_deploy.config import COCO_CATEGORY_IDS
from yolact_deploy.data import (CocoDataset, SampleError, classes_from_annotations,
                                decode_segmentation, read_annotations, ssd_augment)
from yolact_deploy.errors import InputError


def _write(tmp_path, data, name='ann.json'):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _mini_dataset(tmp_path, gray=False):
    """Two real sample photos (one optionally grayscale), custom categories 10 and 20 plus an
    image without annotations; polygon, uncompressed RLE and compressed RLE segmentations."""
    data = read_annotations(SAMPLE_ANNOTATIONS)
    images = sorted(data['images'], key=lambda im: im['id'])[:3]
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    for im in images:
        shutil.copy(os.path.join(SAMPLES_DIR, im['file_name']), img_dir / im['file_name'])
    if gray:
        path = str(img_dir / images[0]['file_name'])
        cv2.imwrite(path, cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    h, w = images[0]['height'], images[0]['width']
    square = np.zeros((h, w), np.uint8, order='F')
    square[10:60, 20:90] = 1
    compressed = mask_utils.encode(square)
    compressed['counts'] = compressed['counts'].decode('ascii')
    runs, flat, cur, n = [], square.flatten(order='F'), 0, 0
    for v in flat:          # uncompressed RLE: alternating run lengths, starting with zeros
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    anns = [
        {'id': 1, 'image_id': images[0]['id'], 'category_id': 20, 'iscrowd': 0,
         'bbox': [20, 10, 70, 50], 'segmentation': [[20, 10, 90, 10, 90, 60, 20, 60]]},
        {'id': 2, 'image_id': images[0]['id'], 'category_id': 10, 'iscrowd': 0,
         'bbox': [20, 10, 70, 50], 'segmentation': compressed},
        {'id': 3, 'image_id': images[0]['id'], 'category_id': 10, 'iscrowd': 1,
         'bbox': [20, 10, 70, 50], 'segmentation': {'size': [h, w], 'counts': runs}},
        {'id': 4, 'image_id': images[1]['id'], 'category_id': 20, 'iscrowd': 0,
         'bbox': [5, 5, 40, 40], 'segmentation': [[5, 5, 45, 5, 45, 45, 5, 45]]},
    ]
    ann = {'images': images, 'annotations': anns,
           'categories': [{'id': 20, 'name': 'twenty'}, {'id': 10, 'name': 'ten'}]}
    return str(img_dir), _write(tmp_path, ann), images, square


def test_segmentation_formats_decode_to_the_same_mask(tmp_path):
    img_dir, ann_file, images, square = _mini_dataset(tmp_path)
    anns = read_annotations(ann_file)['annotations']
    h, w = images[0]['height'], images[0]['width']
    for ann in anns[1:3]:
        assert np.array_equal(decode_segmentation(ann['segmentation'], h, w), square)
    poly = decode_segmentation(anns[0]['segmentation'], h, w)
    assert abs(int(poly.sum()) - int(square.sum())) < 0.1 * square.sum()


def test_custom_classes_and_label_mapping(tmp_path):
    img_dir, ann_file, images, _ = _mini_dataset(tmp_path)
    names, ids = classes_from_annotations(ann_file)
    assert names == ('ten', 'twenty') and ids == (10, 20)
    ds = CocoDataset(img_dir, ann_file, ids, 128, train=False)
    image, masks, boxes, labels, crowd = ds.load_raw(0)
    assert labels.tolist() == [1, 0, 0]                 # 20 -> 1, 10 -> 0; crowd last
    assert crowd.tolist() == [False, False, True]
    assert boxes[0].tolist() == [20, 10, 90, 60]
    # COCO's own ids do not include 10/20 as these classes: a mismatch is one clear error.
    with pytest.raises(InputError, match='not among the model'):
        CocoDataset(img_dir, ann_file, (1, 2, 3), 128)


def test_coco_non_contiguous_ids_map_to_contiguous_labels():
    ds = CocoDataset(SAMPLES_DIR, SAMPLE_ANNOTATIONS, COCO_CATEGORY_IDS, 128, train=False)
    data = read_annotations(SAMPLE_ANNOTATIONS)
    cat_of = {}
    for ann in data['annotations']:
        cat_of.setdefault(ann['image_id'], []).append(ann['category_id'])
    for i in range(len(ds)):
        img_id = ds.images[i][0]['id']
        _, _, _, labels, _ = ds.load_raw(i)
        assert {COCO_CATEGORY_IDS[l] for l in labels} <= set(cat_of.get(img_id, []))
        assert all(0 <= l < 80 for l in labels)


def test_images_without_annotations_and_grayscale(tmp_path):
    img_dir, ann_file, images, _ = _mini_dataset(tmp_path, gray=True)
    ids = classes_from_annotations(ann_file)[1]
    assert len(CocoDataset(img_dir, ann_file, ids, 96, train=False)) == 3   # eval keeps all
    train = CocoDataset(img_dir, ann_file, ids, 96, train=True)
    assert len(train) == 2                                                 # nothing to learn
    sample = train.get(0, 0)                                               # grayscale image
    assert sample.image.shape == (96, 96, 3) and sample.image.dtype == np.float32


def test_augmentation_is_reproducible_and_consistent():
    ds = CocoDataset(SAMPLES_DIR, SAMPLE_ANNOTATIONS, COCO_CATEGORY_IDS, 160, train=True, seed=3)
    for pos in range(6):
        a, b = ds.get(pos % len(ds), pos), ds.get(pos % len(ds), pos)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
        assert np.array_equal(a.boxes, b.boxes)
        n = len(a.boxes) - a.num_crowds
        assert n > 0 and a.masks.shape == (len(a.boxes), 160, 160)
        # Every (non-crowd) mask pixel lies inside its box (boxes and masks moved together).
        for m, box in zip(a.masks[:n], a.boxes[:n]):
            ys, xs = np.nonzero(m)
            if len(xs):
                x1, y1, x2, y2 = box * 160
                inside = (xs >= x1 - 2) & (xs <= x2 + 2) & (ys >= y1 - 2) & (ys <= y2 + 2)
                assert inside.mean() > 0.97
    assert not np.array_equal(ds.get(0, 0).image, ds.get(0, 1).image)   # seed matters


def test_mirror_moves_boxes_with_masks():
    rng = np.random.default_rng(0)
    image = np.zeros((50, 100, 3), np.float32)
    masks = np.zeros((1, 50, 100), np.uint8)
    masks[0, 10:20, 5:25] = 1
    boxes = np.array([[5, 10, 25, 20]], np.float32)
    for seed in range(8):
        out = ssd_augment(image, masks, boxes, np.array([0]), np.array([False]), 100,
                          np.random.default_rng(seed), photometric=False, expand_=False, crop=False)
        _, m, b, _, _ = out
        ys, xs = np.nonzero(m[0])
        assert abs(xs.min() - b[0, 0] * 100) <= 1 and abs(xs.max() + 1 - b[0, 2] * 100) <= 1


def test_bad_inputs_give_clear_errors(tmp_path):
    img_dir, ann_file, images, _ = _mini_dataset(tmp_path)
    with pytest.raises(InputError, match="missing or invalid 'annotations'"):
        read_annotations(_write(tmp_path, {'images': [], 'categories': []}, 'a.json'))
    with pytest.raises(InputError, match='lacks field'):
        read_annotations(_write(tmp_path, {'images': [{'id': 1}], 'annotations': [],
                                           'categories': []}, 'b.json'))
    (tmp_path / 'd.json').write_text('{not json')
    with pytest.raises(InputError, match='cannot parse'):
        read_annotations(str(tmp_path / 'd.json'))
    with pytest.raises(InputError, match='not found'):
        read_annotations(str(tmp_path / 'nope.json'))
    with pytest.raises(InputError, match='empty dataset'):
        CocoDataset(img_dir, _write(tmp_path, {'images': [], 'annotations': [], 'categories': []},
                                    'e.json'), (1,), 64)
    os.remove(os.path.join(img_dir, images[1]['file_name']))
    with pytest.raises(InputError, match='missing from'):
        CocoDataset(img_dir, ann_file, (10, 20), 64)
    # An unreadable image is found only when loaded: a SampleError the trainer can skip.
    shutil.copy(os.path.join(SAMPLES_DIR, images[1]['file_name']),
                os.path.join(img_dir, images[1]['file_name']))
    ds = CocoDataset(img_dir, ann_file, (10, 20), 64)
    with open(os.path.join(img_dir, images[0]['file_name']), 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(SampleError, match='cannot decode'):
        ds.get(0, 0)
