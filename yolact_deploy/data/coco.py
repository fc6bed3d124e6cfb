"""COCO-format instance-segmentation datasets.

Reads an ``instances_*.json`` (polygons, uncompressed and compressed RLE, ``iscrowd`` regions) and
its image folder. Dataset category ids (COCO's are 1..90 with gaps) map to contiguous labels
0..C-1 through the model's ``category_ids``; :func:`classes_from_annotations` gives the class list
of a custom dataset.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import InputError
from ..deploy.media import load_image
from .augment import resize, ssd_augment


class SampleError(InputError):
    """One sample cannot be used (unreadable image, size mismatch, broken annotation)."""


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _segmentation_problem(segm, strict: bool) -> Optional[str]:
    if isinstance(segm, list):
        if not segm:
            return 'an empty polygon list'
        for poly in segm:
            if not isinstance(poly, list) or not all(_num(v) for v in poly):
                return 'a polygon that is not a list of numbers'
            # A degenerate polygon is a bad sample for training (skipped or fatal per
            # --on-bad-sample, see decode_segmentation), a hard error for COCOeval.
            if len(poly) % 2 or (strict and len(poly) < 6):
                return f'a polygon of {len(poly)} coordinates (needs x,y pairs, at least 3 points)'
        return None
    if isinstance(segm, dict):
        size = segm.get('size')
        if not (isinstance(size, list) and len(size) == 2 and all(_int(v) and v >= 0 for v in size)):
            return 'an RLE without a [height, width] size'
        counts = segm.get('counts')
        if isinstance(counts, str) or (isinstance(counts, list) and all(_int(v) and v >= 0
                                                                         for v in counts)):
            return None
        return 'an RLE whose counts are neither a string nor a list of integers'
    return f'a segmentation of type {type(segm).__name__} (needs polygons or RLE)'


def read_annotations(ann_file: str, for_eval: bool = False) -> dict:
    """Loads and validates a COCO instances json against the schema this project reads (types
    included), once, here; raises InputError with one clear line. ``for_eval``: also the fields
    COCOeval needs (``area`` and ``iscrowd`` of every annotation)."""
    if not os.path.isfile(ann_file):
        raise InputError(f'annotation file not found: {ann_file}')
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f'cannot parse annotation file {ann_file}: {exc}') from None
    except RecursionError:
        raise InputError(f'cannot parse annotation file {ann_file}: nested too deeply') from None
    if not isinstance(data, dict):
        raise InputError(f'{ann_file}: expected a COCO json object, found {type(data).__name__}')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise InputError(f"{ann_file}: missing or invalid '{key}' list (not a COCO instances json)")

    def bad(where, what):
        raise InputError(f'{ann_file}: {where} {what}')
    image_ids = set()
    for i, img in enumerate(data['images']):
        if not isinstance(img, dict):
            bad(f'images[{i}]', 'is not an object')
        missing = [k for k in ('id', 'file_name', 'width', 'height') if k not in img]
        if missing:
            bad(f'images[{i}]', f"lacks field(s) {', '.join(missing)}")
        if not _int(img['id']):
            bad(f'images[{i}]', f"has a non-integer id {img['id']!r}")
        if img['id'] in image_ids:
            bad(f'images[{i}]', f"repeats id {img['id']}")
        image_ids.add(img['id'])
        if not isinstance(img['file_name'], str) or not img['file_name']:
            bad(f'images[{i}]', f"has an invalid file_name {img['file_name']!r}")
        if not (_int(img['width']) and _int(img['height']) and img['width'] > 0 and img['height'] > 0):
            bad(f'images[{i}]', 'needs positive integer width and height, got '
                                f"{img['width']!r} x {img['height']!r}")
    for i, cat in enumerate(data['categories']):
        if not isinstance(cat, dict) or 'id' not in cat or 'name' not in cat:
            bad(f'categories[{i}]', "needs 'id' and 'name'")
        if not _int(cat['id']) or not isinstance(cat['name'], str):
            bad(f'categories[{i}]', 'needs an integer id and a string name')
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict):
            bad(f'annotations[{i}]', 'is not an object')
        where = f"annotations[{i}] (id {ann.get('id')})"
        missing = [k for k in ('image_id', 'category_id', 'bbox') if k not in ann]
        if not ann.get('iscrowd', 0) and 'segmentation' not in ann:
            missing.append('segmentation')
        if for_eval:
            missing += [k for k in ('area', 'iscrowd', 'id') if k not in ann]
        if missing:
            bad(where, f"lacks field(s) {', '.join(missing)}")
        if not _int(ann['image_id']) or not _int(ann['category_id']):
            bad(where, 'needs integer image_id and category_id')
        if ann['image_id'] not in image_ids:
            bad(f'annotations[{i}]', f"refers to unknown image_id {ann['image_id']}")
        bbox = ann['bbox']
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_num(v) for v in bbox)) or \
                bbox[2] < 0 or bbox[3] < 0:
            bad(f'annotations[{i}]', 'has a bbox that is not [x, y, w, h] (4 numbers, w, h >= 0)')
        if 'iscrowd' in ann and ann['iscrowd'] not in (0, 1):
            bad(where, f"has iscrowd {ann['iscrowd']!r} (0 or 1)")
        if 'area' in ann and not (_num(ann['area']) and ann['area'] >= 0):
            bad(where, f"has an invalid area {ann['area']!r}")
        if 'segmentation' in ann:
            problem = _segmentation_problem(ann['segmentation'], for_eval)
            if problem:
                bad(where, f'has {problem}')
    return data


def classes_from_annotations(ann_file: str) -> Tuple[Tuple[str, ...], Tuple[int, ...]]:
    """(class names, category ids) of a dataset, ordered by category id."""
    cats = sorted(read_annotations(ann_file)['categories'], key=lambda c: c['id'])
    return tuple(c['name'] for c in cats), tuple(int(c['id']) for c in cats)


def decode_segmentation(segm, height: int, width: int) -> np.ndarray:
    """Polygon list, uncompressed RLE or compressed RLE -> uint8 mask ``[H, W]``."""
    if isinstance(segm, list):
        if not segm:
            raise ValueError('empty polygon list')
        if any(len(poly) < 6 for poly in segm):  # pycocotools would read 4 numbers as a box
            raise ValueError('a polygon with fewer than 3 points')
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    elif isinstance(segm, dict) and 'counts' in segm:
        rle = dict(segm)
        if isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode('ascii')
    else:
        raise ValueError(f'unsupported segmentation {type(segm).__name__}')
    return mask_utils.decode(rle).astype(np.uint8)


@dataclass
class Sample:
    image: np.ndarray       # float32 BGR [S, S, 3] (0..255), not yet normalised
    boxes: np.ndarray       # float32 [N, 4] relative x1y1x2y2; crowds last
    labels: np.ndarray      # int64 [N] contiguous 0..C-1
    masks: np.ndarray       # uint8 [N, S, S]
    num_crowds: int
    image_id: int


class CocoDataset:
    """A COCO-format dataset.

    ``category_ids``: the model's dataset ids in label order (``config.category_ids``); annotations of
    other categories are an error, so a model never silently trains on a subset. ``train=True``
    drops images without any non-crowd annotation (nothing to learn from) and applies
    :func:`ssd_augment`; otherwise samples are only resized.
    """

    def __init__(self, image_dir: str, ann_file: str, category_ids: Sequence[int], size: int,
                 train: bool = True, seed: int = 0, augment: bool = True, min_box: float = 4.0):
        if not os.path.isdir(image_dir):
            raise InputError(f'image folder not found: {image_dir}')
        data = read_annotations(ann_file)
        self.image_dir, self.ann_file = image_dir, ann_file
        self.size, self.train, self.seed, self.augment, self.min_box = size, train, seed, augment, min_box
        self.label_of = {int(cid): i for i, cid in enumerate(category_ids)}
        names = {c['id']: c['name'] for c in data['categories']}
        unknown = sorted({a['category_id'] for a in data['annotations']} - set(self.label_of))
        if unknown:
            shown = ', '.join(f"{c} ({names.get(c, '?')})" for c in unknown[:5])
            raise InputError(f'{ann_file}: {len(unknown)} category id(s) are not among the model\'s '
                             f'{len(self.label_of)} classes: {shown}; train with the dataset\'s own '
                             f'classes (--classes dataset)')
        by_image = {}
        for ann in data['annotations']:
            by_image.setdefault(ann['image_id'], []).append(ann)
        self.images = []
        for img in sorted(data['images'], key=lambda im: im['id']):
            anns = by_image.get(img['id'], [])
            if train and not any(not a.get('iscrowd', 0) for a in anns):
                continue
            self.images.append((img, anns))
        if not self.images:
            what = 'images with annotations' if train else 'images'
            raise InputError(f'empty dataset: {ann_file} lists no {what}')
        missing = [img['file_name'] for img, _ in self.images
                   if not os.path.isfile(os.path.join(image_dir, img['file_name']))]
        if missing:
            raise InputError(f'{len(missing)} image(s) of {ann_file} missing from {image_dir}, '
                             f'e.g. {missing[0]}')

    def __len__(self) -> int:
        return len(self.images)

    def load_raw(self, index: int):
        """Original image and targets: (BGR uint8 image, masks [N,H,W], boxes abs x1y1x2y2, labels,
        crowd flags), non-crowd objects first."""
        img, anns = self.images[index]
        path = os.path.join(self.image_dir, img['file_name'])
        try:
            image = load_image(path)
        except InputError as exc:
            raise SampleError(str(exc)) from None
        h, w = image.shape[:2]
        if (h, w) != (img['height'], img['width']):
            raise SampleError(f"{path}: image is {w}x{h} but the json says "
                              f"{img['width']}x{img['height']}")
        anns = sorted(anns, key=lambda a: bool(a.get('iscrowd', 0)))  # crowds last (stable)
        masks, boxes, labels, crowd = [], [], [], []
        for ann in anns:
            x, y, bw, bh = (float(v) for v in ann['bbox'])
            if bw < 1 or bh < 1:
                continue
            try:
                masks.append(decode_segmentation(ann['segmentation'], h, w))
            except Exception as exc:
                raise SampleError(f"{path}: annotation {ann.get('id')} has a broken segmentation "
                                  f'({exc})') from None
            boxes.append((x, y, x + bw, y + bh))
            labels.append(self.label_of[ann['category_id']])
            crowd.append(bool(ann.get('iscrowd', 0)))
        masks = np.stack(masks) if masks else np.zeros((0, h, w), np.uint8)
        return (image, masks, np.asarray(boxes, np.float32).reshape(-1, 4),
                np.asarray(labels, np.int64), np.asarray(crowd, bool))

    def get(self, index: int, sample_seed: Optional[int] = None) -> Sample:
        """A training sample; ``sample_seed`` fixes its augmentation (reproducible)."""
        image, masks, boxes, labels, crowd = self.load_raw(index)
        img_id = self.images[index][0]['id']
        if self.train and self.augment:
            seed = (self.seed, index) if sample_seed is None else (self.seed, sample_seed)
            rng = np.random.default_rng(seed)
            # Augmentation can drop every object (tiny crops); the official loader then draws
            # another image, we draw another augmentation and finally fall back to a plain resize.
            for _ in range(10):
                out = ssd_augment(image, masks, boxes, labels, crowd, self.size, rng,
                                  min_box=self.min_box)
                if (~out[4]).any():
                    break
            else:
                out = self._plain(image, masks, boxes, labels, crowd)
        else:
            out = self._plain(image, masks, boxes, labels, crowd)
        image, masks, boxes, labels, crowd = out
        order = np.argsort(crowd, kind='stable')   # crowds last, as the loss expects
        return Sample(np.ascontiguousarray(image, dtype=np.float32), boxes[order], labels[order],
                      np.ascontiguousarray(masks[order]), int(crowd.sum()), int(img_id))

    def _plain(self, image, masks, boxes, labels, crowd):
        image, masks, boxes = resize(image.astype(np.float32), masks, boxes, self.size)
        wh = boxes[:, 2:] - boxes[:, :2]
        keep = (wh[:, 0] > self.min_box) & (wh[:, 1] > self.min_box) if self.train else \
            np.ones(len(boxes), bool)
        return (image, masks[keep], np.clip(boxes[keep] / self.size, 0, 1).astype(np.float32),
                labels[keep], crowd[keep])
