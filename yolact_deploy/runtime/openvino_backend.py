"""The OpenVINO backend: runs end-to-end graphs written by ``yolact-export --to onnx`` (no PyTorch).

OpenVINO reads the ONNX file directly (its ONNX frontend; no conversion step, no IR files) and keeps
the ONNX ``metadata_props`` in the model's ``rt_info['framework']``, which configures the predictor
as for ONNX Runtime. What it runs (docs/onnx.md, "Which graph runs where"):

- end-to-end graphs of the portable flavour; YOLACT++ graphs only with ``--dcn gridsample``
  (OpenVINO 2026.4 has no conversion rule for ONNX ``DeformConv``: one line says to re-export);
- not raw graphs (their detection step is the PyTorch reference) and not plugin-flavour graphs
  (our TensorRT plugin nodes): one-line refusals naming the graph to export instead.

Precision: OpenVINO's CPU plugin runs FP32 graphs in bfloat16 by default on CPUs with AVX512-BF16 or
AMX (``INFERENCE_PRECISION_HINT``); this backend asks for f32 so that the FP32 graph means FP32
(pass ``inference_precision='bf16'`` to trade accuracy for speed).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ..deploy.contract import RAW_OUTPUTS
from ..errors import InputError, YolactError
from .predictor import Predictor, normalize_contract

METADATA_KEY = 'yolact_deploy'                             # = export.metadata.METADATA_KEY


def _import_openvino():
    try:
        import openvino
    except ImportError:
        raise YolactError('openvino is not installed: pip install openvino '
                          "(or pip install 'yolact-deploy[openvino]')") from None
    return openvino


def ov_device(device: Optional[str]) -> str:
    """``cpu`` (default), ``gpu[.N]``, ``npu``, ``auto`` or any OpenVINO device name -> its name."""
    device = (device or 'cpu').strip()
    if device.lower().startswith('cuda'):
        raise InputError(f"device '{device}' is not an OpenVINO device: use cpu, gpu, npu or auto")
    return device.upper()


def read_metadata(model, path: str) -> dict:
    """The exporter's metadata from an ``openvino.Model`` read from ONNX (``rt_info['framework']``)."""
    from ..deploy.metadata import parse_metadata
    key = ['framework', METADATA_KEY]
    props = {METADATA_KEY: model.get_rt_info(key).astype(str)} if model.has_rt_info(key) else {}
    return parse_metadata(props, path)


def _refusal(meta: dict, path: str) -> Optional[str]:
    name = os.path.basename(path)
    if meta.get('flavour') == 'plugins':
        return (f'{name} is a plugin-flavour graph (yolact TensorRT plugin nodes), which OpenVINO '
                'cannot run: export it without --plugins (YOLACT++: with --dcn gridsample)')
    if meta.get('graph') == 'raw':
        return (f'{name} is a raw graph (--raw), whose detection step needs PyTorch: export the '
                'end-to-end graph for OpenVINO')
    return None


def _read_error(exc: Exception, path: str) -> str:
    text = str(exc)
    name = os.path.basename(path)
    if 'DeformConv' in text:
        return (f'openvino cannot convert the ONNX DeformConv nodes of {name} (no conversion rule): '
                're-export it with --dcn gridsample')
    if 'Yolact' in text:
        return (f'{name} is a plugin-flavour graph (yolact TensorRT plugin nodes), which OpenVINO '
                'cannot run: export it without --plugins (YOLACT++: with --dcn gridsample)')
    return f'openvino cannot read {path}: {_first_line(exc)}'


class OpenVINOPredictor(Predictor):
    backend = 'openvino'

    def __init__(self, path: str, *, device: Optional[str] = None, threads: Optional[int] = None,
                 cross_class: bool = False, score_threshold: float = 0.0,
                 inference_precision: str = 'f32'):
        ov = _import_openvino()
        if not os.path.exists(path):
            raise InputError(f'model file not found: {path}')
        self.path = path
        self.score_threshold = score_threshold
        self.device = ov_device(device)
        core = ov.Core()
        try:
            model = core.read_model(path)
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line frontend reports
            raise YolactError(_read_error(exc, path)) from None
        meta = read_metadata(model, path)
        refusal = _refusal(meta, path)
        if refusal:
            raise YolactError(refusal)
        self.meta = meta
        config = {'INFERENCE_PRECISION_HINT': inference_precision}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        try:
            self.compiled = core.compile_model(model, self.device, config)
        except Exception as exc:
            raise YolactError(f'openvino cannot compile {path} for {self.device}: '
                              f'{_first_line(exc)}') from None
        self.request = self.compiled.create_infer_request()
        if cross_class and not meta.get('cross_class_nms'):
            raise InputError(f'{os.path.basename(path)} was exported with class-wise Fast NMS; '
                             're-export it with --cross-class-nms')
        self.cross_class = bool(meta.get('cross_class_nms'))
        self.class_names = tuple(meta['class_names'])
        self.category_ids = tuple(meta['category_ids'])
        self.input_size = int(meta['input']['network_size'][0])
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]

    def run_graph(self, batch: np.ndarray) -> dict:
        """One uint8 ``[B, H, W, 3]`` batch -> ``{output name: array}`` (copies: the request's
        buffers are reused by the next call)."""
        result = self.request.infer({0: batch})
        return {name: np.array(result[out]) for name, out in
                zip(self.output_names, self.compiled.outputs)}

    def run(self, images: Sequence[np.ndarray]):
        # One call takes one image size (the graph resizes in-graph): equal consecutive sizes share it.
        groups, start = [], 0
        for i in range(1, len(images) + 1):
            if i == len(images) or images[i].shape != images[start].shape:
                groups.append(np.ascontiguousarray(np.stack(images[start:i])))
                start = i
        parts = [self.run_graph(g) for g in groups]
        merged = {k: np.concatenate([p[k] for p in parts]) if k != 'priors' else parts[0][k]
                  for k in parts[0]}
        raw = {k: merged.pop(k) for k in RAW_OUTPUTS if k in merged}   # --with-raw graphs
        return normalize_contract(merged), raw


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # OpenVINO's frontend reports start with a "Check ... failed at <file>" line; the summary of
    # unconverted ops is the useful part.
    for ln in lines:
        if 'No conversion rule' in ln or 'Conversion is failed' in ln:
            return ln[:300]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def create(path: str, device: Optional[str] = None, cross_class: bool = False,
           score_threshold: float = 0.0, threads: Optional[int] = None,
           inference_precision: str = 'f32', **_) -> OpenVINOPredictor:
    return OpenVINOPredictor(path, device=device, threads=threads, cross_class=cross_class,
                             score_threshold=score_threshold,
                             inference_precision=inference_precision)
