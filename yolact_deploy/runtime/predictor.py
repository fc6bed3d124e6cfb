"""The backend-independent Predictor.

A backend turns a batch of BGR images into the *engine-contract* outputs (fixed-K detections at
prototype resolution, see :meth:`yolact_deploy.model.Yolact.detect`) as numpy arrays, plus whatever raw
network outputs it has. :func:`yolact_deploy.postprocess.finalize` then makes the final per-image
results, identically for all backends.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..errors import InputError, YolactError
from ..deploy.contract import normalize_contract  # noqa: F401  (the backends import it here)
from ..deploy.postprocess import ImageDetections, finalize

# backend name -> module defining ``create(path, **options) -> Predictor``
BACKENDS = {
    'torch': 'yolact_deploy.torch_runtime',
    'onnxruntime': 'yolact_deploy.runtime.onnxruntime_backend',
    'openvino': 'yolact_deploy.runtime.openvino_backend',
    'tensorrt': 'yolact_deploy.runtime.tensorrt_backend',
}
_EXTENSIONS = {'.pth': 'torch', '.pt': 'torch', '.onnx': 'onnxruntime', '.plan': 'tensorrt',
               '.engine': 'tensorrt', '.trt': 'tensorrt'}


@dataclass
class PredictionOutput:
    """Everything one batch produced: final results, contract outputs and raw network outputs."""

    results: List[ImageDetections]
    detections: Dict[str, np.ndarray]   # engine-contract outputs, batched
    raw: Dict[str, np.ndarray]          # raw head outputs where the backend has them (else empty)


class Predictor:
    """Base class. Subclasses set ``backend``, ``class_names``, ``category_ids``, ``input_size`` and
    implement :meth:`run`."""

    backend = 'base'
    class_names: Sequence[str] = ()
    category_ids: Sequence[int] = ()
    input_size: int = 550
    score_threshold: float = 0.0

    def run(self, images: Sequence[np.ndarray]) -> tuple:
        """BGR uint8 images -> (contract outputs, raw outputs) as numpy dicts."""
        raise NotImplementedError

    def predict_batch(self, images: Sequence[np.ndarray], score_threshold: Optional[float] = None,
                      top_k: Optional[int] = None) -> PredictionOutput:
        if isinstance(images, np.ndarray) or not isinstance(images, (list, tuple)):
            raise InputError(f'predict_batch expects a list of images, got {type(images).__name__}')
        images = [_check_image(im) for im in images]
        if not images:
            raise InputError('no images to run')
        _check_options(score_threshold, top_k)
        detections, raw = self.run(images)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        results = finalize(detections, [im.shape[:2] for im in images], self.class_names,
                           score_threshold=threshold, top_k=top_k)
        return PredictionOutput(results, detections, raw)

    def predict(self, images: Union[np.ndarray, Sequence[np.ndarray]],
                score_threshold: Optional[float] = None,
                top_k: Optional[int] = None) -> Union[ImageDetections, List[ImageDetections]]:
        """One BGR image -> :class:`ImageDetections`; a list of images -> a list of them."""
        single = isinstance(images, np.ndarray) and images.ndim == 3
        if not single and not isinstance(images, (list, tuple)):
            raise InputError('predict expects a BGR uint8 image [H, W, 3] or a list of them, got '
                             f'{type(images).__name__}' + (f' of shape {images.shape}'
                                                            if isinstance(images, np.ndarray) else ''))
        out = self.predict_batch([images] if single else list(images), score_threshold, top_k)
        return out.results[0] if single else out.results


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, 'shape', None)
        raise InputError(f'expected a BGR uint8 image of shape [H, W, 3], got {shape}')
    if image.dtype != np.uint8:
        raise InputError(f'expected a uint8 image, got {image.dtype}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f'empty image of shape {image.shape}')
    return image


def _check_options(score_threshold, top_k) -> None:
    if score_threshold is not None:
        if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float, np.number)) \
                or not 0.0 <= float(score_threshold) <= 1.0:  # also refuses NaN
            raise InputError(f'score_threshold must be a number in [0, 1], got {score_threshold!r}')
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise InputError(f'top_k must be an integer >= 0 or None, got {top_k!r}')


def backend_for_path(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise InputError(f"cannot tell the backend of '{path}' from its extension; use one of "
                         f"{', '.join(sorted(_EXTENSIONS))} or pass --backend")
    return _EXTENSIONS[ext]


def load_predictor(weights: Optional[str] = None, backend: Optional[str] = None,
                   **options) -> Predictor:
    """Loads a model file with the backend its extension implies (or ``backend``).

    ``weights=None`` loads the bundled default model with the PyTorch backend.
    Options (backend-specific): ``config`` (preset name, torch), ``device``, ``cross_class``,
    ``score_threshold`` ...
    """
    if weights is None:
        from ..assets import default_weights
        weights = default_weights()
    if not os.path.exists(weights):
        raise InputError(f'model file not found: {weights}')
    backend = backend or backend_for_path(weights)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; known: {', '.join(BACKENDS)}")
    try:
        module = importlib.import_module(BACKENDS[backend])
    except ModuleNotFoundError as exc:
        raise YolactError(f"the '{backend}' backend is not available: {exc}") from None
    return module.create(weights, **options)
