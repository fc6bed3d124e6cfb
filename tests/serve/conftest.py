"""Fixtures of the serving tests: a small model exported to ONNX once per session (the acceptance
tests run the service with the onnxruntime backend), and helpers to talk HTTP to it."""
from __future__ import annotations

import http.client
import json

import pytest

from yolact_deploy.assets import sample_images


def _export_small_onnx(path: str) -> None:
    import torch

    from yolact_deploy import config
    from yolact_deploy.export.onnx_export import ExportOptions, export_onnx
    from yolact_deploy.model import Yolact
    from yolact_deploy.testing import lively_random_init
    from yolact_deploy.transforms import load_image, preprocess
    # The CPU-friendly preset (EfficientNet-Lite0 at 256 px) with lively random weights.
    cfg = config.get_preset('yolact_lite0_256')
    example = preprocess([load_image(sample_images()[0])], cfg)
    torch.manual_seed(0)
    model = lively_random_init(Yolact(cfg).eval(), seed=0, example=example)
    export_onnx(model, path, ExportOptions(max_batch=16), quiet=True)


@pytest.fixture(scope='session')
def serve_onnx(tmp_path_factory) -> str:
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    path = str(tmp_path_factory.mktemp('serve') / 'lite0_256.onnx')
    _export_small_onnx(path)
    return path


@pytest.fixture(scope='session')
def ort_predictor(serve_onnx):
    from yolact_deploy.runtime import load_predictor
    return load_predictor(serve_onnx, backend='onnxruntime', threads=2)


@pytest.fixture(scope='session')
def sample_jpegs() -> list:
    return [open(p, 'rb').read() for p in sample_images()]


class Client:
    """One request per connection unless `keep` is used."""

    def __init__(self, port: int, timeout: float = 120):
        self.port, self.timeout = port, timeout

    def request(self, method: str, path: str, body=None, headers=None):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, (json.loads(data) if data else None), dict(resp.getheaders())
        finally:
            conn.close()

    def detect(self, body, content_type='image/jpeg', query=''):
        headers = {'Content-Type': content_type} if content_type else {}
        return self.request('POST', '/v1/detect' + query, body, headers)


@pytest.fixture
def make_client():
    return Client
