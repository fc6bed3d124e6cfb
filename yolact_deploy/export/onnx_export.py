"""PyTorch model -> ONNX: end-to-end (engine contract) or raw graphs, portable or plugin flavour,
FP32 or mixed FP16.

Pipeline: validate options (before any long work) -> torch.export + the torch ONNX exporter
(``dynamo=True``, onnxscript translations for DCN) -> optional mixed-precision conversion -> onnxslim
-> metadata -> ``onnx.checker`` with strict shape inference -> atomic write (no partial file is left).
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import warnings
from typing import Optional

import torch

from ..deploy.fileio import atomic_output, check_output_file
from ..errors import YolactError
from ..deploy.fileio import temp_prefix
from ..deploy.metadata import attach_metadata, build_metadata
from ..model.backbones import feature_map_sizes
from .onnx_options import (DCN_FORMS, DCN_MIN_OPSET, DEFAULT_OPSET, MAX_OPSET,  # noqa: F401
                           MIN_OPSET, ExportOptions)
from .wrapper import INPUT_NAME, ExportWrapper



class ExportError(YolactError):
    """Invalid export options or an export that could not be completed."""


def check_options(config, options: ExportOptions) -> None:
    """One-line errors for option combinations that cannot be exported."""
    if not isinstance(options.opset, int) or not MIN_OPSET <= options.opset <= MAX_OPSET:
        raise ExportError(f'unsupported opset {options.opset}: use {MIN_OPSET}..{MAX_OPSET} '
                          f'(default {DEFAULT_OPSET})')
    if options.dcn_form not in DCN_FORMS:
        raise ExportError(f"unknown --dcn '{options.dcn}': use one of {', '.join(DCN_FORMS)}")
    if options.dcn_form == 'plugin' and not options.plugins:
        raise ExportError('--dcn plugin is the plugin flavour: add --plugins (or use --dcn '
                          'gridsample for a plugin-free graph)')
    if options.dcn_form == 'deformconv' and options.plugins:
        raise ExportError('--plugins writes the DCN as --dcn plugin or --dcn gridsample, not '
                          'deformconv')
    if config.uses_dcn and options.opset < DCN_MIN_OPSET and options.dcn_form == 'deformconv':
        raise ExportError(f"preset '{config.name}' uses deformable convolution, which needs opset "
                          f'>= {DCN_MIN_OPSET} (ONNX DeformConv); got --opset {options.opset} '
                          '(--dcn gridsample works from opset 17)')
    if options.trt_check:
        from ..deploy.trt_conformance import load_rules
        for target, spec in load_rules()['targets'].items():
            lo, hi = spec['opset']
            if not lo <= options.opset <= hi:
                use = min(hi, DEFAULT_OPSET)
                raise ExportError(f'--opset {options.opset} is outside what the ONNX parser of '
                                  f'TensorRT {target} reads ({lo}..{hi}): use --opset {use}, or '
                                  f'--no-trt-check for a graph not meant for TensorRT')
    if options.max_detections < 1:
        raise ExportError(f'--max-detections must be >= 1, got {options.max_detections}')
    if options.max_batch < 2:
        raise ExportError(f'max batch must be >= 2, got {options.max_batch}')


def proto_size(config) -> tuple:
    """Prototype resolution ``(Hp, Wp)``: twice the first FPN level for the official protonet."""
    h, w = feature_map_sizes(config, config.max_size, config.max_size)[config.proto_src]
    ups = sum(-k for c, k, _ in config.proto_net if c is None and k < 0) or 1
    return h * ups, w * ups


class _Steps:
    """Prints numbered stages with their duration (exports of big presets take minutes)."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.n, self.t0 = total, quiet, 0, time.time()

    @contextlib.contextmanager
    def __call__(self, what: str):
        self.n += 1
        start = time.time()
        if not self.quiet:
            print(f'[{self.n}/{self.total}] {what} ...', file=sys.stderr, flush=True)
        yield
        if not self.quiet:
            print(f'[{self.n}/{self.total}] {what}: done in {time.time() - start:.1f}s',
                  file=sys.stderr, flush=True)


def _translation_table(options: ExportOptions) -> dict:
    if options.plugins:
        from .plugin_ops import plugin_table
        return plugin_table(options)
    from .translations import portable_table
    return portable_table()


def _torch_export(wrapper: ExportWrapper, config, options: ExportOptions):
    size = config.max_size
    # Batch 2 and a non-square size avoid torch.export specialising the dynamic dims.
    example = torch.zeros((2, size + 7, size - 5, 3), dtype=torch.uint8)
    batch = torch.export.Dim('batch', min=1, max=options.max_batch)
    height = torch.export.Dim('height', min=2, max=16384)
    width = torch.export.Dim('width', min=2, max=16384)
    sink = io.StringIO()
    routing = contextlib.ExitStack()
    if options.plugins:
        from .plugin_ops import nms_as_plugin_op
        routing.enter_context(nms_as_plugin_op())
    if options.dcn_form == 'gridsample':
        from .dcn_gridsample import dcn_as_gridsample
        routing.enter_context(dcn_as_gridsample())
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sink), routing:
        warnings.simplefilter('ignore')
        try:
            program = torch.onnx.export(
                wrapper, (example,), dynamo=True, opset_version=options.opset,
                input_names=[INPUT_NAME], output_names=list(wrapper.output_names),
                dynamic_shapes=({0: batch, 1: height, 2: width},),
                custom_translation_table=_translation_table(options), optimize=True,
                verbose=False)
        except Exception as exc:  # the exporter raises many types; keep its first line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f'torch ONNX export failed: {first[:300]}') from exc
    return program.model_proto


