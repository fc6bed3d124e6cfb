"""yolact-infer: run a model on images, folders, videos or a webcam and draw the results."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import List

import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..deploy.draw import draw_detections
from ..deploy.media import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_images, load_image, read_video,
                            save_image, video_writer)
from .common import ArgumentParser, non_negative_int, positive_int, probability
from .common import (atomic_output, check_creatable_dir, check_output_file, check_writable_dir,
                     cli_main, open_model, run_cli)



def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog='yolact-infer',
        description='Run YOLACT on images, folders, video files or a webcam and save drawn results.')
    p.add_argument('inputs', nargs='*',
                   help='image files, folders of images, video files, or a webcam index (e.g. 0); '
                        'default: a bundled sample image')
    p.add_argument('--weights', help='model file: .pth (ours or official), .onnx or .plan; '
                                     'default: the bundled model')
    p.add_argument('--config', help='preset for official checkpoints whose name does not tell it')
    p.add_argument('--backend', choices=['torch', 'onnxruntime', 'openvino', 'tensorrt'],
                   help='force a backend (default: from the file extension)')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0 (default cpu)')
    p.add_argument('--score-threshold', type=probability, default=0.15,
                   help='drop detections with box score <= this (default 0.15)')
    p.add_argument('--top-k', type=positive_int, default=15, help='draw at most this many detections (15)')
    p.add_argument('--cross-class-nms', action='store_true', help='cross-class Fast NMS')
    p.add_argument('-o', '--output', default='runs/infer',
                   help='folder for drawn images/videos (default runs/infer)')
    p.add_argument('--no-draw', action='store_true', help='do not write drawn images/videos')
    p.add_argument('--save-json', metavar='FILE',
                   help='write COCO-style results (bbox + RLE segm) for all images to FILE')
    p.add_argument('--dump-raw', metavar='FILE.npz',
                   help='write raw head outputs and final detections of one image to FILE.npz')
    p.add_argument('--max-frames', type=non_negative_int, default=0,
                   help='stop videos/webcam after this many frames (0 = all; webcam default 300)')
    return p


def _classify_inputs(inputs: List[str]):
    """-> list of (kind, value): kind is 'image', 'video' or 'webcam'. Fails before any output."""
    items = []
    for entry in inputs:
        if entry.isdigit() and not os.path.exists(entry):
            items.append(('webcam', int(entry)))
        elif os.path.isdir(entry):
            files = list_images(entry)
            if not files:
                raise InputError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder {entry}')
            items += [('image', f) for f in files]
        elif not os.path.exists(entry):
            raise InputError(f'input not found: {entry}')
        elif entry.lower().endswith(VIDEO_EXTENSIONS):
            items.append(('video', entry))
        else:
            items.append(('image', entry))
    return items


def _image_id(path: str, fallback: int) -> int:
    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem) if stem.isdigit() else fallback


def _dump_raw(path: str, out) -> None:
    arrays = {f'raw_{k}': v for k, v in out.raw.items()}
    arrays.update({f'det_{k}': v for k, v in out.detections.items()})
    r = out.results[0]
    arrays.update(final_boxes=r.boxes, final_classes=r.classes, final_scores=r.scores,
                  final_mask_scores=r.mask_scores, final_masks=r.masks)
    with atomic_output(path, suffix='.npz') as tmp:
        with open(tmp, 'wb') as f:
            np.savez_compressed(f, **arrays)


def _run_video(predictor, source, dest, args) -> int:
    frames_in, fps, total = read_video(source)
    limit = args.max_frames or (300 if isinstance(source, int) else 0)
    frames = 0
    if not args.no_draw:
        check_writable_dir(os.path.dirname(os.path.abspath(dest)))
    sink = contextlib.nullcontext(None) if args.no_draw else video_writer(dest, fps)
    with sink as write:
        with tqdm(total=limit or total or None, desc=os.path.basename(str(dest)), unit='frame') as bar:
            for frame in frames_in:
                if limit and frames >= limit:
                    break
                dets = predictor.predict(frame, args.score_threshold, args.top_k)
                if write is not None:
                    write(draw_detections(frame, dets))
                frames += 1
                bar.update(1)
        frames_in.close()
        if frames == 0:
            raise InputError(f'no frames could be read from {source}')
    return frames


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.inputs:
        from ..assets import default_sample
        args.inputs = [default_sample()]
    items = _classify_inputs(args.inputs)
    images = [v for k, v in items if k == 'image']
    if args.dump_raw and (len(items) != 1 or items[0][0] != 'image'):
        raise InputError('--dump-raw takes exactly one image input')
    if args.save_json:
        check_output_file(args.save_json)
    if args.dump_raw:
        check_output_file(args.dump_raw)
    if not args.no_draw:
        check_creatable_dir(args.output)  # created when the first drawing is written
    decoded = {p: load_image(p) for p in images}  # fail on a bad image before writing anything

    predictor = open_model(args.weights, args.backend, config=args.config, device=args.device,
                           cross_class=args.cross_class_nms)
    print(f'model: {args.weights or "bundled default"} ({predictor.backend} backend, '
          f'{len(predictor.class_names)} classes, input {predictor.input_size})', file=sys.stderr)

    coco, written = [], []
    progress = tqdm(items, desc='yolact-infer', unit='input', disable=len(items) < 2)
    for n, (kind, value) in enumerate(progress):
        if kind == 'image':
            image = decoded[value]
            out = predictor.predict_batch([image], args.score_threshold, args.top_k)
            dets = out.results[0]
            if args.dump_raw:
                _dump_raw(args.dump_raw, out)
                written.append(args.dump_raw)
            if args.save_json:
                coco += dets.to_coco(_image_id(value, n), predictor.category_ids)
            summary = ', '.join(f'{lab} {s:.2f}' for lab, s in zip(dets.labels(), dets.mask_scores))
            tqdm.write(f'{value}: {len(dets)} detections' + (f' ({summary})' if summary else ''),
                       file=sys.stderr)
            if not args.no_draw:
                dest = os.path.join(args.output, os.path.basename(value))
                check_writable_dir(args.output)
                save_image(dest, draw_detections(image, dets))
                written.append(dest)
        else:
            name = f'webcam{value}.mp4' if kind == 'webcam' else \
                os.path.splitext(os.path.basename(value))[0] + '.mp4'
            dest = os.path.join(args.output, name)
            frames = _run_video(predictor, value, dest, args)
            tqdm.write(f'{value}: {frames} frames', file=sys.stderr)
            if not args.no_draw:
                written.append(dest)
    if args.save_json:
        with atomic_output(args.save_json, suffix='.json') as tmp:
            with open(tmp, 'w') as f:
                json.dump(coco, f)
        written.append(args.save_json)
    for path in written:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    run_cli(main)
