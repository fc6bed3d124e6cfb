"""The engine contract: the names, shapes and dtypes every exported graph and engine speaks
(docs/onnx.md), and the normal form all backends hand to :func:`~.postprocess.finalize`."""
from __future__ import annotations

import numpy as np

INPUT_NAME = 'images'   # uint8 [B, H, W, 3] BGR, any H, W (resized in the graph)
# [B,1] int32, [B,K,4] float (x1 y1 x2 y2, relative), [B,K], [B,K], [B,K] int32 (-1 pads),
# [B,K,Hp,Wp] cropped mask probabilities, [B,K] int32 prior index
CONTRACT_OUTPUTS = ('num_detections', 'boxes', 'scores', 'mask_scores', 'classes', 'masks',
                    'indices')
REQUIRED_OUTPUTS = ('num_detections', 'boxes', 'scores', 'classes', 'masks')
RAW_OUTPUTS = ('loc', 'conf', 'mask', 'priors', 'proto')   # the --raw graph: network outputs only

_INT_KEYS = ('num_detections', 'classes', 'indices')


def normalize_contract(outputs: dict) -> dict:
    """Engine-contract outputs of any backend -> what the PyTorch backend returns:
    num_detections ``[B]``, integer outputs int64, floats float32 (also from FP16 graphs/engines)."""
    out = {}
    for key, value in outputs.items():
        value = np.asarray(value)
        if key == 'num_detections':
            value = value.reshape(-1)
        if key in _INT_KEYS:
            value = value.astype(np.int64)
        elif value.dtype == np.float16:
            value = value.astype(np.float32)
        out[key] = value
    return out
