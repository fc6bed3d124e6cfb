"""yolact-export: a checkpoint (ours or official) -> ONNX graph (and, later, a TensorRT engine).

``--to onnx`` is implemented here; ``--to trt`` is dispatched to ``yolact_deploy.export.tensorrt_build``
(``add_arguments(parser)`` / ``run(args, model)``), which another module provides.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional

from ..errors import InputError, YolactError
from .common import ArgumentParser, batch_size, int_range, positive_int
from .common import cli_main, run_cli


def build_parser() -> argparse.ArgumentParser:
    from ..export.onnx_export import DCN_FORMS, DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
    p = ArgumentParser(
        prog='yolact-export',
        description='Export a YOLACT/YOLACT++ checkpoint to ONNX (end-to-end engine contract by '
                    'default; see docs/onnx.md).')
    p.add_argument('--weights', help='checkpoint: ours or an official dbolya/yolact .pth '
                                     '(default: the bundled model)')
    p.add_argument('--config', help='preset for official checkpoints whose file name does not tell it')
    p.add_argument('--to', choices=['onnx', 'trt', 'triton'], default='onnx',
                   help='target (default onnx); triton: a Triton model repository (-o folder)')
    p.add_argument('-o', '--output', help='output file (default: <weights name>[_raw][_plugins]'
                                          '[_gridsample][_fp16].onnx in the current folder)')
    raw = p.add_mutually_exclusive_group()
    raw.add_argument('--raw', action='store_true',
                   help='network outputs only (loc, conf, mask, priors, proto); no decode/NMS/masks')
    raw.add_argument('--with-raw', action='store_true',
                   help='end-to-end graph that also outputs the raw network outputs (validation)')
    p.add_argument('--plugins', action='store_true',
                   help='emit custom nodes for the yolact TensorRT plugins (DCN sampling, Fast NMS) '
                        'instead of standard ops')
    p.add_argument('--dcn', choices=DCN_FORMS,
                   help='how YOLACT++ deformable convs are written: deformconv (ONNX DeformConv; '
                        'default without --plugins), gridsample (GridSample + 1x1 Conv: standard '
                        'ops that OpenVINO and TensorRT load without any plugin), plugin (our '
                        'TensorRT plugin node; default with --plugins)')
    p.add_argument('--fp16', action='store_true',
                   help='mixed-precision graph: network in FP16; preprocessing, softmax, box '
                        'decoding, NMS and mask assembly in FP32')
    p.add_argument('--opset', type=positive_int, default=DEFAULT_OPSET,
                   help=f'ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET}; '
                        'DCN presets need >= 19)')
    p.add_argument('--max-detections', type=int_range(1, 10000), default=100, help='K of the fixed outputs (100)')
    p.add_argument('--cross-class-nms', action='store_true', help='cross-class Fast NMS in the graph')
    p.add_argument('--max-batch', type=batch_size, default=64, help='upper bound of the dynamic batch (64)')
    p.add_argument('--no-simplify', action='store_true', help='skip onnxslim')
    p.add_argument('--check-trt', metavar='MODEL.onnx',
                   help='only check MODEL.onnx against the TensorRT ONNX parser\'s documented rules '
                        '(10.3 and newest; no PyTorch needed) and exit: 0 conformant, 2 not')
    p.add_argument('--no-trt-check', action='store_true',
                   help='skip the TensorRT conformance check that ends every export (for graphs '
                        'meant only for ONNX Runtime, e.g. --opset 21)')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress lines')
    return p


def default_output(weights: str, args) -> str:
    stem = os.path.splitext(os.path.basename(weights))[0]
    suffix = ('_raw' if args.raw else '') + ('_plugins' if args.plugins else '') + \
        ('_gridsample' if getattr(args, 'dcn', None) == 'gridsample' else '') + \
        ('_fp16' if args.fp16 else '')
    return stem + suffix + ('.onnx' if args.to == 'onnx' else '.plan')


def _load(args):
    from ..checkpoint import load_model
    weights = args.weights
    if weights is None:
        from ..assets import default_weights
        weights = default_weights()
    if os.path.splitext(weights)[1].lower() not in ('.pth', '.pt'):
        raise InputError(f'--weights must be a PyTorch checkpoint (.pth/.pt), got {weights}')
    return weights, load_model(weights, preset=args.config)


def _to_trt(args, model, output):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise YolactError('--to trt needs TensorRT, which is not installed here (pip install '
                          'tensorrt, on a machine with an NVIDIA GPU); export --to onnx and build '
                          'the engine where TensorRT is') from None
    try:
        builder = importlib.import_module('yolact_deploy.export.tensorrt_build')
    except ModuleNotFoundError:
        raise YolactError('--to trt is not available in this version of yolact-deploy') from None
    return builder.run(args, model, output)


def _to_onnx(args, model, output):
    from ..export.onnx_export import ExportOptions, export_onnx
    options = ExportOptions(raw=args.raw, with_raw=args.with_raw, plugins=args.plugins,
                            fp16=args.fp16, opset=args.opset,
                            max_detections=args.max_detections, cross_class=args.cross_class_nms,
                            simplify=not args.no_simplify, max_batch=args.max_batch,
                            trt_check=not args.no_trt_check, dcn=args.dcn)
    export_onnx(model, output, options, quiet=args.quiet)
    size = os.path.getsize(output) / 2 ** 20
    dcn = f', dcn {options.dcn_form}' if model.config.uses_dcn else ''
    print(f'wrote {output} ({size:.1f} MiB, {options.flavour}{dcn}, {options.precision}, '
          f'{"raw" if args.raw else "end-to-end"}, opset {args.opset})')


def check_trt(path: str) -> int:
    """``--check-trt``: every violation on stderr, then one ``error:`` line (exit 2), or 'conformant'."""
    from ..deploy import trt_conformance as conformance
    which = conformance.targets()
    violations = conformance.check_file(path, which)
    if violations:
        for line in conformance.report(violations, which):
            print(line, file=sys.stderr)
        raise conformance.ConformanceError(conformance.summary(violations, path))
    print(f'{path}: conformant with the ONNX parser rules of TensorRT {" and ".join(which)}')
    return 0


def _check_trt_argv(argv) -> Optional[str]:
    """The --check-trt path, parsed without build_parser (which imports torch: a Jetson box checks
    graphs without PyTorch)."""
    p = argparse.ArgumentParser(prog='yolact-export', add_help=False)
    p.add_argument('--check-trt')
    known, _ = p.parse_known_args(argv)
    return known.check_trt


@cli_main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    path = _check_trt_argv(argv) if any(a.startswith('--check-trt') for a in argv) else None
    if path:
        return check_trt(path)
    parser = build_parser()
    builder = None
    try:  # the TensorRT builder module may add its own options
        builder = importlib.import_module('yolact_deploy.export.tensorrt_build')
        if hasattr(builder, 'add_arguments'):
            builder.add_arguments(parser)
    except ImportError:
        pass
    from ..export import triton  # --to triton (docs/serving.md)
    triton.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.to == 'triton':
        return triton.run(args, lambda: _load(args), lambda model, path: _to_onnx(args, model, path))
    if args.to == 'trt' and builder is None:
        _to_trt(args, None, None)  # one-line error: no TensorRT / no builder
    if args.to == 'trt':
        builder.options_from_args(args)           # bad build options: one line, before any work
        from ..deploy.trt_compat import import_tensorrt
        import_tensorrt()                         # no TensorRT: one line, before loading a model
        if getattr(args, 'onnx', None):           # build from an exported ONNX file: no checkpoint
            return builder.run(args, None, args.output)
    if args.to == 'onnx':
        from ..export.onnx_export import ExportOptions, check_options
        from ..config import get_preset
        if args.config:  # fail on options before loading a big checkpoint
            check_options(get_preset(args.config), ExportOptions(
                plugins=args.plugins, opset=args.opset, max_detections=args.max_detections,
                max_batch=args.max_batch, trt_check=not args.no_trt_check, dcn=args.dcn))
    weights, model = _load(args)
    output = args.output or default_output(weights, args)
    print(f'model: {weights} (preset {model.config.name}, input {model.config.max_size})',
          file=sys.stderr)
    if args.to == 'trt':
        return _to_trt(args, model, output)
    _to_onnx(args, model, output)
    return 0


if __name__ == '__main__':
    run_cli(main)
