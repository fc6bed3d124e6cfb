"""COCO box and mask mAP of a model on a COCO-format set (pycocotools' COCOeval).

Detections are the final full-resolution results of the shared inference path
(:mod:`yolact_deploy.runtime` Predictor -> :func:`yolact_deploy.postprocess.finalize`), written
the way the official ``eval.py --output_coco_json`` writes them: bbox entries with the box score,
segm entries (RLE) with the mask score. Every image of the json is evaluated, including images
without annotations (their detections are false positives).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..data.coco import read_annotations
from ..errors import InputError
from ..deploy.media import load_image

STAT_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl')


def _coco_gt(ann_file: str):
    from pycocotools.coco import COCO
    data = read_annotations(ann_file, for_eval=True)   # validates with clear messages first
    data.setdefault('info', {})
    data.setdefault('licenses', [])
    gt = COCO()
    gt.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def run_detections(predictor, image_dir: str, ann_file: str, *, category_ids: Sequence[int],
                   batch_size: int = 1, limit: Optional[int] = None, progress: bool = True,
                   score_threshold: float = 0.0) -> List[dict]:
    """Runs ``predictor`` on every image of ``ann_file``; returns COCO result entries."""
    data = read_annotations(ann_file)
    images = sorted(data['images'], key=lambda im: im['id'])[:limit]
    if not images:
        raise InputError(f'empty dataset: {ann_file} lists no images')
    missing = [im['file_name'] for im in images
               if not os.path.isfile(os.path.join(image_dir, im['file_name']))]
    if missing:
        raise InputError(f'{len(missing)} image(s) of {ann_file} missing from {image_dir}, '
                         f'e.g. {missing[0]}')
    dataset_ids = {c['id'] for c in data['categories']}
    if not set(category_ids) & dataset_ids:
        raise InputError(f"none of the model's category ids appear in {ann_file}: the model's "
                         'classes do not belong to this dataset')
    results = []
    for start in tqdm(range(0, len(images), batch_size), desc='eval', disable=not progress,
                      unit='batch' if batch_size > 1 else 'img'):
        chunk = images[start:start + batch_size]
        pics = [load_image(os.path.join(image_dir, im['file_name'])) for im in chunk]
        dets = predictor.predict(pics, score_threshold=score_threshold)
        for im, det in zip(chunk, dets):
            results.extend(det.to_coco(im['id'], category_ids))
    return results


def evaluate_results(ann_file: str, results: List[dict], image_ids: Optional[Sequence[int]] = None,
                     verbose: bool = True) -> Dict[str, Dict[str, float]]:
    """COCOeval for 'bbox' and 'segm'; returns {'box': {AP, AP50, ...}, 'mask': {...}} in percent.

    With no detections at all every metric is 0 (pycocotools cannot load an empty result list).
    """
    from pycocotools.cocoeval import COCOeval
    gt = _coco_gt(ann_file)
    ids = sorted(image_ids) if image_ids is not None else sorted(gt.getImgIds())
    out = {}
    for iou_type, key in (('bbox', 'box'), ('segm', 'mask')):
        entries = [r for r in results if (iou_type == 'bbox') == ('bbox' in r and 'segmentation' not in r)]
        if not entries:
            out[key] = {name: 0.0 for name in STAT_NAMES}
            if verbose:
                print(f'{key}: no detections, every metric is 0')
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes([dict(r) for r in entries])
        ev = COCOeval(gt, dt, iou_type)
        ev.params.imgIds = ids
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        if verbose:
            print(f'\n{key} ({iou_type})')
            print(buf.getvalue().rstrip())
        out[key] = {name: float(max(v, 0.0)) * 100 for name, v in zip(STAT_NAMES, ev.stats)}
    return out


def format_table(metrics: Dict[str, Dict[str, float]]) -> str:
    """The official eval.py summary: one row per type, AP at IoU .50:.95 ('all') and .50 ... .95."""
    cols = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
    lines = ['       | ' + ' | '.join(f'{c:>6}' for c in cols),
             '-------+-' + '-+-'.join('-' * 6 for _ in cols)]
    for key in ('box', 'mask'):
        if key in metrics:
            lines.append(f'{key:>6} | ' + ' | '.join(f'{metrics[key][c]:6.2f}' for c in cols))
    return '\n'.join(lines)


def evaluate(weights: Optional[str], image_dir: str, ann_file: str, *, batch_size: int = 1,
             limit: Optional[int] = None, output_json: Optional[str] = None, progress: bool = True,
             verbose: bool = True, **predictor_options) -> Dict[str, Dict[str, float]]:
    """Loads ``weights`` (any backend the runtime supports; None = the bundled model), runs it on
    the set and returns box and mask metrics (percent)."""
    from ..runtime import load_predictor
    data = read_annotations(ann_file, for_eval=True)  # every fault of the json now, not at the end
    if output_json:
        from ..deploy.fileio import check_output_file
        check_output_file(output_json)
    predictor = load_predictor(weights, **predictor_options)
    category_ids = list(predictor.category_ids)
    results = run_detections(predictor, image_dir, ann_file, category_ids=category_ids,
                             batch_size=batch_size, limit=limit, progress=progress)
    ids = [im['id'] for im in sorted(data['images'], key=lambda im: im['id'])[:limit]]
    metrics = evaluate_results(ann_file, results, image_ids=ids, verbose=verbose)
    if output_json:  # written only once the evaluation succeeded
        from ..deploy.fileio import atomic_output
        with atomic_output(output_json) as tmp:
            with open(tmp, 'w') as f:
                json.dump(results, f)
    return metrics
