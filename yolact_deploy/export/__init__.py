"""Exporters: PyTorch -> ONNX (portable or plugin flavour, FP32 or mixed FP16) and its metadata.

A TensorRT engine builder is meant to live beside this as ``export/tensorrt_build.py``.
"""
from ..deploy.metadata import METADATA_KEY, read_metadata
from .onnx_export import (DEFAULT_OPSET, ExportError, ExportOptions, build_onnx, check_options,
                          export_onnx)
from .wrapper import CONTRACT_OUTPUTS, INPUT_NAME, RAW_OUTPUTS, ExportWrapper

__all__ = ['METADATA_KEY', 'read_metadata', 'DEFAULT_OPSET', 'ExportError', 'ExportOptions',
           'build_onnx', 'check_options', 'export_onnx', 'CONTRACT_OUTPUTS', 'INPUT_NAME',
           'RAW_OUTPUTS', 'ExportWrapper']
