"""Backend vs PyTorch: tensor by tensor and detection by detection, with tolerances per precision.

For each image both predictors produce (a) the engine-contract outputs at prototype resolution,
(b) raw network outputs where the backend has them (``--raw`` / ``--with-raw`` graphs) and (c) final
per-image results (:func:`yolact_deploy.postprocess.finalize`). The report holds

- per output: max abs error and max rel error (``|a - b| / max(|ref|, 1e-3)``) -- raw outputs, and
  contract outputs when both sides list the same detections in the same order;
- detection identity on the contract outputs: a detection is (prior index, class); common / only in
  the reference / only in the backend, and for common ones the box, score and mask-score errors;
- detection agreement on the final results: greedy matching by box IoU (>= 0.5, highest reference
  score first): class agreement, box IoU, score difference, mask IoU (at image resolution), unmatched
  counts;
- optionally COCO mAP (box and mask) of both on an annotated set and the delta.

:data:`TOLERANCES` holds the pass criteria per precision; :func:`check` lists every violation.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import InputError

CONTRACT_FLOATS = ('boxes', 'scores', 'mask_scores', 'masks')


@dataclass(frozen=True)
class Tolerances:
    raw_atol: Optional[float]          # max abs error of raw outputs
    box_atol: Optional[float]          # max abs error of common detections' relative boxes
    score_atol: Optional[float]        # max abs error of common detections' scores
    identical_detections: bool         # same (prior, class) set and count in every image
    min_mask_iou: Optional[float]      # every matched final detection
    mean_mask_iou: Optional[float]     # mean over matched final detections
    max_map_delta: Optional[float]     # |mAP(backend) - mAP(torch)| in points, box and mask


TOLERANCES = {
    # Level 2 of DESIGN.md: the same computation in FP32 -> the same detections.
    'fp32': Tolerances(raw_atol=1e-4, box_atol=1e-4, score_atol=1e-4, identical_detections=True,
                       min_mask_iou=0.999, mean_mask_iou=None, max_map_delta=0.1),
    # Level 4: FP16 network -> detection-level agreement only.
    'fp16': Tolerances(raw_atol=None, box_atol=None, score_atol=None, identical_detections=False,
                       min_mask_iou=None, mean_mask_iou=0.95, max_map_delta=0.5),
}


# -- tensors ------------------------------------------------------------------------------------
def tensor_errors(ref: np.ndarray, test: np.ndarray) -> dict:
    ref = np.asarray(ref, np.float64)
    test = np.asarray(test, np.float64)
    if ref.shape != test.shape:
        return {'shape_ref': list(ref.shape), 'shape_test': list(test.shape), 'max_abs': None,
                'max_rel': None}
    if ref.size == 0:
        return {'shape': list(ref.shape), 'max_abs': 0.0, 'max_rel': 0.0}
    diff = np.abs(ref - test)
    return {'shape': list(ref.shape), 'max_abs': float(diff.max()),
            'max_rel': float((diff / np.maximum(np.abs(ref), 1e-3)).max()),
            'ref_max_abs': float(np.abs(ref).max())}


def _merge_errors(acc: dict, new: dict) -> None:
    for key, err in new.items():
        cur = acc.setdefault(key, dict(err))
        for f in ('max_abs', 'max_rel', 'ref_max_abs'):
            if err.get(f) is None or cur.get(f) is None:
                cur[f] = None if err.get(f) is None else cur.get(f)
            else:
                cur[f] = max(cur[f], err[f])


# -- detections ---------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[n, 4]`` and ``[m, 4]`` x1y1x2y2 boxes."""
    a = np.asarray(a, np.float64)[:, None]
    b = np.asarray(b, np.float64)[None]
    lt = np.maximum(a[..., :2], b[..., :2])
    rb = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[..., 2:] - x[..., :2], 0, None).prod(-1)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(inter / union)


def match_results(ref, test, iou_threshold: float = 0.5) -> dict:
    """Greedy IoU matching of two :class:`~yolact_deploy.postprocess.ImageDetections`."""
    n, m = len(ref), len(test)
    ious = box_iou(ref.boxes, test.boxes) if n and m else np.zeros((n, m))
    used = np.zeros(m, bool)
    pairs = []
    for i in np.argsort(-ref.scores, kind='stable'):
        cand = np.where(~used & (ious[i] >= iou_threshold), ious[i], -1)
        # prefer a same-class partner, then the highest IoU
        same = np.where(test.classes == ref.classes[i], cand, -1) if m else cand
        j = int(np.argmax(same)) if m and same.max() >= 0 else (int(np.argmax(cand)) if m else -1)
        if j >= 0 and cand[j] >= 0:
            used[j] = True
            pairs.append((int(i), j))
    out = {'pairs': pairs, 'ref': n, 'test': m, 'matched': len(pairs),
           'unmatched_ref': n - len(pairs),
           'unmatched_test': m - len(pairs), 'class_agree': 0, 'box_iou': [], 'score_diff': [],
           'mask_iou': []}
    for i, j in pairs:
        out['class_agree'] += int(ref.classes[i] == test.classes[j])
        out['box_iou'].append(float(ious[i, j]))
        out['score_diff'].append(float(abs(ref.scores[i] - test.scores[j])))
        out['mask_iou'].append(mask_iou(ref.masks[i], test.masks[j]))
    return out


