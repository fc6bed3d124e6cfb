"""The PyTorch backend: the reference model itself; and detections for raw ONNX graphs made with the
reference ops (what the torch-free ONNX Runtime backend leaves to PyTorch)."""
from __future__ import annotations

import sys
import types
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .checkpoint import config_from_dict, load_model
from .errors import InputError
from .runtime.predictor import Predictor
from .transforms import preprocess


class TorchPredictor(Predictor):
    backend = 'torch'

    def __init__(self, model, device: str = 'cpu', cross_class: bool = False,
                 score_threshold: float = 0.0):
        self.model = model.to(device).eval()
        self.device = device
        self.cross_class = cross_class
        self.score_threshold = score_threshold
        cfg = model.config
        self.config = cfg
        self.class_names = cfg.class_names
        self.category_ids = cfg.category_ids
        self.input_size = cfg.max_size

    @torch.no_grad()
    def run(self, images: Sequence[np.ndarray]):
        x = preprocess(images, self.config, self.device)
        raw = self.model(x)
        dets = self.model.detect(raw, cross_class=self.cross_class)
        to_np = lambda d: {k: v.detach().cpu().numpy() for k, v in d.items()}  # noqa: E731
        return to_np(dets), to_np(raw)


def _device(device: Optional[str]) -> str:
    device = device or 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise InputError(f"device '{device}' requested but CUDA is not available here")
    return device


def create(path: str, config: Optional[str] = None, device: Optional[str] = None,
           cross_class: bool = False, score_threshold: float = 0.0, **_) -> TorchPredictor:
    device = _device(device)
    return TorchPredictor(load_model(path, preset=config, device=device), device, cross_class,
                          score_threshold)


def raw_detector(meta: dict, cross_class: bool) -> Callable[[dict], dict]:
    """For a raw graph's metadata: ``raw outputs -> contract outputs`` with ``Yolact.detect``.

    YOLACT++ mask re-scoring is not part of a raw graph, so ``mask_scores`` equal ``scores`` there
    (a warning says so once). Pass it as ``load_predictor(path, raw_detect=raw_detector)``.
    """
    from .model.yolact import Yolact
    config = config_from_dict(meta['config'])
    if config.use_maskiou and config.rescore_mask:
        print('warning: raw graph: YOLACT++ mask re-scoring is not part of a raw graph; '
              'mask_scores equal scores', file=sys.stderr)
    shim = types.SimpleNamespace(config=config.replace(use_maskiou=False))
    max_detections = int(meta.get('max_detections', 100))

    @torch.no_grad()
    def detect(raw: dict) -> dict:
        tensors = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in raw.items()}
        det = Yolact.detect(shim, tensors, cross_class=cross_class, max_detections=max_detections)
        return {k: v.numpy() for k, v in det.items()}
    return detect
