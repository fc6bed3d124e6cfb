"""The Python inference service over real HTTP on loopback, with the onnxruntime backend.

Results are checked against direct Predictor calls on the same real images; bad requests must get a
clear 4xx and leave the service running; the queue bound gives 503 (and only past it); a drain (the
SIGTERM path) lets in-flight requests finish.
"""
from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from pycocotools import mask as mask_util

from yolact_deploy.serve import ServeConfig, start_server
from yolact_deploy.transforms import load_image
from yolact_deploy.assets import sample_images

THRESHOLD, TOP_K = 0.15, 10
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')  # pycocotools vs numpy 2


@pytest.fixture(scope='module')
def server(ort_predictor):
    srv = start_server(ort_predictor, ServeConfig(port=0, batch_window_ms=30, max_queue=32,
                                                  max_body_bytes=4 * 2 ** 20, max_pixels=4_000_000,
                                                  max_images_per_request=4, read_timeout_s=5,
                                                  score_threshold=THRESHOLD, top_k=TOP_K))
    yield srv
    assert srv.drain(30)


@pytest.fixture(scope='module')
def direct(ort_predictor):
    """Direct Predictor results per sample image (one image per call)."""
    return [ort_predictor.predict_batch([load_image(p)], THRESHOLD, TOP_K).results[0]
            for p in sample_images()]


def assert_same(result: dict, det, exact: bool = True):
    """HTTP result == direct ImageDetections (boxes, classes, scores, RLE masks)."""
    got = result['detections']
    assert len(got) == len(det)
    assert (result['height'], result['width']) == det.masks.shape[1:] if len(det) else True
    for g, i in zip(got, range(len(det))):
        assert g['box'] == [int(v) for v in det.boxes[i]]
        assert g['bbox'] == [int(det.boxes[i][0]), int(det.boxes[i][1]),
                             int(det.boxes[i][2] - det.boxes[i][0]), int(det.boxes[i][3] - det.boxes[i][1])]
        assert g['class_id'] == int(det.classes[i])
        assert g['label'] == det.labels()[i]
        rle = mask_util.encode(np.asfortranarray(det.masks[i].astype(np.uint8)))
        if exact:
            assert g['score'] == float(det.scores[i])
            assert g['mask_score'] == float(det.mask_scores[i])
            assert g['mask']['counts'] == rle['counts'].decode('ascii')
        else:  # batched runs may round differently in the last bits
            assert abs(g['score'] - float(det.scores[i])) < 1e-4
            mine = mask_util.decode({'size': g['mask']['size'], 'counts': g['mask']['counts'].encode()})
            assert np.mean(mine != det.masks[i]) <= 0.005
        assert g['mask']['size'] == [int(s) for s in det.masks.shape[1:]]


def test_health_and_model(server, make_client):
    c = make_client(server.port)
    status, body, _ = c.request('GET', '/health')
    assert status == 200 and body['status'] == 'ok' and body['backend'] == 'onnxruntime'
    assert body['max_queue'] == 32 and body['max_batch'] >= 1
    status, body, _ = c.request('GET', '/v1/model')
    assert status == 200 and len(body['class_names']) == len(body['category_ids']) > 0
    assert body['defaults'] == {'score_threshold': THRESHOLD, 'top_k': TOP_K}


def test_raw_uploads_match_predictor(server, make_client, sample_jpegs, direct):
    c = make_client(server.port)
    for jpeg, det in zip(sample_jpegs, direct):
        status, body, _ = c.detect(jpeg)
        assert status == 200, body
        assert body['backend'] == 'onnxruntime' and len(body['results']) == 1
        assert_same(body['results'][0], det)


def test_base64_json_and_multipart_match_predictor(server, make_client, sample_jpegs, direct):
    c = make_client(server.port)
    payload = {'images': [base64.b64encode(j).decode() for j in sample_jpegs[:3]],
               'score_threshold': 0.3, 'top_k': 4}
    status, body, _ = c.detect(json.dumps(payload), 'application/json')
    assert status == 200, body
    for res, det in zip(body['results'], direct[:3]):
        keep = np.nonzero(det.scores > 0.3)[0][:4]
        assert [d['box'] for d in res['detections']] == det.boxes[keep].tolist()
    # a data URL and masks=false
    url = 'data:image/jpeg;base64,' + base64.b64encode(sample_jpegs[0]).decode()
    status, body, _ = c.detect(json.dumps({'image': url, 'masks': False}), 'application/json')
    assert status == 200 and all('mask' not in d for d in body['results'][0]['detections'])
    # multipart: two files + a form field, the way curl -F sends them
    boundary = 'yolactBoundary42'
    parts = []
    for i in (3, 4):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file{i}"; '
                     f'filename="{i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                     + sample_jpegs[i] + b'\r\n')
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n{TOP_K}\r\n'
                 .encode())
    body_bytes = b''.join(parts) + f'--{boundary}--\r\n'.encode()
    status, body, _ = c.detect(body_bytes, f'multipart/form-data; boundary={boundary}')
    assert status == 200, body
    for res, det in zip(body['results'], direct[3:5]):
        assert_same(res, det, exact=False)  # the two images may have run as one batch


