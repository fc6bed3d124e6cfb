"""The HTTP service against hostile input, over loopback: memory bounded before decoding (every
accepted format's header, per-request and global budgets), no request smuggling after an error
reply, no echo of client headers, deep JSON nesting, and 503 (not a reset) during a drain.

A fake predictor (no model) keeps these fast; the bombs are real encoded images whose headers claim
a huge size, so a decoder that ran would allocate gigabytes (the tests also check it never ran).
"""
from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import pytest

from yolact_deploy.postprocess import ImageDetections
from yolact_deploy.serve import ServeConfig, start_server
from yolact_deploy.serve import inputs as serve_inputs
from yolact_deploy.serve.budget import image_cost
from yolact_deploy.serve.hostile import bombs, encoded, jpeg_with_fill_bytes, patch_size
from yolact_deploy.deploy.imageheader import HeaderError, read_header


class FakePredictor:
    backend, class_names, category_ids, input_size = 'fake', ('thing',), [1], 256
    max_batch = 4

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls = 0

    def predict_batch(self, images, score_threshold=None, top_k=None):
        self.calls += 1
        time.sleep(self.delay)

        class R:
            results = [ImageDetections(np.zeros((0, 4), np.int32), np.zeros(0, np.int64),
                                       np.zeros(0, np.float32), np.zeros(0, np.float32),
                                       np.zeros((0,) + im.shape[:2], bool), ('thing',))
                       for im in images]
        return R()


FORMATS = {'JPEG': ('.jpg', {}), 'progressive JPEG': ('.jpg', {cv2.IMWRITE_JPEG_PROGRESSIVE: 1}),
           'PNG': ('.png', {}), 'TIFF': ('.tiff', {}), 'WebP lossy': ('.webp', {cv2.IMWRITE_WEBP_QUALITY: 80}),
           'WebP lossless': ('.webp', {cv2.IMWRITE_WEBP_QUALITY: 101}), 'BMP': ('.bmp', {})}


@pytest.mark.parametrize('name', list(FORMATS))
def test_header_gives_the_true_size_of_every_accepted_format(name):
    ext, params = FORMATS[name]
    data = encoded(ext, (37, 53), params)
    h = read_header(data)
    assert (h.width, h.height) == (53, 37)
    if name in ('WebP lossy', 'BMP', 'JPEG'):  # sizes past 14 bits (WebP lossy), odd (BMP), 16 bits
        w, hh = (16383, 9000) if 'WebP' in name else (65535, 40000)
        assert (read_header(patch_size(data, w, hh)).width,) == (w,)


def test_jpeg_fill_bytes_and_16bit_png():
    data = encoded('.jpg', (30, 40))
    for n in (1, 5):
        filled = jpeg_with_fill_bytes(data, n)
        assert cv2.imdecode(np.frombuffer(filled, np.uint8), cv2.IMREAD_COLOR).shape == (30, 40, 3)
        assert (read_header(filled).width, read_header(filled).height) == (40, 30)
    png16 = cv2.imencode('.png', np.zeros((5, 7, 3), np.uint16))[1].tobytes()
    h = read_header(png16)
    assert (h.width, h.height, h.source_bytes_per_pixel) == (7, 5, 6.0)


@pytest.mark.parametrize('data', [
    encoded('.ppm'), b'GIF89a\x01\x00\x01\x00', b'\x00\x00\x00\x0cjP  \r\n\x87\n', b'hello',
    b'\xff\xd8\xff\xda\x00\x02', b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n\x00', b'II*\x00\xff\xff\xff\xff',
    b'RIFF\x00\x00\x00\x00WEBPVP8 ', b'BM\x00', b'\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x10'],
    ids=['ppm', 'gif', 'jp2', 'text', 'jpeg-sos-first', 'jpeg-cut', 'png-cut', 'tiff-bad-offset',
         'webp-cut', 'bmp-cut', 'jpeg-height-0'])
def test_unboundable_or_unknown_headers_are_refused(data):
    with pytest.raises(HeaderError):
        read_header(data)


def test_cost_counts_masks():
    assert image_cost(1000, 3, 0) < image_cost(1000, 3, 10) == 1000 * (26 + 3 + 90)


# -- over HTTP ------------------------------------------------------------------------------------

def raw_exchange(port: int, data: bytes, timeout: float = 20) -> bytes:
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks)


def post(port: int, body: bytes, ctype: str, query: str = '', timeout: float = 20):
    import http.client
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('POST', '/v1/detect' + query, body=body, headers={'Content-Type': ctype})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), dict(resp.getheaders())
    finally:
        conn.close()


@pytest.fixture
def decodes(monkeypatch):
    """Counts cv2.imdecode calls made by the service."""
    calls = []
    real = serve_inputs.cv2.imdecode

    def spy(buf, flags):
        calls.append(len(buf))
        return real(buf, flags)
    monkeypatch.setattr(serve_inputs.cv2, 'imdecode', spy)
    return calls


@pytest.fixture
def server():
    srv = start_server(FakePredictor(), ServeConfig(port=0, read_timeout_s=5))
    yield srv
    assert srv.drain(10)


BOMBS = bombs()


@pytest.mark.parametrize('name', list(BOMBS))
def test_bombs_are_refused_before_decoding(server, decodes, name):
    status, body, headers = post(server.port, BOMBS[name], 'image/octet-stream')
    assert status == 413, body
    assert decodes == []
    assert 'pixels' in body['error']['message'] or 'memory' in body['error']['message']
    assert headers.get('Connection') == 'close'


