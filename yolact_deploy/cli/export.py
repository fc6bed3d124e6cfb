"""yolact-export: a checkpoint (ours or official) -> ONNX graph, TensorRT engine or Triton repository.

The library does the work (``export.onnx_export``, ``export.tensorrt_build``, ``export.triton``); this
module holds their command-line options. ``--to trt --onnx`` and ``--to triton --onnx/--engine`` need
no PyTorch (an engine is built on the target, e.g. a Jetson with the runtime install); exporting a
checkpoint does, and says so in one line when it is missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from typing import Optional

from ..errors import InputError
from ..export import trt_config
from .common import ArgumentParser, batch_size, int_range, positive_int
from .common import cli_main, require_torch, run_cli


def build_parser() -> argparse.ArgumentParser:
    from ..export.onnx_options import DCN_FORMS, DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
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
    add_trt_arguments(p)
    add_triton_arguments(p)
    return p


def default_output(weights: str, args) -> str:
    stem = os.path.splitext(os.path.basename(weights))[0]
    suffix = ('_raw' if args.raw else '') + ('_plugins' if args.plugins else '') + \
        ('_gridsample' if getattr(args, 'dcn', None) == 'gridsample' else '') + \
        ('_fp16' if args.fp16 else '')
    return stem + suffix + ('.onnx' if args.to == 'onnx' else '.plan')


def _load(args):
    require_torch(f'yolact-export --to {args.to} from a checkpoint')
    from ..checkpoint import load_model
    weights = args.weights
    if weights is None:
        from ..assets import default_weights
        weights = default_weights()
    if os.path.splitext(weights)[1].lower() not in ('.pth', '.pt'):
        raise InputError(f'--weights must be a PyTorch checkpoint (.pth/.pt), got {weights}')
    return weights, load_model(weights, preset=args.config)


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


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.check_trt:
        return check_trt(args.check_trt)
    if args.to == 'triton':
        return _to_triton(args)
    if args.to == 'trt':
        trt_options_from_args(args)               # bad build options: one line, before any work
        from ..deploy.trt_compat import import_tensorrt
        import_tensorrt()                         # no TensorRT: one line, before loading a model
        if getattr(args, 'onnx', None):           # build from an exported ONNX file: no checkpoint
            return _to_trt(args, None, args.output)
    if args.to == 'onnx':
        require_torch('yolact-export --to onnx')
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


# ---------------------------------------------------------------------------------------------------
# --to trt

def add_trt_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('TensorRT (--to trt)')
    g.add_argument('--onnx', metavar='MODEL.onnx',
                   help='build from this exported ONNX file instead of exporting --weights')
    presets = ', '.join(trt_config.list_presets())
    g.add_argument('--preset', help=f'deployment preset from export/ ({presets}) or a JSON file; '
                                    'explicit flags override it')
    g.add_argument('--int8', action='store_true', help='INT8 engine (needs --calib-images, or a '
                                                       'Q/DQ graph)')
    g.add_argument('--fp32', action='store_true', help='FP32 engine (default: FP16)')
    g.add_argument('--fp16-mode', choices=['strong', 'weak'],
                   help='TensorRT 10.x only: strong (default) = strongly typed from the FP16 graph; '
                        'weak = FP32 graph + BuilderFlag.FP16')
    g.add_argument('--batch', help='dynamic batch profile MIN,OPT,MAX (default 1,1,4) or N')
    g.add_argument('--image-size', help='input image size profile: HxW (fixed) or MIN,OPT,MAX '
                                        '(default 32x32,net,4096x4096; net = the network size)')
    g.add_argument('--workspace', type=int, help='builder workspace limit in MiB (default 4096)')
    g.add_argument('--opt-level', type=int, help='builder optimization level 0..5 (default 3)')
    g.add_argument('--timing-cache', help='timing cache file: read if present, updated after the '
                                          'build (speeds up rebuilds)')
    g.add_argument('--plugin-lib', help='libyolact_plugins.so (default: $YOLACT_PLUGINS_LIB or '
                                        'build/lib)')
    g.add_argument('--calib-images', help='INT8: folder of calibration images')
    g.add_argument('--calib-cache', help='INT8 (10.x): calibration cache file (read/written)')
    g.add_argument('--calib-limit', type=int, help='INT8: use at most N images (default 512)')
    g.add_argument('--verbose-trt', action='store_true', help='TensorRT verbose log')



def trt_options_from_args(args):
    """Preset first, then every flag the user gave explicitly."""
    opts = trt_config.BuildOptions()
    preset = getattr(args, 'preset', None)
    if preset:
        opts = trt_config.options_from_preset(trt_config.load_preset(preset), opts)
    kw: dict = {}
    if getattr(args, 'int8', False) and getattr(args, 'fp32', False):
        raise trt_config.BuildError('--int8 and --fp32 exclude each other')
    if getattr(args, 'int8', False):
        kw['precision'] = 'int8'
    elif getattr(args, 'fp32', False):
        kw['precision'] = 'fp32'
    elif getattr(args, 'fp16', False):
        kw['precision'] = 'fp16'
    if getattr(args, 'fp16_mode', None):
        kw['fp16_mode'] = args.fp16_mode
    if getattr(args, 'batch', None):
        kw['batch'] = trt_config.parse_triple(args.batch)
    if getattr(args, 'image_size', None):
        lo, opt, hi = trt_config.parse_image_sizes(args.image_size)
        kw.update(image_min=lo, image_opt=opt, image_max=hi)
    for arg, key in (('workspace', 'workspace_mib'), ('opt_level', 'optimization_level'),
                     ('calib_limit', 'calib_limit')):
        if getattr(args, arg, None) is not None:
            kw[key] = int(getattr(args, arg))
    for arg, key in (('timing_cache', 'timing_cache'), ('plugin_lib', 'plugin_library'),
                     ('calib_images', 'calib_images'), ('calib_cache', 'calib_cache')):
        if getattr(args, arg, None):
            kw[key] = getattr(args, arg)
    if getattr(args, 'verbose_trt', False):
        kw['verbose'] = True
    if getattr(args, 'plugins', False):
        kw['plugins'] = True
    return trt_config.check_options(replace(opts, **kw))


def _to_trt(args, model, output: Optional[str]) -> int:
    """``yolact-export --to trt``: export the needed ONNX graph (or take --onnx), then build."""
    from ..deploy.trt_compat import import_tensorrt
    from ..export import tensorrt_build
    options = trt_options_from_args(args)
    import_tensorrt()                    # one line, before any long work, when TensorRT is absent
    onnx_path = getattr(args, 'onnx', None)
    if output is None or output.endswith('.onnx'):
        stem = os.path.splitext(os.path.basename(onnx_path or 'model'))[0]
        output = (os.path.splitext(output)[0] if output else stem) + '.plan'
    if not onnx_path:
        from ..export.onnx_export import ExportOptions, export_onnx
        want = trt_config.onnx_export_options(options, plugins=options.plugins)
        onnx_path = os.path.splitext(output)[0] + '.onnx'     # model_fp16.plan <- model_fp16.onnx
        kw = dict(plugins=want['plugins'], fp16=want['fp16'], max_batch=want['max_batch'])
        for name, key in (('opset', 'opset'), ('max_detections', 'max_detections'),
                          ('cross_class_nms', 'cross_class'), ('dcn', 'dcn')):
            if getattr(args, name, None) is not None:
                kw[key] = getattr(args, name)
        export_onnx(model, onnx_path, ExportOptions(**kw), quiet=getattr(args, 'quiet', False))
        print(f'wrote {onnx_path}', file=sys.stderr)
    sidecar = tensorrt_build.build_engine(onnx_path, output, options,
                                          quiet=getattr(args, 'quiet', False))
    print(f'wrote {output} ({sidecar["precision"]}, TensorRT {sidecar["tensorrt_version"]}, '
          f'{sidecar["gpu"]["name"]}) and {output}.json')
    return 0


# ---------------------------------------------------------------------------------------------------
# --to triton

def add_triton_arguments(parser: argparse.ArgumentParser) -> None:
    from ..export import triton
    g = parser.add_argument_group('Triton (--to triton; -o is the repository folder, default '
                                  'model_repository)')
    if '--onnx' not in parser._option_string_actions:
        g.add_argument('--onnx', metavar='MODEL.onnx', help='use this exported ONNX file')
    g.add_argument('--engine', metavar='MODEL.plan',
                   help='--to triton: use this TensorRT engine (its sidecar JSON must be next to it)')
    g.add_argument('--triton-name', default='yolact', help='model name in the repository (yolact)')
    g.add_argument('--triton-max-batch', type=int,
                   help=f'max_batch_size (default {triton.DEFAULT_MAX_BATCH}, at most the engine profile)')
    g.add_argument('--triton-instances', type=int, default=1, help='model instances (1)')
    g.add_argument('--triton-kind', choices=['gpu', 'cpu'], help='instance kind (default gpu)')
    g.add_argument('--triton-queue-delay-us', type=int, default=2000,
                   help='dynamic batching: max queue delay in microseconds (2000)')
    g.add_argument('--triton-max-queue', type=int, default=64,
                   help='dynamic batching: queued requests before Triton rejects (64)')
    g.add_argument('--triton-preferred-batch', help='preferred batch sizes, e.g. 4,8')
    g.add_argument('--triton-overwrite', action='store_true', help='replace an existing model folder')


def _to_triton(args) -> int:
    """``yolact-export --to triton``: a model repository from --engine, --onnx or a checkpoint."""
    from ..export.triton import TritonError, build_repository
    if getattr(args, 'raw', False):
        raise TritonError('--to triton needs the end-to-end graph; drop --raw')
    repository = args.output or 'model_repository'
    preferred = []
    if args.triton_preferred_batch:
        try:
            preferred = [int(v) for v in args.triton_preferred_batch.split(',') if v.strip()]
        except ValueError:
            raise TritonError(f'--triton-preferred-batch must be integers like 4,8, got '
                              f'{args.triton_preferred_batch!r}') from None
    options = dict(name=args.triton_name, max_batch=args.triton_max_batch,
                   instances=args.triton_instances, kind=args.triton_kind,
                   queue_delay_us=args.triton_queue_delay_us, max_queue=args.triton_max_queue,
                   preferred_batch_sizes=preferred, overwrite=args.triton_overwrite)
    source = getattr(args, 'engine', None) or getattr(args, 'onnx', None)
    if source:
        dest = build_repository(source, repository, **options)
    else:
        if getattr(args, 'plugins', False):
            raise TritonError('--to triton exports the portable flavour (Triton\'s onnxruntime '
                              'backend cannot run plugin nodes); drop --plugins, or pass --engine')
        require_torch('yolact-export --to triton from a checkpoint')
        weights, model = _load(args)
        print(f'model: {weights} (preset {model.config.name}, input {model.config.max_size})',
              file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix='yolact-triton-') as tmp:
            onnx_path = os.path.join(tmp, 'model.onnx')
            _to_onnx(args, model, onnx_path)
            dest = build_repository(onnx_path, repository, **options)
    print(f'wrote Triton model repository {dest} (config.pbtxt, 1/, yolact_metadata.json, '
          f'README.md); run: tritonserver --model-repository={os.path.abspath(repository)}')
    return 0


if __name__ == '__main__':
    run_cli(main)