def test_concurrent_clients_are_batched(server, make_client, sample_jpegs, direct):
    before = server.service.snapshot()
    out = [None] * 8

    def worker(i):
        out[i] = make_client(server.port).detect(sample_jpegs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (status, body, _), det in zip(out, direct):
        assert status == 200, body
        assert_same(body['results'][0], det, exact=False)
    after = server.service.snapshot()
    assert after['images'] - before['images'] == 8
    assert after['batches'] - before['batches'] < 8  # at least one batch held several requests
    assert max(max(b['timing']['batch_sizes']) for _, b, _ in out) > 1


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    chunk = b'IHDR' + ihdr
    return (b'\x89PNG\r\n\x1a\n' + struct.pack('>I', len(ihdr)) + chunk
            + struct.pack('>I', zlib.crc32(chunk)) + b'\x00' * 64)


@pytest.mark.parametrize('case', [
    ('not an image', b'hello, I am text', 'image/jpeg', '', 400, 'not an image'),
    ('truncated jpeg', None, 'image/jpeg', '', 400, 'not an image'),
    ('wrong content type', b'abc', 'text/plain', '', 415, 'unsupported Content-Type'),
    ('missing content type', b'abc', None, '', 415, 'missing Content-Type'),
    ('malformed json', b'{"image": ', 'application/json', '', 400, 'malformed JSON'),
    ('json not an object', b'[1, 2]', 'application/json', '', 400, 'must be an object'),
    ('json bad base64', b'{"image": "***"}', 'application/json', '', 400, 'not valid base64'),
    ('json unknown field', b'{"image": "", "foo": 1}', 'application/json', '', 400, 'unknown JSON fields'),
    ('json both fields', b'{"image": "", "images": []}', 'application/json', '', 400, 'exactly one'),
    ('json too many', json.dumps({'images': ['AA=='] * 5}).encode(), 'application/json', '', 413, 'limit is 4'),
    ('huge pixels', _png_header(30000, 30000), 'image/png', '', 413, 'exceeds the limit'),
    ('bad threshold', None, 'image/jpeg', '?score_threshold=2', 400, 'score_threshold'),
    ('bad top_k', None, 'image/jpeg', '?top_k=-3', 400, 'top_k'),
    ('unknown query', None, 'image/jpeg', '?foo=1', 400, 'unknown query'),
    ('multipart no boundary', b'--x--', 'multipart/form-data', '', 400, 'boundary'),
    ('multipart no file', b'--b\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n3\r\n--b--\r\n',
     'multipart/form-data; boundary=b', '', 400, 'no file part'),
], ids=lambda c: c[0])
def test_bad_requests_get_4xx(server, make_client, sample_jpegs, case):
    _, body, ctype, query, want, needle = case
    if body is None:
        body = sample_jpegs[0] if case[0] != 'truncated jpeg' else sample_jpegs[0][:600]
    status, reply, _ = make_client(server.port).detect(body, ctype, query)
    assert status == want, reply
    assert reply['error']['status'] == want and needle in reply['error']['message']


def raw_exchange(port: int, data: bytes, timeout: float = 30) -> bytes:
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


def test_protocol_errors_and_limits(server, make_client, sample_jpegs):
    c = make_client(server.port)
    # Huge upload: refused from the Content-Length, before reading it.
    status, reply, headers = c.detect(b'\0' * (5 * 2 ** 20))
    assert status == 413 and 'exceeds the limit' in reply['error']['message']
    # No Content-Length / chunked.
    resp = raw_exchange(server.port, b'POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg'
                                     b'\r\n\r\n')
    assert resp.startswith(b'HTTP/1.1 411')
    resp = raw_exchange(server.port, b'POST /v1/detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: '
                                     b'chunked\r\nContent-Type: image/jpeg\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
    assert resp.startswith(b'HTTP/1.1 411')
    # Garbage request line, unknown routes and methods.
    assert raw_exchange(server.port, b'BLAH\r\n\r\n').startswith(b'HTTP/1.1 400')
    assert c.request('GET', '/nope')[0] == 404
    assert c.request('GET', '/v1/detect')[0] == 405
    assert c.request('DELETE', '/v1/detect')[0] == 405
    assert c.request('POST', '/health', b'', {'Content-Type': 'image/jpeg'})[0] == 405
    # A slow client (half a request line) is dropped after read_timeout_s.
    t0 = time.monotonic()
    with socket.create_connection(('127.0.0.1', server.port), timeout=30) as s:
        s.sendall(b'POST /v1/de')
        assert s.recv(100) == b''
    assert 4 <= time.monotonic() - t0 < 20
    # Keep-alive: several requests on one connection.
    import http.client
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=60)
    for _ in range(3):
        conn.request('POST', '/v1/detect?top_k=1', body=sample_jpegs[1],
                     headers={'Content-Type': 'image/jpeg'})
        r = conn.getresponse()
        assert r.status == 200 and len(json.loads(r.read())['results'][0]['detections']) <= 1
    conn.close()
    # After all of that the service is healthy and answers correctly.
    status, body, _ = c.request('GET', '/health')
    assert status == 200 and body['requests'].get('bad_requests', 0) >= 1
    assert c.detect(sample_jpegs[0])[0] == 200


class SlowPredictor:
    """Delegates to the real predictor after a fixed delay (to fill the queue)."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay
        self.backend, self.class_names = inner.backend, inner.class_names
        self.category_ids, self.input_size = inner.category_ids, inner.input_size
        self.max_batch = 1

    def predict_batch(self, images, score_threshold=None, top_k=None):
        time.sleep(self.delay)
        return self.inner.predict_batch(images, score_threshold, top_k)


def _burst(port, n, body, make_client):
    out = [None] * n

    def worker(i):
        out[i] = make_client(port).detect(body, query='?top_k=1&masks=0')

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_overload_503_only_past_queue_bound(ort_predictor, make_client, sample_jpegs):
    small = sample_jpegs[0]
    # Queue bound 3, batch 1, slow model, 10 clients at once: some 503, the rest 200, nothing else.
    srv = start_server(SlowPredictor(ort_predictor, 0.4), ServeConfig(port=0, max_queue=3,
                                                                     batch_window_ms=0))
    try:
        out = _burst(srv.port, 10, small, make_client)
        codes = [s for s, _, _ in out]
        assert set(codes) <= {200, 503}, codes
        assert codes.count(503) >= 1 and codes.count(200) >= 4  # 1 running + 3 queued at least
        for status, body, headers in out:
            if status == 503:
                assert 'overloaded' in body['error']['message'] and headers.get('Retry-After') == '1'
                assert 'limit 3' in body['error']['message']
        assert srv.health()['requests']['overloaded'] == codes.count(503)
    finally:
        assert srv.drain(60)
    # Queue bound >= concurrent clients: no 503 at all.
    srv = start_server(SlowPredictor(ort_predictor, 0.2), ServeConfig(port=0, max_queue=10,
                                                                     batch_window_ms=0))
    try:
        codes = [s for s, _, _ in _burst(srv.port, 10, small, make_client)]
        assert codes == [200] * 10
    finally:
        assert srv.drain(60)


def test_connection_limit(ort_predictor, make_client):
    srv = start_server(ort_predictor, ServeConfig(port=0, max_connections=2, read_timeout_s=10))
    try:
        idle = [socket.create_connection(('127.0.0.1', srv.port)) for _ in range(2)]
        time.sleep(0.3)
        resp = raw_exchange(srv.port, b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
        assert resp.startswith(b'HTTP/1.1 503') and b'too many open connections' in resp
        for s in idle:
            s.close()
        time.sleep(0.3)
        assert make_client(srv.port).request('GET', '/health')[0] == 200
    finally:
        srv.drain(10)


def test_drain_finishes_in_flight_requests(ort_predictor, make_client, sample_jpegs):
    srv = start_server(SlowPredictor(ort_predictor, 0.5), ServeConfig(port=0, batch_window_ms=0))
    out = [None] * 3

    def worker(i):
        out[i] = make_client(srv.port).detect(sample_jpegs[i], query='?masks=0')

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # all three accepted; one running, two queued
    assert srv.drain(60)
    for t in threads:
        t.join()
    assert [s for s, _, _ in out] == [200, 200, 200]
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', srv.port), timeout=2).recv(1)


def test_batch_limit_follows_the_engine_profile():
    from yolact_deploy.serve.batching import InferenceService, model_max_batch

    class FakeTrt:  # the TensorRT backend exposes its optimization profile (min, opt, max)
        profile = ([1, 32, 32, 3], [2, 550, 550, 3], [4, 4096, 4096, 3])

    assert model_max_batch(FakeTrt()) == 4
    svc = InferenceService(FakeTrt(), max_batch=16)
    try:
        assert svc.max_batch == 4  # never past the profile, whatever the flag says
    finally:
        svc.close(1)
    assert model_max_batch(object()) is None
