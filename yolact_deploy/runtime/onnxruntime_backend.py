"""The ONNX Runtime backend: runs graphs written by ``yolact-export --to onnx``.

The graph's metadata (``metadata_props['yolact_deploy']``) configures the predictor: class names,
category ids, input size, graph kind. End-to-end graphs return the engine-contract outputs directly.
Raw graphs (``--raw``) return the network outputs; detections are then made in numpy
(:mod:`yolact_deploy.deploy.detect`, the semantics of the reference ops) -- without YOLACT++ mask
re-scoring, whose net is not part of a raw graph (``mask_scores`` then equal ``scores``; a warning
says so once).
Plugin-flavour graphs run their plugin nodes as custom ops backed by the plugins' CPU instance
(:mod:`yolact_deploy.plugins`: onnxruntime-extensions Python ops calling ``libyolact_plugins_cpu.so``).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError, YolactError
from ..deploy.contract import RAW_OUTPUTS
from ..deploy.detect import raw_detector
from ..deploy.metadata import check_graph_outputs, parse_metadata
from .predictor import Predictor, normalize_contract



def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise YolactError('onnxruntime is not installed: pip install onnxruntime '
                          "(or pip install 'yolact-deploy[onnx]')") from None
    return onnxruntime


def _providers(ort, device: Optional[str], providers: Optional[Sequence[str]]):
    if providers:
        return list(providers)
    device = device or 'cpu'
    if device == 'cpu':
        return ['CPUExecutionProvider']
    if device.startswith('cuda'):
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise InputError(f"device '{device}' requested but this onnxruntime has no CUDA "
                             'provider (pip install onnxruntime-gpu)')
        index = device.split(':')[1] if ':' in device else '0'
        return [('CUDAExecutionProvider', {'device_id': int(index)}), 'CPUExecutionProvider']
    raise InputError(f"unknown device '{device}' for onnxruntime: use cpu or cuda[:N]")


def plugin_session_inputs(path: str, options):
    """(model bytes, session options) for a plugin-flavour graph: the plugin nodes run as ONNX Runtime
    custom ops backed by the plugins' CPU instance (:mod:`yolact_deploy.plugins`).

    One clear error when that route is not available here (plugin graph on plain ONNX Runtime).
    """
    try:
        from ..deploy import plugin_library as plugins
    except ImportError as exc:
        raise YolactError(f'{os.path.basename(path)} uses the yolact TensorRT plugin nodes (--plugins '
                          f'flavour), but yolact_deploy.plugins is not available ({exc}); export '
                          'the portable flavour instead') from None
    try:
        options = plugins.ort_session_options_with_plugins(options)
        return plugins.ort_model_for_plugins(path).SerializeToString(), options
    except YolactError as exc:
        raise YolactError(f'{os.path.basename(path)} uses the yolact plugin nodes (--plugins '
                          f'flavour) and ONNX Runtime cannot run them here: {exc}') from None


class OnnxRuntimePredictor(Predictor):
    backend = 'onnxruntime'

    def __init__(self, path: str, *, device: Optional[str] = None, providers=None,
                 threads: Optional[int] = None, cross_class: bool = False,
                 score_threshold: float = 0.0):
        ort = _import_ort()
        self.path = path
        self.score_threshold = score_threshold
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        meta = self._peek_metadata(path)
        self.meta = meta
        source = path
        if meta.get('flavour') == 'plugins':
            source, options = plugin_session_inputs(path, options)
        try:
            self.session = ort.InferenceSession(source, sess_options=options,
                                                providers=_providers(ort, device, providers))
        except YolactError:
            raise
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise YolactError(f'onnxruntime cannot load {path}: {text[:300]}') from None
        self.raw_graph = meta.get('graph') == 'raw'
        if self.raw_graph and not isinstance(meta.get('config'), dict):
            raise YolactError(f'{path}: a raw graph needs its model "config" in the metadata')
        if cross_class and not self.raw_graph and not meta.get('cross_class_nms'):
            raise InputError(f'{os.path.basename(path)} was exported with class-wise Fast NMS; '
                             're-export it with --cross-class-nms')
        self.cross_class = cross_class if self.raw_graph else bool(meta.get('cross_class_nms'))
        self.class_names = tuple(meta['class_names'])
        self.category_ids = tuple(meta['category_ids'])
        self.input_size = int(meta['input']['network_size'][0])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        check_graph_outputs(meta, {o.name: o.shape for o in self.session.get_outputs()}, path)
        self._detect = raw_detector(meta, self.cross_class) if self.raw_graph else None

    @staticmethod
    def _peek_metadata(path: str) -> dict:
        if not os.path.exists(path):
            raise InputError(f'model file not found: {path}')
        try:
            import onnx
            model = onnx.load(path, load_external_data=False)
        except Exception as exc:
            raise YolactError(f'cannot read ONNX file {path}: corrupt or not ONNX '
                              f'({type(exc).__name__})') from None
        return parse_metadata({p.key: p.value for p in model.metadata_props}, path)

    # -- running ---------------------------------------------------------------------------------
    def run_graph(self, batch: np.ndarray) -> dict:
        """One uint8 ``[B, H, W, 3]`` batch through the session -> ``{output name: array}``."""
        outs = self.session.run(None, {self.input_name: batch})
        return dict(zip(self.output_names, outs))

    def run(self, images: Sequence[np.ndarray]):
        # The graph resizes in-graph from the input size, so one call takes one image size:
        # consecutive images of equal size share a call.
        groups, start = [], 0
        for i in range(1, len(images) + 1):
            if i == len(images) or images[i].shape != images[start].shape:
                groups.append(np.stack(images[start:i]))
                start = i
        parts = [self.run_graph(np.ascontiguousarray(g)) for g in groups]
        merged = {k: np.concatenate([p[k] for p in parts]) if parts[0][k].ndim and k != 'priors'
                  else parts[0][k] for k in parts[0]}
        if self.raw_graph:
            return self._detect(merged), merged
        raw = {k: merged.pop(k) for k in RAW_OUTPUTS if k in merged}  # --with-raw graphs
        return normalize_contract(merged), raw


def create(path: str, device: Optional[str] = None, cross_class: bool = False,
           score_threshold: float = 0.0, threads: Optional[int] = None, providers=None,
           **_) -> OnnxRuntimePredictor:
    return OnnxRuntimePredictor(path, device=device, providers=providers, threads=threads,
                                cross_class=cross_class, score_threshold=score_threshold)