def test_many_large_pngs_in_one_json_request_are_refused_by_the_request_budget(server, decodes):
    png = base64.b64encode(patch_size(encoded('.png'), 6000, 6000)).decode()
    status, body, _ = post(server.port, json.dumps({'images': [png] * 16}).encode(),
                           'application/json', '?top_k=0')
    assert status == 413 and 'per-request limit' in body['error']['message']
    assert decodes == []


def test_global_budget_gives_503_and_is_released():
    pred = FakePredictor(delay=1.0)
    image = encoded('.png', (600, 600))
    cost = 3 * len(image) + image_cost(600 * 600, read_header(image).source_bytes_per_pixel, 0)
    cfg = ServeConfig(port=0, max_request_bytes=int(cost * 1.2), memory_budget_bytes=int(cost * 1.5),
                      top_k=0, read_timeout_s=5)
    srv = start_server(pred, cfg)
    try:
        first = {}
        t = threading.Thread(target=lambda: first.update(r=post(srv.port, image, 'image/png')))
        t.start()
        time.sleep(0.4)  # the first request holds its reservation while the model runs
        status, body, headers = post(srv.port, image, 'image/png')
        assert status == 503 and 'memory budget' in body['error']['message']
        assert headers.get('Retry-After') == '1'
        t.join()
        assert first['r'][0] == 200
        for _ in range(50):  # released right after the response is written
            if srv.memory.used == 0:
                break
            time.sleep(0.05)
        assert srv.memory.used == 0
        assert post(srv.port, image, 'image/png')[0] == 200
        assert srv.health()['requests']['memory_refused'] == 1
    finally:
        assert srv.drain(10)


def test_accepted_formats_still_decode_and_unknown_ones_get_400(server):
    for name, (ext, params) in FORMATS.items():
        status, body, _ = post(server.port, encoded(ext, params=params), 'image/octet-stream')
        assert status == 200, (name, body)
    status, body, _ = post(server.port, encoded('.ppm'), 'image/octet-stream')
    assert status == 400 and 'JPEG, PNG, TIFF, WebP, BMP' in body['error']['message']


def test_error_reply_closes_the_connection_no_smuggling(server):
    junk = b''.join(b'X-Junk-%d: y\r\n' % i for i in range(150))
    hidden = b'GET /v1/model HTTP/1.1\r\nHost: x\r\n\r\n'
    resp = raw_exchange(server.port, b'GET /health HTTP/1.1\r\nHost: x\r\n' + junk + b'\r\n' + hidden)
    assert resp.startswith(b'HTTP/1.1 431')
    assert resp.count(b'HTTP/1.1 ') == 1 and b'class_names' not in resp  # the hidden one never ran
    assert b'Connection: close' in resp
    # a body sent with a refused request is never parsed as the next request either
    smuggled = (b'POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: ' + str(len(hidden)).encode()
                + b'\r\n\r\n' + hidden)
    resp = raw_exchange(server.port, smuggled)
    assert resp.count(b'HTTP/1.1 ') == 1 and b'class_names' not in resp


def test_client_headers_are_never_echoed(server):
    secret = b'S3CRET' * 12000  # one ~70 KB header line
    resp = raw_exchange(server.port, b'GET /health HTTP/1.1\r\nHost: x\r\nX-Long: ' + secret +
                        b'\r\n\r\n')
    assert resp.startswith(b'HTTP/1.1 431') and b'S3CRET' not in resp
    assert resp.count(b'HTTP/1.1 ') == 1
    for line in (b'GET /health HTTP/9.9 S3CRET', b'S3CRET S3CRET', b'GET /health HTTP/1.1x' + secret[:100]):
        resp = raw_exchange(server.port, line + b'\r\nHost: x\r\n\r\n')
        assert resp.startswith(b'HTTP/1.1 4') and b'S3CRET' not in resp, resp[:300]


def test_deeply_nested_json_is_a_400(server):
    for body in (b'[' * 100_000, b'{"image": ' + b'[' * 100_000 + b']' * 100_000 + b'}'):
        status, payload, _ = post(server.port, body, 'application/json')
        assert status == 400 and 'nested' in payload['error']['message'] or status == 400, payload
    assert post(server.port, encoded('.jpg'), 'image/jpeg')[0] == 200  # still serving


def test_requests_during_a_drain_get_503_not_a_reset():
    srv = start_server(FakePredictor(delay=1.5), ServeConfig(port=0, batch_window_ms=0,
                                                             read_timeout_s=5))
    image = encoded('.jpg')
    inflight = {}
    t = threading.Thread(target=lambda: inflight.update(r=post(srv.port, image, 'image/jpeg')))
    t.start()
    time.sleep(0.3)
    drained = {}
    d = threading.Thread(target=lambda: drained.update(ok=srv.drain(20)))
    d.start()
    time.sleep(0.2)
    late = []
    for _ in range(3):  # arrive while the in-flight request is still running
        status, body, headers = post(srv.port, image, 'image/jpeg')
        late.append(status)
        assert 'shutting down' in body['error']['message'] and headers.get('Connection') == 'close'
    resp = raw_exchange(srv.port, b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    assert resp.startswith(b'HTTP/1.1 503') and b'draining' in resp
    t.join()
    d.join()
    assert late == [503, 503, 503] and inflight['r'][0] == 200 and drained['ok']