def identity_compare(ref: dict, test: dict, b: int, skip=()) -> dict:
    """Contract outputs of image ``b``: detections keyed by (prior index, class)."""
    def table(d):
        n = int(np.asarray(d['num_detections']).reshape(-1)[b])
        keys = list(zip(np.asarray(d['indices'])[b, :n].tolist(),
                        np.asarray(d['classes'])[b, :n].tolist()))
        return n, {k: s for s, k in enumerate(keys)}
    n_ref, t_ref = table(ref)
    n_test, t_test = table(test)
    common = [k for k in t_ref if k in t_test]
    out = {'count_ref': n_ref, 'count_test': n_test, 'common': len(common),
           'only_ref': n_ref - len(common), 'only_test': n_test - len(common),
           'same_order': list(t_ref) == list(t_test)}
    for key in ('boxes', 'scores', 'mask_scores'):
        if key in skip:
            continue
        if common:
            a = np.stack([np.asarray(ref[key])[b, t_ref[k]] for k in common])
            c = np.stack([np.asarray(test[key])[b, t_test[k]] for k in common])
            out[f'{key}_max_abs'] = float(np.abs(a.astype(np.float64) - c).max())
        else:
            out[f'{key}_max_abs'] = 0.0
    return out


TIE_EPS = 1e-4


def tie_aware_ious(r, t, m: dict, hw, score_threshold: float) -> List[float]:
    """Mask IoU of each matched pair, ignoring pixels whose reference probability is within
    :data:`TIE_EPS` of the 0.5 binarisation threshold.

    Such pixels flip with any rounding difference (one or two pixels of a small mask can cost 0.1-1%
    IoU while the probabilities agree to 1e-7); excluding them measures real disagreement. Pairs whose
    plain IoU is 1 are not recomputed.
    """
    from .deploy.postprocess import resize_masks

    def slots(out):
        d = out.detections
        n = int(np.asarray(d['num_detections']).reshape(-1)[0])
        return np.nonzero(np.asarray(d['scores'])[0, :n] > score_threshold)[0]

    ref_slots, test_slots = slots(r), slots(t)
    out = []
    for (i, j), iou in zip(m['pairs'], m['mask_iou']):
        if iou >= 1.0:
            out.append(iou)
            continue
        pr = resize_masks(np.asarray(r.detections['masks'][0, ref_slots[i]:ref_slots[i] + 1],
                                     np.float32), *hw)[0]
        pt = resize_masks(np.asarray(t.detections['masks'][0, test_slots[j]:test_slots[j] + 1],
                                     np.float32), *hw)[0]
        clear = np.abs(pr - 0.5) > TIE_EPS
        out.append(mask_iou((pr > 0.5) & clear, (pt > 0.5) & clear))
    return out


