"""yolact-validate: a backend (ONNX Runtime now, TensorRT later) against the PyTorch reference.

Exit codes: 0 within tolerance, 1 out of tolerance, 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import InputError, YolactError
from ..deploy.media import IMAGE_EXTENSIONS
from .common import ArgumentParser, non_negative_int, probability
from .common import atomic_output, check_output_file, cli_main, open_model, require_torch, run_cli


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog='yolact-validate',
        description='Compare a deployed model (.onnx; .plan later) with the PyTorch reference on '
                    'real images: per-output errors, detection agreement, optional COCO mAP delta.')
    p.add_argument('model', help='the model to check: .onnx (or .plan with the tensorrt backend)')
    p.add_argument('--weights', help='the PyTorch checkpoint it was exported from (default: the '
                                     'bundled model)')
    p.add_argument('--config', help='preset for official checkpoints whose name does not tell it')
    p.add_argument('--backend', choices=['onnxruntime', 'openvino', 'tensorrt'],
                   help='backend for MODEL (default: from the extension)')
    p.add_argument('--images', nargs='+', metavar='PATH',
                   help='images or folders (default: a bundled sample image)')
    p.add_argument('--coco', metavar='ANNOTATIONS.json',
                   help='COCO annotation file: validate on its images and report the mAP delta')
    p.add_argument('--image-dir', help='folder of the --coco images (default: ../val2017 or the '
                                       "annotation file's sibling folder named after its split)")
    p.add_argument('--limit', type=non_negative_int, default=0, help='use at most N images (0 = all)')
    p.add_argument('--precision', choices=['auto', 'fp32', 'fp16'], default='auto',
                   help="tolerance set (default: the model's precision from its metadata)")
    p.add_argument('--score-threshold', type=probability, default=0.0,
                   help='final detections compared above this box score (default 0: all K)')
    p.add_argument('--threads', type=non_negative_int, default=0,
                   help='CPU threads for both PyTorch and the backend (0 = library default)')
    p.add_argument('--device', default='cpu', help='device for both (default cpu)')
    p.add_argument('--json', metavar='FILE', help='write the full report as JSON')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress bar')
    return p


def _collect_images(entries):
    out = []
    for entry in entries:
        if os.path.isdir(entry):
            files = sorted(os.path.join(entry, f) for f in os.listdir(entry)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise InputError(f'no images in folder {entry}')
            out += files
        elif os.path.isfile(entry):
            out.append(entry)
        else:
            raise InputError(f'image not found: {entry}')
    return out


def _coco_dir(annotations: str) -> str:
    base = os.path.basename(annotations)
    root = os.path.dirname(os.path.dirname(os.path.abspath(annotations)))
    split = 'train2017' if 'train' in base else 'val2017'
    return os.path.join(root, split)


def _meta(predictor) -> dict:
    return dict(getattr(predictor, 'meta', {}) or {})


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    require_torch('yolact-validate (it compares with the PyTorch model)')
    from .. import validate as V
    from ..checkpoint import load_model
    from ..runtime import backend_for_path
    from ..torch_runtime import TorchPredictor

    if not os.path.exists(args.model):
        raise InputError(f'model file not found: {args.model}')
    if args.json:
        check_output_file(args.json)
    image_ids = None
    if args.coco:
        image_dir = args.image_dir or _coco_dir(args.coco)
        images, image_ids = V.coco_images(args.coco, image_dir, args.limit)
    else:
        if args.images:
            images = _collect_images(args.images)
        else:
            from ..assets import default_sample
            images = [default_sample()]
        if args.limit:
            images = images[:args.limit]
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)

    backend_name = args.backend or backend_for_path(args.model)
    backend = open_model(args.model, backend_name, device=args.device,
                         threads=args.threads or None)
    meta = _meta(backend)
    weights = args.weights
    if weights is None:
        from ..assets import default_weights
        weights = default_weights()
    model = load_model(weights, preset=args.config, device=args.device)
    cfg = model.config
    if meta:
        if meta.get('preset') != cfg.name or \
                list(meta['input']['network_size']) != [cfg.max_size, cfg.max_size]:
            raise InputError(f'{args.model} is preset {meta.get("preset")} at '
                             f'{meta["input"]["network_size"]}, but {weights} is {cfg.name} at '
                             f'{cfg.max_size}: pass the checkpoint it was exported from')
        if list(meta.get('class_names', [])) != list(cfg.class_names):
            raise InputError(f'{args.model} and {weights} have different class lists')
        # Same K and NMS mode as the graph, so both sides compute the same thing.
        model.config = cfg.replace(max_num_detections=int(meta.get('max_detections', 100)))
    cross_class = bool(meta.get('cross_class_nms', False))
    reference = TorchPredictor(model, args.device, cross_class=cross_class)
    precision = meta.get('precision', 'fp32') if args.precision == 'auto' else args.precision
    tol = V.TOLERANCES[precision]
    print(f'validate: {args.model} ({backend.backend}, {meta.get("flavour", "?")}, {precision}, '
          f'{meta.get("graph", "?")}) vs PyTorch {weights} on {len(images)} image(s)',
          file=sys.stderr)
    skip_mask_scores = meta.get('graph') == 'raw' and meta.get('mask_rescoring', False)
    report = V.compare_predictors(reference, backend, images, score_threshold=args.score_threshold,
                                  annotation_file=args.coco, image_ids=image_ids,
                                  progress=not args.quiet, skip_mask_scores=skip_mask_scores)
    violations = V.check(report, tol)
    report.update(model=args.model, weights=weights, backend=backend.backend, metadata={
        k: meta.get(k) for k in ('preset', 'graph', 'flavour', 'precision', 'opset',
                                 'max_detections')}, precision=precision,
        tolerances=V.tolerances_dict(tol), violations=violations, passed=not violations)
    for line in V.report_lines(report, violations, precision):
        print(line)
    if args.json:
        with atomic_output(args.json, suffix='.json') as tmp:
            with open(tmp, 'w') as f:
                json.dump(report, f, indent=1)
        print(f'wrote {args.json}')
    return 0 if not violations else 1


if __name__ == '__main__':
    try:
        run_cli(main)
    except YolactError:  # pragma: no cover - cli_main handles it
        raise