def _strip_node_metadata(model) -> None:
    """The exporter stores stack traces and FX nodes per node (paths of this machine): drop them."""
    def strip(graph):
        for node in graph.node:
            del node.metadata_props[:]
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    strip(attr.g)
    strip(model.graph)


def _rename_dims(model) -> None:
    """Gives every symbolic output dim a readable name: 'batch' for the batch dim."""
    inp = model.graph.input[0].type.tensor_type.shape.dim
    names = {inp[0].dim_param: 'batch', inp[1].dim_param: 'height', inp[2].dim_param: 'width'}
    for vi in list(model.graph.input) + list(model.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]


def _copy_node(node):
    import onnx
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def _uint8_input_feeds_only_cast(model) -> None:
    """TensorRT takes UINT8 only as a network input/output, consumed by Cast alone (its ONNX parser
    documents no other op with UINT8). The exporter reads the dynamic batch dim with ``Shape(images)``:
    read it from the input's Cast instead (same shape, so the graph computes the same)."""
    casts = [n for n in model.graph.node if n.op_type == 'Cast' and list(n.input) == [INPUT_NAME]]
    if not casts:
        return
    cast = _copy_node(casts[0])
    model.graph.node.remove(casts[0])
    model.graph.node.insert(0, cast)                 # it depends on the input only: stays sorted
    for node in model.graph.node:
        if node.op_type == 'Shape' and list(node.input) == [INPUT_NAME]:
            node.input[0] = cast.output[0]


def _extra_metadata(config, options: ExportOptions) -> dict:
    extra = {'dcn': options.dcn_form if config.uses_dcn else None}
    if options.plugins:
        from .plugin_ops import plugin_metadata
        extra.update(plugin_metadata(dcn=config.uses_dcn and options.dcn_form == 'plugin'))
    return extra


def simplify(model):
    try:
        import onnxslim
    except ImportError:
        raise ExportError('onnxslim is not installed (pip install onnxslim); or pass --no-simplify') \
            from None
    with contextlib.redirect_stdout(io.StringIO()):
        return onnxslim.slim(model)


def check_model(model) -> None:
    """onnx.checker with full (strict) shape inference; a failure is an export bug, said in one line."""
    import onnx
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f'exported graph fails onnx.checker: {str(exc).splitlines()[0][:300]}') \
            from exc


def build_onnx(model, options: ExportOptions = ExportOptions(), quiet: bool = True):
    """Exports ``model`` (a :class:`~yolact_deploy.model.Yolact`) and returns the ``onnx.ModelProto``."""
    config = model.config
    check_options(config, options)
    steps = _Steps(4, quiet)
    model = model.float().eval()
    if options.fp16:
        from .fp16 import mixed_precision_model
        model = mixed_precision_model(model)
    wrapper = ExportWrapper(model, raw=options.raw,
                            max_detections=options.max_detections,
                            cross_class=options.cross_class, with_raw=options.with_raw)
    dcn = f', dcn {options.dcn_form}' if config.uses_dcn else ''
    with steps(f'torch.export + ONNX translation ({config.name}, {options.flavour}{dcn}, '
               f'{options.precision}, opset {options.opset})'):
        proto = _torch_export(wrapper, config, options)
    _strip_node_metadata(proto)
    with steps('simplify (onnxslim)' if options.simplify else 'simplify: skipped'):
        if options.simplify:
            proto = simplify(proto)
    _rename_dims(proto)
    _uint8_input_feeds_only_cast(proto)
    meta = build_metadata(config, raw=options.raw, flavour=options.flavour,
                          precision=options.precision, opset=options.opset,
                          max_detections=options.max_detections, cross_class=options.cross_class,
                          proto_size=proto_size(config), output_names=wrapper.output_names,
                          extra=_extra_metadata(config, options))
    attach_metadata(proto, meta)
    proto.producer_name = 'yolact-deploy'
    proto.doc_string = (f'YOLACT {config.name} ({meta["graph"]}, {options.flavour}, '
                        f'{options.precision}); see metadata_props["yolact_deploy"]')
    with steps('onnx.checker (full) + shape inference'):
        check_model(proto)
    with steps('TensorRT conformance (ONNX parser rules)' if options.trt_check
               else 'TensorRT conformance: skipped'):
        if options.trt_check:
            from ..deploy.trt_conformance import assert_conformant
            assert_conformant(proto, what=f'the exported graph ({config.name}, {options.flavour}, '
                                           f'{options.precision})')
    return proto


def save_model(proto, path: str) -> None:
    """Writes atomically: a temporary file next to ``path`` renamed over it only on success."""
    import onnx
    try:
        with atomic_output(path, suffix='.onnx') as tmp:
            onnx.save_model(proto, tmp)
    except OSError as exc:
        raise ExportError(f'cannot write {path}: {exc.strerror or exc}') from None


def probe_writable(path: str) -> None:
    """Fails in one line, before minutes of export, when ``path``'s folder takes no new file
    (permissions, read-only or pseudo file systems: os.access alone is not enough for root)."""
    import tempfile
    try:
        check_output_file(path)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix() + 'probe.',
                                   dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
        os.unlink(tmp)
    except YolactError as exc:
        raise ExportError(str(exc)) from None
    except OSError as exc:
        raise ExportError(f'cannot write {path}: {exc.strerror or exc}') from None


def export_onnx(model, path: str, options: ExportOptions = ExportOptions(),
                quiet: bool = False):
    """Exports ``model`` to ``path`` (checked for writability first) and returns the ModelProto."""
    check_options(model.config, options)
    if options.plugins:
        from .plugin_ops import check_plugin_options
        check_plugin_options(model.config, options)
    probe_writable(path)
    proto = build_onnx(model, options, quiet=quiet)
    save_model(proto, path)
    return proto
