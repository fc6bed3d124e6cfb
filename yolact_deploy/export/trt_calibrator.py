"""INT8 calibration for TensorRT builds: the entropy calibrator over a folder of images (10.x), and
the calibration data for ModelOpt's Q/DQ quantization (the only INT8 route on 11.x)."""
from __future__ import annotations

import os
from typing import Optional, Sequence

from ..deploy import trt_compat as compat
from ..deploy.contract import INPUT_NAME
from ..deploy.fileio import atomic_output
from .trt_config import MODELOPT_COMMAND, BuildError, check_calibration_folder

def load_calibration_batch(files: Sequence[str], height: int, width: int):
    """uint8 BGR ``[N, H, W, 3]`` from image files, resized to the profile's kOPT size."""
    import cv2
    import numpy as np

    from ..deploy.media import load_image
    out = np.empty((len(files), height, width, 3), np.uint8)
    for i, path in enumerate(files):
        image = load_image(path)
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = image
    return out


def write_calibration_npy(folder: str, path: str, height: int, width: int, limit: int = 512) -> str:
    """The calibration images as one ``{'images': uint8 [N,H,W,3]}`` .npz, for ModelOpt's
    ``--calibration_data_path`` (11.x Q/DQ route)."""
    import numpy as np
    files = check_calibration_folder(folder)[:limit]
    data = load_calibration_batch(files, height, width)
    with atomic_output(path, suffix='.npz') as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, **{INPUT_NAME: data})
    return path


def make_calibrator(trt, files: Sequence[str], batch: int, height: int, width: int,
                    cache_path: Optional[str], log=print):
    """An ``IInt8EntropyCalibrator2`` over ``files``, feeding batches at (batch, H, W) = kOPT."""
    import numpy as np
    cudart = compat.import_cudart()
    base = compat.calibrator_base(trt)

    class _Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.files = list(files)
            self.batch = batch
            self.index = 0
            self.nbytes = batch * height * width * 3
            self.device = compat.cuda_call(cudart.cudaMalloc(self.nbytes), 'cudaMalloc')

        def get_batch_size(self):
            return self.batch

        def get_batch(self, names):
            if self.index + self.batch > len(self.files):
                return []          # a partial last batch is dropped (shapes are fixed at kOPT)
            chunk = self.files[self.index:self.index + self.batch]
            self.index += self.batch
            host = np.ascontiguousarray(load_calibration_batch(chunk, height, width))
            compat.cuda_call(cudart.cudaMemcpy(self.device, host.ctypes.data, host.nbytes,
                                               cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
                             'cudaMemcpy')
            log(f'calibration: {self.index}/{len(self.files)} images')
            return [int(self.device)]

        def read_calibration_cache(self):
            if cache_path and os.path.isfile(cache_path):
                with open(cache_path, 'rb') as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            if cache_path:
                with atomic_output(cache_path, suffix='.cache') as tmp:
                    with open(tmp, 'wb') as f:
                        f.write(bytes(cache))

        def release(self):
            if self.device is not None:
                cudart.cudaFree(self.device)
                self.device = None

    return _Calibrator()


def modelopt_quantize(onnx_path: str, out_path: str, calib_npz: str, plugin_library=None) -> str:
    """11.x INT8: Q/DQ nodes by ModelOpt (``modelopt.onnx.quantization.quantize``)."""
    import numpy as np
    try:
        from modelopt.onnx.quantization import quantize
    except ImportError:
        raise BuildError(f'nvidia-modelopt is not installed; run `{MODELOPT_COMMAND}`') from None
    data = dict(np.load(calib_npz))
    quantize(onnx_path=onnx_path, quantize_mode='int8', calibration_data=data,
             calibration_method='entropy', output_path=out_path,
             trt_plugins=[plugin_library] if plugin_library else None, high_precision_dtype='fp16')
    if not os.path.isfile(out_path):
        raise BuildError(f'ModelOpt did not write {out_path}')
    return out_path
