#!/usr/bin/env python3
"""Writes the ctest fixtures: real images and what the Python reference makes of them.

For each bundled COCO sample image: the decoded BGR image (cv2.imread), the official bilinear resize
(torch F.interpolate, as yolact_deploy.transforms.preprocess), the engine-contract outputs of a model
run, and yolact_deploy.postprocess.finalize's results (boxes, classes, scores, masks, pycocotools RLE)
plus visualize.draw_detections without text. Also OpenCV resizes of random maps (edge sizes) and RLE
edge cases. Plain .npy / text files, so the C++ tests need no image codec and no Python.

The model is the bundled trained one when installed, else yolact_resnet50 at 256 px with
yolact_deploy.testing.lively_random_init (random weights with confident scores and structured masks).

Exit code 77 (ctest: skipped) when the Python dependencies are missing.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
SAMPLES = os.path.join(ROOT, 'yolact_deploy', 'assets', 'samples')
sys.path.insert(0, ROOT)
VERSION = 5  # bump when the fixture layout changes


def stamp_of() -> str:
    """Hash of this script, the sample images and the bundled model (if any)."""
    h = hashlib.sha256()
    files = [__file__] + sorted(os.path.join(SAMPLES, f) for f in os.listdir(SAMPLES)
                                if f.endswith('.jpg'))
    files += glob.glob(os.path.join(ROOT, 'yolact_deploy', 'assets', '*.pth'))
    files += [os.path.join(ROOT, 'yolact_deploy', 'deploy', 'schemas', 'engine_sidecar.schema.json')]
    for path in files:
        with open(path, 'rb') as f:
            h.update(f.read())
    h.update(str(VERSION).encode())
    return h.hexdigest()[:16]


def up_to_date(out: str) -> bool:
    try:
        with open(os.path.join(out, 'manifest.json')) as f:
            return json.load(f).get('stamp') == stamp_of()
    except (OSError, ValueError):
        return False


if __name__ == '__main__' and '--force' not in sys.argv:
    _args = sys.argv[1:]
    if '--out' in _args and _args.index('--out') + 1 < len(_args) and up_to_date(_args[_args.index('--out') + 1]):
        print('make_fixtures: fixtures are up to date')
        sys.exit(0)

try:
    import cv2  # noqa: F401  (checked here: the fixtures need OpenCV through yolact_deploy)
    import numpy as np
    import torch
    import torch.nn.functional as F
    from pycocotools import mask as mask_util

    from yolact_deploy import config as yconfig
    from yolact_deploy.assets import sample_images
    from yolact_deploy.postprocess import finalize, resize_masks, sanitize_boxes
    from yolact_deploy.transforms import load_image, preprocess
    from yolact_deploy.visualize import draw_detections
except ImportError as exc:  # pragma: no cover - depends on the machine
    print(f'make_fixtures: skipped: {exc}', file=sys.stderr)
    sys.exit(77)

SCORE_THRESHOLD = 0.05
TOP_K = 15


def model_and_name():
    from yolact_deploy.checkpoint import load_model
    try:
        from yolact_deploy.assets import default_weights
        path = default_weights()
        return load_model(path), f'bundled {os.path.basename(path)}'
    except Exception:
        pass
    from yolact_deploy.model import Yolact
    from yolact_deploy.testing import lively_random_init
    cfg = yconfig.get_preset('yolact_resnet50').replace(max_size=256)
    example = preprocess([load_image(sample_images()[0])], cfg)
    torch.manual_seed(0)
    model = lively_random_init(Yolact(cfg).eval(), seed=0, example=example)
    return model, 'yolact_resnet50@256, lively_random_init(seed=0)'


def save(out, name, array):
    np.save(os.path.join(out, name + '.npy'), np.ascontiguousarray(array))


def rle_string(mask_hw: np.ndarray) -> str:
    return mask_util.encode(np.asfortranarray(mask_hw.astype(np.uint8)))['counts'].decode('ascii')


def write_sidecars(out: str, cfg, proto) -> list:
    """Engine sidecars written by the TensorRT build step's own make_sidecar (fake build inputs, no
    TensorRT needed), so the C++ parser is tested against the real layout."""
    try:
        from yolact_deploy.export import tensorrt_build as tb
        from yolact_deploy.export.metadata import build_metadata
    except ImportError as exc:
        print(f'make_fixtures: no sidecar fixtures ({exc})', file=sys.stderr)
        return []
    written = []
    for flavour, plugin in (('portable', None),
                            ('plugins', {'file': 'libyolact_plugins.so',
                                         'path': '/opt/yolact/lib/libyolact_plugins.so',
                                         'sha256': 'ab' * 32, 'ops': ['YolactFastNMS'],
                                         'version': '1', 'namespace': ''})):
        meta = build_metadata(cfg, raw=False, flavour=flavour, precision='fp16', opset=19,
                              max_detections=100, cross_class=False, proto_size=proto,
                              output_names=('num_detections', 'boxes', 'scores', 'mask_scores',
                                            'classes', 'masks'))
        info = tb.OnnxInfo('m.onnx', meta, plugin and ['YolactFastNMS'] or [], False,
                           ['batch', 'height', 'width', 3], '0' * 64)
        plan = tb.BuildPlan(True, [], False, False, 'fp16', plugin is not None)
        options = tb.BuildOptions()
        sidecar = tb.make_sidecar(engine_path=f'{flavour}.plan', engine_sha256='e' * 64,
                                  trt_version='10.3.0.26',
                                  gpu={'index': 0, 'name': 'Orin', 'compute_capability': '8.7'},
                                  plan=plan, options=options, profile=options.profile(cfg.max_size),
                                  info=info, plugin=plugin, build_seconds=1.0)
        name = f'sidecar_{flavour}.json'
        with open(os.path.join(out, name), 'w') as f:
            json.dump(sidecar, f, indent=1)
        written.append(name)
    return written


# Hand-picked edge cases (JSON pointer, new value; DELETE removes the key) on top of the real sidecar.
DELETE = object()
CORPUS_EDITS = [
    ('/schema', 2.0), ('/schema', True), ('/schema', 0), ('/kind', 'other'), ('/engine', ''),
    ('/engine_sha256', 'E' * 64), ('/engine_sha256', 'e' * 64 + '\n'), ('/engine_sha256', 'e' * 63),
    ('/tensorrt_version', '10'), ('/tensorrt_version', '10.3.0.26.1'), ('/tensorrt_version', '10.3.0\n'),
    ('/tensorrt_version', 10.3), ('/gpu/compute_capability', '8.10'), ('/gpu/compute_capability', '0.5'),
    ('/gpu/compute_capability', 87), ('/gpu/index', -1), ('/gpu/name', DELETE), ('/gpu', None),
    ('/precision', ''), ('/strongly_typed', 1), ('/builder_flags', ['a', 1]), ('/profiles', []),
    ('/profiles/0/min', [1, 2, 3]), ('/profiles/0/max/1', 65537), ('/profiles/0/opt/0', 1.0),
    ('/profiles/0/opt/0', 1.5), ('/profiles/0/input', DELETE), ('/plugin_library', None),
    ('/plugin_library', 'libyolact_plugins.so'), ('/plugin_library/ops', []), ('/plugin_library/sha256', None),
    ('/io_tensors', [1]), ('/model/graph', 'raw'), ('/model/graph', 'other'), ('/model/flavour', 'x'),
    ('/model/class_names', []), ('/model/class_names/0', 'p\u00e9rson \u2603'), ('/model/category_ids/0', -1),
    ('/model/category_ids/0', 2 ** 40), ('/model/input/network_size', [550]), ('/model/input', {}),
    ('/model/proto_size', [0, 1]), ('/model/max_detections', 0), ('/model/mask_rescoring', 'no'),
    ('/extra_key', {'anything': [1, None]}), ('/model', DELETE), ('/notes', DELETE),
]


def edit(doc, pointer, value):
    import copy
    doc = copy.deepcopy(doc)
    *path, last = [p for p in pointer.split('/')[1:]]
    node = doc
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node.get(part)
        if node is None:
            return doc
    key = int(last) if isinstance(node, list) else last
    if value is DELETE:
        if isinstance(node, dict):
            node.pop(key, None)
    elif isinstance(node, (dict, list)):
        node[key] = value
    return doc


def random_edits(doc, n, seed=0):
    """Leaves replaced by values of other types (seeded): the broad part of the corpus."""
    import random
    rng = random.Random(seed)
    leaves = []

    def walk(node, pointer):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if pointer.count('/') < 4 and not (pointer.startswith('/model/config')):
                leaves.append(f'{pointer}/{k}')
                walk(v, f'{pointer}/{k}')
    walk(doc, '')
    values = [None, True, False, 0, -1, 1, 1.0, 2.5, 1e300, '', 'x', '8.7', '10.3.0', [], [1], [1, 2],
              {}, {'a': 1}, 'e' * 64, [1, 2, 3, 4], [1, 64, 64, 3]]
    return [(p, rng.choice(values)) for p in rng.sample(leaves, min(n, len(leaves)))]


def write_sidecar_corpus(out: str, sidecars: list) -> list:
    """Valid and broken sidecars with the verdict of the Python validator; the C++ validator must agree."""
    try:
        from yolact_deploy.deploy.sidecar_schema import sidecar_errors
    except ImportError as exc:
        print(f'make_fixtures: no sidecar corpus ({exc})', file=sys.stderr)
        return []
    folder = os.path.join(out, 'sidecar_corpus')
    os.makedirs(folder, exist_ok=True)
    entries = []
    for name in sidecars:
        with open(os.path.join(out, name)) as f:
            base = json.load(f)
        edits = [('', None)] + CORPUS_EDITS + random_edits(base, 60, seed=len(entries))
        for pointer, value in edits:
            doc = edit(base, pointer, value) if pointer else base
            file = f'{len(entries):03d}.json'
            with open(os.path.join(folder, file), 'w') as f:
                json.dump(doc, f)
            errors = sidecar_errors(doc)
            entries.append({'file': f'sidecar_corpus/{file}', 'edit': pointer, 'valid': not errors})
    return entries


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True)
    p.add_argument('--force', action='store_true')
    args = p.parse_args(argv)
    out = args.out
    os.makedirs(out, exist_ok=True)
    stamp = stamp_of()
    manifest_path = os.path.join(out, 'manifest.json')
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, model_name = model_and_name()
    cfg = model.config
    images = [load_image(p) for p in sample_images()]
    entries = []
    for i, (path, image) in enumerate(zip(sample_images(), images)):
        save(out, f'img_{i}', image)
        # Official preprocessing up to (not including) normalisation: float bilinear resize.
        t = torch.from_numpy(image).float().permute(2, 0, 1)[None]
        resized = F.interpolate(t, (cfg.max_size, cfg.max_size), mode='bilinear', align_corners=False)
        save(out, f'resized_{i}', resized[0].permute(1, 2, 0).numpy())
        with torch.no_grad():
            det = model.detect(model(preprocess([image], cfg)))
        det = {k: v.numpy() for k, v in det.items()}
        contract = {
            'num': det['num_detections'].reshape(-1).astype(np.int32),
            'boxes': det['boxes'].astype(np.float32), 'scores': det['scores'].astype(np.float32),
            'mask_scores': det['mask_scores'].astype(np.float32),
            'classes': det['classes'].astype(np.int32), 'masks': det['masks'].astype(np.float32)}
        for k, v in contract.items():
            save(out, f'contract_{i}_{k}', v[0] if k != 'num' else v)
        res = finalize(det, [image.shape[:2]], cfg.class_names, score_threshold=SCORE_THRESHOLD,
                       top_k=TOP_K)[0]
        save(out, f'ref_{i}_boxes', res.boxes.astype(np.int32))
        save(out, f'ref_{i}_classes', res.classes.astype(np.int32))
        save(out, f'ref_{i}_scores', res.scores.astype(np.float32))
        save(out, f'ref_{i}_mask_scores', res.mask_scores.astype(np.float32))
        save(out, f'ref_{i}_masks', res.masks.astype(np.uint8))
        with open(os.path.join(out, f'ref_{i}_rle.txt'), 'w') as f:
            f.writelines(rle_string(m) + '\n' for m in res.masks)
        save(out, f'ref_{i}_drawn', draw_detections(image, res, draw_text=False))
        save(out, f'ref_{i}_drawn_text', draw_detections(image, res))
        with open(os.path.join(out, f'ref_{i}_coco.json'), 'w') as f:
            json.dump(res.to_coco(int(os.path.splitext(os.path.basename(path))[0]),
                                  cfg.category_ids), f)
        entries.append({'index': i, 'source': path, 'height': int(image.shape[0]),
                        'width': int(image.shape[1]), 'detections': len(res),
                        'image_id': int(os.path.splitext(os.path.basename(path))[0])})

    # cv2.resize INTER_LINEAR of float maps at edge sizes (upscale, 2x downscale, identity, 1 px).
    rng = np.random.default_rng(0)
    resize_cases = [((64, 64), (480, 640)), ((69, 69), (427, 640)), ((64, 64), (32, 32)),
                    ((64, 64), (64, 64)), ((5, 7), (1, 1)), ((1, 1), (9, 4)), ((64, 64), (41, 97)),
                    ((138, 138), (375, 500))]
    for j, ((sh, sw), (dh, dw)) in enumerate(resize_cases):
        src = rng.random((sh, sw), dtype=np.float32)
        save(out, f'rz_{j}_src', src)
        save(out, f'rz_{j}_dst', resize_masks(src[None], dh, dw)[0])

    # Box sanitising on adversarial boxes (outside, swapped, huge, negative, degenerate).
    boxes = np.array([[0.1, 0.2, 0.5, 0.9], [0.9, 0.8, 0.1, 0.2], [-0.5, -0.2, 1.5, 1.7],
                      [1.2, 0.1, 1.5, 0.3], [-0.7, 0.1, -0.2, 0.3], [0.3, 0.3, 0.3, 0.3],
                      [0.999999, 0.0, 1.0, 1e-7], [-1e6, -1e6, 1e6, 1e6]], np.float32)
    save(out, 'syn_boxes', boxes)
    save(out, 'syn_sanitized_480x640', sanitize_boxes(boxes, 480, 640))
    save(out, 'syn_sanitized_1x3', sanitize_boxes(boxes, 1, 3))

    # RLE edge cases: empty, full, single pixels at the ends, random, a tall and a wide mask.
    rle_cases = [np.zeros((4, 5), np.uint8), np.ones((4, 5), np.uint8), np.eye(6, 7, dtype=np.uint8),
                 (rng.random((33, 47)) > 0.5).astype(np.uint8),
                 (rng.random((1000, 3)) > 0.01).astype(np.uint8),
                 (rng.random((2, 3000)) > 0.999).astype(np.uint8)]
    rle_cases[2][0, 0] = 0
    rle_cases[2][-1, -1] = 1
    with open(os.path.join(out, 'rle_cases.txt'), 'w') as f:
        for j, m in enumerate(rle_cases):
            save(out, f'rle_{j}', m)
            f.write(rle_string(m) + '\n')

    proto = [int(s) for s in det['masks'].shape[2:]]
    sidecars = write_sidecars(out, cfg, proto)
    corpus = write_sidecar_corpus(out, sidecars)

    manifest = {'stamp': stamp, 'model': model_name, 'score_threshold': SCORE_THRESHOLD,
                'top_k': TOP_K, 'network_size': cfg.max_size, 'max_detections': int(det['boxes'].shape[1]),
                'proto_size': proto, 'class_names': list(cfg.class_names),
                'category_ids': list(cfg.category_ids), 'images': entries,
                'resize_cases': len(resize_cases), 'rle_cases': len(rle_cases),
                'sidecars': sidecars, 'sidecar_corpus': corpus}
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=1)
    print(f'make_fixtures: wrote {len(entries)} images ({sum(e["detections"] for e in entries)} '
          f'reference detections) to {out} [{model_name}]')
    return 0


if __name__ == '__main__':
    sys.exit(main())