# -- COCO mAP -----------------------------------------------------------------------------------
def coco_map(annotation_file: str, results: List[dict], image_ids: Sequence[int]) -> dict:
    """Box and mask AP (0.50:0.95, in points) with pycocotools on the given images."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotation_file)
        out = {}
        for kind in ('bbox', 'segm'):
            res = [r for r in results if (kind == 'bbox') == ('bbox' in r)]
            if not res:
                out[kind] = 0.0
                continue
            dt = gt.loadRes([dict(r) for r in res])
            ev = COCOeval(gt, dt, kind)
            ev.params.imgIds = list(image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[kind] = float(ev.stats[0] * 100)
    return out


# -- the whole run ------------------------------------------------------------------------------
def _summary(values: List[float], how) -> Optional[float]:
    return float(how(values)) if values else None


def compare_predictors(reference, backend, images: Sequence[str], *,
                       score_threshold: float = 0.0, annotation_file: Optional[str] = None,
                       image_ids: Optional[Sequence[int]] = None, progress: bool = True,
                       skip_mask_scores: bool = False) -> dict:
    """Runs both predictors image by image and aggregates the comparison (no pass/fail)."""
    from tqdm import tqdm

    from .deploy.media import load_image
    raw_err: Dict[str, dict] = {}
    contract_err: Dict[str, dict] = {}
    ident = {'images': 0, 'count_ref_total': 0, 'count_equal': 0, 'identical': 0, 'only_ref': 0, 'only_test': 0,
             'boxes_max_abs': 0.0, 'scores_max_abs': 0.0, 'mask_scores_max_abs': 0.0}
    tie_ious = []
    match = {'ref': 0, 'test': 0, 'matched': 0, 'unmatched_ref': 0, 'unmatched_test': 0,
             'class_agree': 0}
    box_ious, score_diffs, mask_ious = [], [], []
    coco_ref, coco_test = [], []
    per_image = []
    skip = ('mask_scores',) if skip_mask_scores else ()
    for n, path in enumerate(tqdm(images, desc='validate', unit='img', disable=not progress)):
        image = load_image(path)
        r = reference.predict_batch([image], score_threshold)
        t = backend.predict_batch([image], score_threshold)
        for key in r.raw:
            if key in t.raw:
                _merge_errors(raw_err, {key: tensor_errors(r.raw[key], t.raw[key])})
        idc = identity_compare(r.detections, t.detections, 0, skip)
        ident['images'] += 1
        ident['count_ref_total'] += idc['count_ref']
        ident['count_equal'] += int(idc['count_ref'] == idc['count_test'])
        identical = idc['only_ref'] == 0 and idc['only_test'] == 0 and \
            idc['count_ref'] == idc['count_test']
        ident['identical'] += int(identical)
        ident['only_ref'] += idc['only_ref']
        ident['only_test'] += idc['only_test']
        for key in ('boxes', 'scores', 'mask_scores'):
            if f'{key}_max_abs' in idc:
                ident[f'{key}_max_abs'] = max(ident[f'{key}_max_abs'], idc[f'{key}_max_abs'])
        if identical and idc['same_order']:
            _merge_errors(contract_err, {k: tensor_errors(r.detections[k], t.detections[k])
                                         for k in CONTRACT_FLOATS
                                         if k in t.detections and k not in skip})
        m = match_results(r.results[0], t.results[0])
        tie = tie_aware_ious(r, t, m, image.shape[:2], score_threshold)
        tie_ious += tie
        for key in match:
            match[key] += m[key]
        box_ious += m['box_iou']
        score_diffs += m['score_diff']
        mask_ious += m['mask_iou']
        image_id = image_ids[n] if image_ids is not None else n
        if annotation_file:
            coco_ref += r.results[0].to_coco(image_id, reference.category_ids)
            coco_test += t.results[0].to_coco(image_id, backend.category_ids)
        per_image.append({'image': os.path.basename(path), 'identity': idc,
                          'final': {k: v for k, v in m.items() if not isinstance(v, list)},
                          'min_mask_iou': _summary(m['mask_iou'], min),
                          'min_mask_iou_excl_ties': _summary(tie, min)})
    report = {
        'images': len(images),
        'raw': raw_err,
        'contract': contract_err,
        'identity': ident,
        'final': dict(match, score_threshold=score_threshold,
                      class_agreement=(match['class_agree'] / match['matched']
                                       if match['matched'] else None),
                      mean_box_iou=_summary(box_ious, np.mean),
                      min_box_iou=_summary(box_ious, min),
                      max_score_diff=_summary(score_diffs, max),
                      mean_mask_iou=_summary(mask_ious, np.mean),
                      min_mask_iou=_summary(mask_ious, min),
                      min_mask_iou_excl_ties=_summary(tie_ious, min),
                      threshold_tie_eps=TIE_EPS),
        'per_image': per_image,
    }
    if annotation_file:
        ids = image_ids if image_ids is not None else list(range(len(images)))
        ref_map = coco_map(annotation_file, coco_ref, ids)
        test_map = coco_map(annotation_file, coco_test, ids)
        report['map'] = {'reference': ref_map, 'backend': test_map,
                         'delta': {k: test_map[k] - ref_map[k] for k in ref_map}}
    return report


def check(report: dict, tol: Tolerances) -> List[str]:
    """Every violated tolerance as one readable line (empty: within tolerance)."""
    bad = []
    if not report['identity'].get('count_ref_total', 1):
        bad.append('nothing was compared: the reference made no detection on any image '
                   '(untrained weights or images without objects)')
    if tol.raw_atol is not None:
        for key, err in report['raw'].items():
            if err.get('max_abs') is None:
                bad.append(f'raw {key}: shapes differ ({err})')
            elif err['max_abs'] > tol.raw_atol:
                bad.append(f'raw {key}: max abs error {err["max_abs"]:.3g} > {tol.raw_atol:g}')
    ident = report['identity']
    if tol.identical_detections and ident['identical'] != ident['images']:
        bad.append(f'detections differ in {ident["images"] - ident["identical"]} of '
                   f'{ident["images"]} images ({ident["only_ref"]} only in PyTorch, '
                   f'{ident["only_test"]} only in the backend)')
    if tol.box_atol is not None and ident['boxes_max_abs'] > tol.box_atol:
        bad.append(f'boxes: max abs error {ident["boxes_max_abs"]:.3g} > {tol.box_atol:g}')
    if tol.score_atol is not None:
        for key in ('scores', 'mask_scores'):
            if ident[f'{key}_max_abs'] > tol.score_atol:
                bad.append(f'{key}: max abs error {ident[f"{key}_max_abs"]:.3g} > '
                           f'{tol.score_atol:g}')
    final = report['final']
    if tol.min_mask_iou is not None and final['min_mask_iou_excl_ties'] is not None and \
            final['min_mask_iou_excl_ties'] < tol.min_mask_iou:
        bad.append(f'mask IoU (excluding pixels within {TIE_EPS:g} of 0.5): min '
                   f'{final["min_mask_iou_excl_ties"]:.4f} < {tol.min_mask_iou}')
    if tol.identical_detections and (final['unmatched_ref'] or final['unmatched_test']):
        bad.append(f'final detections: {final["unmatched_ref"]} PyTorch and '
                   f'{final["unmatched_test"]} backend detections unmatched')
    if tol.mean_mask_iou is not None:
        if final['mean_mask_iou'] is None:
            if final['ref'] or final['test']:
                bad.append('no detection matched')
        elif final['mean_mask_iou'] < tol.mean_mask_iou:
            bad.append(f'mask IoU: mean {final["mean_mask_iou"]:.4f} < {tol.mean_mask_iou}')
    if tol.max_map_delta is not None and 'map' in report:
        for kind, delta in report['map']['delta'].items():
            if abs(delta) > tol.max_map_delta:
                bad.append(f'{kind} mAP delta {delta:+.2f} points exceeds {tol.max_map_delta}')
    return bad


def coco_images(annotation_file: str, image_dir: str, limit: int = 0):
    """(paths, image ids) of the images listed in a COCO annotation file."""
    if not os.path.isfile(annotation_file):
        raise InputError(f'annotation file not found: {annotation_file}')
    try:
        with open(annotation_file) as f:
            data = json.load(f)
        entries = sorted(data['images'], key=lambda e: e['id'])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f'not a COCO annotation file: {annotation_file} ({exc})') from None
    if limit:
        entries = entries[:limit]
    paths = [os.path.join(image_dir, e['file_name']) for e in entries]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise InputError(f'{len(missing)} images of {annotation_file} are missing from '
                         f'{image_dir}, e.g. {missing[0]}')
    return paths, [e['id'] for e in entries]


def report_lines(report: dict, violations: List[str], precision: str) -> List[str]:
    """A short human-readable summary."""
    lines = []
    for key, err in report['raw'].items():
        if err.get('max_abs') is not None:
            lines.append(f'raw {key:<14} max abs {err["max_abs"]:.3g}  max rel {err["max_rel"]:.3g}')
    for key, err in report['contract'].items():
        if err.get('max_abs') is not None:
            lines.append(f'det {key:<14} max abs {err["max_abs"]:.3g}  max rel {err["max_rel"]:.3g}')
    i = report['identity']
    lines.append(f'detections identical in {i["identical"]}/{i["images"]} images '
                 f'(only PyTorch {i["only_ref"]}, only backend {i["only_test"]}); common: boxes '
                 f'{i["boxes_max_abs"]:.3g}, scores {i["scores_max_abs"]:.3g}, mask scores '
                 f'{i["mask_scores_max_abs"]:.3g} max abs')
    f = report['final']
    fmt = lambda v: 'n/a' if v is None else f'{v:.4f}'  # noqa: E731
    lines.append(f'final (score > {f["score_threshold"]}): {f["matched"]} matched of '
                 f'{f["ref"]} PyTorch / {f["test"]} backend; class agreement '
                 f'{fmt(f["class_agreement"])}; box IoU mean {fmt(f["mean_box_iou"])} min '
                 f'{fmt(f["min_box_iou"])}; mask IoU mean {fmt(f["mean_mask_iou"])} min '
                 f'{fmt(f["min_mask_iou"])} (excluding threshold ties: min '
                 f'{fmt(f["min_mask_iou_excl_ties"])}); max score diff {fmt(f["max_score_diff"])}')
    if 'map' in report:
        m = report['map']
        lines.append('mAP (points): ' + ', '.join(
            f'{k} {m["reference"][k]:.2f} -> {m["backend"][k]:.2f} ({m["delta"][k]:+.2f})'
            for k in m['reference']))
    verdict = 'PASS' if not violations else 'FAIL'
    lines.append(f'{verdict} ({precision} tolerances)')
    lines += [f'  - {v}' for v in violations]
    return lines


def tolerances_dict(tol: Tolerances) -> dict:
    return asdict(tol)
