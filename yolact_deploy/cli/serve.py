"""yolact-serve: an HTTP inference service (JSON in/out, COCO RLE masks) over any backend.

    yolact-serve --weights model.onnx --port 8080
    curl -s -H 'Content-Type: image/jpeg' --data-binary @image.jpg localhost:8080/v1/detect

Concurrent requests are batched (up to --max-batch, never past a TensorRT engine's batch profile),
the queue is bounded (503 past --max-queue), bodies and images are size-limited (413), and SIGTERM or
Ctrl-C drains in-flight requests before exiting. See docs/serving.md.
"""
from __future__ import annotations

import argparse
import logging
import sys

from ..errors import InputError
from .common import ArgumentParser, batch_size, non_negative_float, non_negative_int, positive_float, positive_int, probability
from .common import cli_main, open_model, run_cli


def build_parser() -> argparse.ArgumentParser:
    from ..serve import ServeConfig
    d = ServeConfig()
    p = ArgumentParser(prog='yolact-serve', description=__doc__.split('\n\n')[0])
    p.add_argument('--weights', help='model: .onnx (onnxruntime), .plan/.engine (TensorRT) or .pth '
                                     '(PyTorch); default: the bundled model')
    p.add_argument('--backend', choices=['torch', 'onnxruntime', 'tensorrt'],
                   help='force a backend (default: from the file extension)')
    p.add_argument('--config', help='preset for official .pth checkpoints whose name does not tell it')
    p.add_argument('--device', help='cpu or cuda[:N] (torch/onnxruntime)')
    p.add_argument('--threads', type=positive_int, help='onnxruntime intra-op threads')
    p.add_argument('--plugins', metavar='LIB', help='plugin library (TensorRT engines / plugin graphs)')
    p.add_argument('--host', default=d.host, help=f'address to bind (default {d.host}; 0.0.0.0 = all)')
    p.add_argument('--port', type=int, default=d.port, help=f'port (default {d.port}; 0 = any free)')
    p.add_argument('--max-batch', type=batch_size, help='largest batch (default: the model\'s limit, or 8)')
    p.add_argument('--batch-window-ms', type=non_negative_float, default=d.batch_window_ms,
                   help=f'how long a request waits for others to batch with (default {d.batch_window_ms:g})')
    p.add_argument('--max-queue', type=positive_int, default=d.max_queue,
                   help=f'queued images before answering 503 (default {d.max_queue})')
    p.add_argument('--max-body-mb', type=positive_float, default=d.max_body_bytes / 2 ** 20,
                   help=f'request body limit in MiB (default {d.max_body_bytes / 2 ** 20:g})')
    p.add_argument('--max-pixels', type=positive_int, default=d.max_pixels,
                   help=f'per-image pixel limit (default {d.max_pixels})')
    p.add_argument('--max-images', type=positive_int, default=d.max_images_per_request,
                   help=f'images per request (default {d.max_images_per_request})')
    p.add_argument('--max-request-mb', type=positive_float, default=d.max_request_bytes / 2 ** 20,
                   help='memory one request may hold (body, decoded images, masks; estimated from '
                        f'the image headers before decoding) before 413 (default {d.max_request_bytes / 2 ** 20:g})')
    p.add_argument('--memory-budget-mb', type=positive_float, default=d.memory_budget_bytes / 2 ** 20,
                   help='memory all requests together may hold before 503 (default '
                        f'{d.memory_budget_bytes / 2 ** 20:g})')
    p.add_argument('--max-connections', type=positive_int, default=d.max_connections,
                   help=f'open connections (default {d.max_connections})')
    p.add_argument('--timeout', type=positive_float, default=d.request_timeout_s,
                   help=f'seconds a request may wait for inference before 504 (default {d.request_timeout_s:g})')
    p.add_argument('--score-threshold', type=probability, default=d.score_threshold,
                   help=f'default score threshold (default {d.score_threshold:g})')
    p.add_argument('--top-k', type=non_negative_int, default=d.top_k, help=f'default max detections (default {d.top_k})')
    p.add_argument('--cross-class-nms', action='store_true', help='cross-class Fast NMS (torch, raw graphs)')
    p.add_argument('--name', default=d.model_name, help='model name in responses')
    p.add_argument('--access-log', action='store_true', help='log every request')
    return p


@cli_main
def main(argv=None):
    from ..serve import ServeConfig, run_forever
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='yolact-serve: %(message)s', stream=sys.stderr)
    config = ServeConfig(
        host=args.host, port=args.port, max_batch=args.max_batch,
        batch_window_ms=args.batch_window_ms, max_queue=args.max_queue,
        max_body_bytes=int(args.max_body_mb * 2 ** 20), max_pixels=args.max_pixels,
        max_images_per_request=args.max_images,
        max_request_bytes=int(args.max_request_mb * 2 ** 20),
        memory_budget_bytes=int(args.memory_budget_mb * 2 ** 20), max_connections=args.max_connections,
        request_timeout_s=args.timeout, score_threshold=args.score_threshold, top_k=args.top_k,
        model_name=args.name, access_log=args.access_log).validate()
    options = {'config': args.config, 'cross_class': args.cross_class_nms}
    for key in ('device', 'threads'):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.plugins:
        options['plugin_library'] = args.plugins
    predictor = open_model(args.weights, args.backend, **options)

    def ready(server):
        print(f'yolact-serve: {args.weights or "bundled model"} ({predictor.backend}, '
              f'{len(predictor.class_names)} classes, max batch {server.service.max_batch}, '
              f'queue {config.max_queue}) on {server.url}', file=sys.stderr, flush=True)

    try:
        return run_forever(predictor, config, ready=ready)
    except OSError as exc:
        raise InputError(f'cannot listen on {config.host}:{config.port}: {exc.strerror or exc}') \
            from None


if __name__ == '__main__':
    run_cli(main)
