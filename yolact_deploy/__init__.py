"""yolact-deploy: YOLACT / YOLACT++ from PyTorch to ONNX and TensorRT engines."""
__version__ = '0.1.0'
