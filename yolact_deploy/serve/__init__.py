"""HTTP inference service over the Predictor API (``yolact-serve``).

JSON in/out over plain HTTP/1.1 (standard library only): images as raw uploads, multipart form uploads
or base64 in JSON; detections with COCO RLE masks out. Concurrent requests are batched dynamically up to
the model's batch limit; the queue is bounded (503 past it); request, image and header sizes are limited;
SIGTERM drains in-flight work. See docs/serving.md.
"""
from .batching import InferenceService, Overloaded, ServiceClosed
from .config import ServeConfig
from .server import YolactHTTPServer, run_forever, start_server

__all__ = ['InferenceService', 'Overloaded', 'ServeConfig', 'ServiceClosed', 'YolactHTTPServer',
           'run_forever', 'start_server']
