"""Exporters: PyTorch -> ONNX (portable or plugin flavour, FP32 or mixed FP16), ONNX -> TensorRT engine
(``tensorrt_build`` with ``trt_config``, ``trt_calibrator``, ``trt_progress``), Triton repositories.

The names below load on first use: the TensorRT build and Triton modules need no PyTorch, so importing
``yolact_deploy.export.tensorrt_build`` on a runtime-only install must not pull in the ONNX exporter.
"""
import importlib

_NAMES = {
    'METADATA_KEY': 'yolact_deploy.deploy.metadata', 'read_metadata': 'yolact_deploy.deploy.metadata',
    'DEFAULT_OPSET': '.onnx_options', 'ExportOptions': '.onnx_options',
    'ExportError': '.onnx_export', 'build_onnx': '.onnx_export', 'check_options': '.onnx_export',
    'export_onnx': '.onnx_export',
    'CONTRACT_OUTPUTS': 'yolact_deploy.deploy.contract', 'INPUT_NAME': 'yolact_deploy.deploy.contract',
    'RAW_OUTPUTS': 'yolact_deploy.deploy.contract', 'ExportWrapper': '.wrapper',
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(_NAMES[name], __name__), name)
