"""The deployment layer: everything a deployment box needs, without PyTorch.

The engine contract, ONNX metadata and the engine sidecar, plugin-library lookup and loading, numpy
post-processing (and detections from raw graphs), result JSON, drawing, image and video I/O, atomic
file output and the TensorRT version layer. ``runtime/`` and ``serve/`` stand on it; the PyTorch
side (``ops/``, ``model/``, ``export/``, ``train/``, ``evaluation/``) imports it, never the reverse.
No module here imports torch (tests/test_layers.py keeps it so).
"""
