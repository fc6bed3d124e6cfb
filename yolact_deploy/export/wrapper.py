"""The module that is exported: in-graph preprocessing + Yolact.forward (+ Yolact.detect).

One semantic source: this wrapper only composes the reference model's own ``forward`` and ``detect``
with the official preprocessing written in tensor ops, so the exported graph computes exactly what
:class:`~yolact_deploy.runtime.torch_backend.TorchPredictor` computes.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from ..deploy.contract import CONTRACT_OUTPUTS, INPUT_NAME, RAW_OUTPUTS  # noqa: F401  (re-exported)
from ..transforms import network_input


def preprocess_graph(images: torch.Tensor, config) -> torch.Tensor:
    """uint8 BGR ``[B, H, W, 3]`` (any H, W) -> network input ``[B, 3, S, S]``.

    The official ``FastBaseTransform`` written as graph ops: NHWC uint8 -> NCHW float, then the same
    :func:`~yolact_deploy.transforms.network_input` as the PyTorch path.
    """
    # Cast first: TensorRT accepts UINT8 only as a network input/output, so the uint8 input may feed
    # nothing but a Cast (a Transpose on it would be a UINT8 intermediate the parser rejects).
    x = images.to(torch.float32).permute(0, 3, 1, 2)
    return network_input(x, config)


class ExportWrapper(nn.Module):
    """``images`` -> contract outputs (default) or raw network outputs (``raw=True``);
    ``with_raw=True`` appends the raw outputs to the contract outputs (for validation)."""

    def __init__(self, model: nn.Module, *, raw: bool = False, max_detections: int = 100,
                 cross_class: bool = False, with_raw: bool = False):
        super().__init__()
        self.model = model.eval()
        self.raw = raw
        self.with_raw = with_raw and not raw
        self.max_detections = int(max_detections)
        self.cross_class = bool(cross_class)

    @property
    def output_names(self) -> Tuple[str, ...]:
        if self.raw:
            return RAW_OUTPUTS
        return CONTRACT_OUTPUTS + (RAW_OUTPUTS if self.with_raw else ())

    def forward(self, images: torch.Tensor):
        out = self.model(preprocess_graph(images, self.model.config))
        if self.raw:
            return tuple(out[name] for name in RAW_OUTPUTS)
        det = self.model.detect(out, cross_class=self.cross_class,
                                max_detections=self.max_detections)
        contract = (det['num_detections'].to(torch.int32)[:, None], det['boxes'], det['scores'],
                    det['mask_scores'], det['classes'].to(torch.int32), det['masks'],
                    det['indices'].to(torch.int32))
        if self.with_raw:
            return contract + tuple(out[name] for name in RAW_OUTPUTS)
        return contract
