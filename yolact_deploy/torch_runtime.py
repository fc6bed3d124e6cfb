"""The PyTorch backend: the reference model itself."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .checkpoint import load_model
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
