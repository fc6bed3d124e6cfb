"""The HTTP layer: ThreadingHTTPServer with bounded connections, JSON routes, graceful shutdown.

Routes
  GET  /health     {"status": "ok" | "draining", queue, ...}; 503 while draining
  GET  /v1/model   class names, category ids, input size, batch limit, backend
  POST /v1/detect  images in (see inputs.py), detections with COCO RLE masks out
Errors are JSON too: {"error": {"status": N, "message": "..."}}.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import urlsplit

from .. import __version__
from ..deploy.results import detections_json
from .batching import InferenceService, Overloaded, ServiceClosed
from .budget import BODY_COPIES, MemoryBudget
from .config import ServeConfig
from .errors import RequestError
from .inputs import parse_detect_request

log = logging.getLogger('yolact_deploy.serve')


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'   # keep-alive; every response has a Content-Length
    default_request_version = 'HTTP/1.1'  # answers to garbage get a status line too (no HTTP/0.9)
    server_version = f'yolact-serve/{__version__}'
    server: 'YolactHTTPServer'

    def setup(self):
        self.timeout = self.server.config.read_timeout_s  # slow or idle clients are dropped
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def handle_one_request(self):
        # Busy from the request line to the end of the response: what a drain waits for.
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (socket.timeout, ConnectionError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        self.started_at = time.monotonic()
        with self.server.busy():
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = '', 'HTTP/1.1', ''
                self._error(414, 'request line too long')
                return
            if not self.parse_request():
                return
            method = getattr(self, 'do_' + self.command, None)
            if method is None:
                self._error(405, f'method {self.command} not allowed')
                return
            try:
                method()
            except (ConnectionError, socket.timeout):
                self.close_connection = True
            except Exception as exc:  # a bug must cost one request, never the service
                log.exception('unhandled error')
                self._error(500, f'internal error: {type(exc).__name__}')
            self.wfile.flush()

    # -- plumbing --------------------------------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.server.config.access_log:
            log.info('%s %s', self.address_string(), fmt % args)

    def send_error(self, code, message=None, explain=None):
        # http.server's own errors (bad request line, header too long, ...) in our JSON form. Their
        # messages quote the client's request line or header ("Bad request version ('...')"):
        # keep only our part, never echo what the client sent.
        text = (message or self.responses.get(code, ('error',))[0]).split('(')[0].strip(' :')
        self._error(code, text[:120] or 'bad request')

    def _send(self, status: int, payload: dict, headers: Optional[dict] = None) -> None:
        body = json.dumps(payload, separators=(',', ':')).encode()
        if self.server.draining or status >= 400:
            # After an error the rest of what the client sent (an unread body, a header block cut
            # at a limit) must never be parsed as another request: close.
            self.close_connection = True
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _error(self, status: int, message: str, headers: Optional[dict] = None) -> None:
        self._send(status, {'error': {'status': status, 'message': message}}, headers)

    def _read_body(self, budget) -> Optional[bytes]:
        """The body, or None after answering 4xx/503 (connection then closed: the body was not
        read). What parsing it may cost is charged to ``budget`` before it is read."""
        cfg = self.server.config
        if self.headers.get('Transfer-Encoding'):
            self.close_connection = True
            self._error(411, 'chunked bodies are not supported: send a Content-Length')
            self._discard(self.server.config.max_body_bytes)
            return None
        length = self.headers.get('Content-Length')
        if length is None:
            self.close_connection = True
            self._error(411, 'Content-Length required')
            return None
        if not length.strip().isdigit():
            self.close_connection = True
            self._error(400, f'invalid Content-Length {length!r}')
            return None
        n = int(length)
        if n > cfg.max_body_bytes:
            self.close_connection = True
            self._error(413, f'request body of {n} bytes exceeds the limit of {cfg.max_body_bytes} '
                             'bytes')
            self._discard(n)
            return None
        try:
            budget.charge(n * BODY_COPIES, f'a body of {n} bytes')
        except RequestError as exc:
            self.server.count('memory_refused')
            self._error(exc.status, exc.message,
                        {'Retry-After': str(exc.retry_after)} if exc.retry_after else None)
            self._discard(n)
            return None
        body = self.rfile.read(n)
        if len(body) != n:
            self.close_connection = True
            raise ConnectionError('client closed the connection mid-body')
        return body

    def _discard(self, n: int, limit: int = 64 * 2 ** 20, seconds: float = 2.0) -> None:
        """Reads and drops (part of) a refused body, so closing does not reset the connection
        before the client has read our answer (a bounded "lingering close")."""
        self.wfile.flush()
        deadline = time.monotonic() + seconds
        left = min(n, limit)
        try:
            self.connection.settimeout(0.5)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 1 << 16)) if hasattr(self.rfile, 'read1') \
                    else self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    # -- routes ----------------------------------------------------------------------------------
    def do_GET(self):
        path = urlsplit(self.path).path
        if path == '/health':
            h = self.server.health()
            self._send(503 if h['status'] != 'ok' else 200, h)
        elif path in ('/v1/model', '/v1/models'):
            self._send(200, self.server.model_info())
        elif path == '/v1/detect':
            self._error(405, 'use POST /v1/detect with an image')
        else:
            self._error(404, f'no route {path} (GET /health, GET /v1/model, POST /v1/detect)')

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != '/v1/detect':
            self.close_connection = True
            self._error(404 if url.path not in ('/health', '/v1/model') else 405,
                        f'no POST route {url.path} (POST /v1/detect)')
            return
        srv = self.server
        with srv.memory.request(srv.config.max_request_bytes) as budget:
            self._detect(url, budget)

    def _detect(self, url, budget) -> None:
        srv = self.server
        cfg = srv.config
        body = self._read_body(budget)
        if body is None:
            return
        if self.started_at >= srv.drain_started:
            self._error(503, 'the service is shutting down', {'Retry-After': '5'})
            return
        try:
            req = parse_detect_request(body, self.headers.get('Content-Type'), url.query,
                                       max_images=cfg.max_images_per_request,
                                       max_pixels=cfg.max_pixels, budget=budget,
                                       default_top_k=cfg.top_k,
                                       max_detections=srv.max_detections)
        except RequestError as exc:
            srv.count('memory_refused' if exc.status == 503 else 'bad_requests')
            self._error(exc.status, exc.message,
                        {'Retry-After': str(exc.retry_after)} if exc.retry_after else None)
            return
        finally:
            del body  # the encoded bytes are not needed past decoding
        threshold = cfg.score_threshold if req.score_threshold is None else req.score_threshold
        top_k = req.top_k if req.top_k_given else cfg.top_k
        t0 = time.monotonic()
        try:
            futures = srv.service.submit(req.images, threshold, top_k)
        except Overloaded as exc:
            srv.count('overloaded')
            self._error(503, str(exc), {'Retry-After': '1'})
            return
        except ServiceClosed as exc:
            self._error(503, str(exc), {'Retry-After': '5'})
            return
        deadline = t0 + cfg.request_timeout_s
        results = []
        try:
            for fut in futures:
                results.append(fut.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            srv.count('timeouts')
            self._error(504, f'inference did not finish within {cfg.request_timeout_s:g} s')
            return
        except Exception as exc:
            srv.count('errors')
            self._error(500, f'inference failed: {exc}')
            return
        payload = {
            'model': cfg.model_name, 'backend': srv.backend,
            'results': [detections_json(r.detections, im.shape[0], im.shape[1],
                                        srv.category_ids, req.masks)
                        for r, im in zip(results, req.images)],
            'timing': {'total_ms': round((time.monotonic() - t0) * 1000, 2),
                       'queue_ms': round(max(r.queue_ms for r in results), 2),
                       'inference_ms': round(max(r.inference_ms for r in results), 2),
                       'batch_sizes': [r.batch_size for r in results]},
        }
        srv.count('ok')
        self._send(200, payload)


def _max_detections(predictor) -> int:
    """K, the most detections one image can give (bounds the mask memory of a request)."""
    for name in ('max_detections', 'num_detections', 'k'):
        value = getattr(predictor, name, None)
        if isinstance(value, int) and value >= 1:
            return value
    return 100  # the export default (docs/serving.md: "K is 100 by default")


class YolactHTTPServer(ThreadingHTTPServer):
    daemon_threads = True       # idle keep-alive threads never block exit; drains wait on busy()
    block_on_close = False      # drain() waits for busy requests itself
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, predictor, config: ServeConfig):
        self.config = config.validate()
        self.predictor = predictor
        self.backend = getattr(predictor, 'backend', 'unknown')
        self.category_ids = list(getattr(predictor, 'category_ids', ()))
        self.memory = MemoryBudget(config.memory_budget_bytes)
        self.max_detections = _max_detections(predictor)
        self.draining = False
        self.drain_started = float('inf')
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._conns = set()
        self._counts = {}
        self.started = time.time()
        super().__init__((config.host, config.port), _Handler)  # binds: fails before any thread starts
        self.service = InferenceService(predictor, config.max_batch, config.batch_window_ms,
                                        config.max_queue)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f'http://{self.server_address[0]}:{self.port}'

    # -- connection bound ------------------------------------------------------------------------
    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:  # answer at once instead of queueing an unbounded number of threads
                body = b'{"error":{"status":503,"message":"too many open connections"}}'
                request.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json'
                                b'\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: ' +
                                str(len(body)).encode() + b'\r\n\r\n' + body)
            except OSError:
                pass
            self.shutdown_request(request)
            self.count('connections_refused')
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def track(self, conn, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def busy(self):
        server = self

        class _Busy:
            def __enter__(self):
                with server._lock:
                    server._busy += 1

            def __exit__(self, *exc):
                with server._lock:
                    server._busy -= 1
                    server._idle.notify_all()
        return _Busy()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    # -- info ------------------------------------------------------------------------------------
    def health(self) -> dict:
        with self._lock:
            busy, counts, conns = self._busy, dict(self._counts), len(self._conns)
        snap = self.service.snapshot()
        return {'status': 'draining' if self.draining else 'ok', 'backend': self.backend,
                'model': self.config.model_name, 'uptime_s': round(time.time() - self.started, 1),
                'queue': snap.pop('queue'), 'running': snap.pop('running'),
                'max_queue': self.service.max_queue, 'max_batch': self.service.max_batch,
                'in_flight_requests': busy, 'open_connections': conns,
                'requests': counts, 'batching': snap}

    def model_info(self) -> dict:
        p = self.predictor
        return {'name': self.config.model_name, 'backend': self.backend,
                'input_size': getattr(p, 'input_size', None),
                'class_names': list(getattr(p, 'class_names', ())),
                'category_ids': self.category_ids, 'max_batch': self.service.max_batch,
                'defaults': {'score_threshold': self.config.score_threshold,
                             'top_k': self.config.top_k}}

    # -- shutdown --------------------------------------------------------------------------------
    def drain(self, timeout: Optional[float] = None) -> bool:
        """Lets in-flight requests finish while new ones get 503, stops the batcher, stops
        accepting, closes idle keep-alive connections. True when everything finished within
        ``timeout``."""
        timeout = self.config.drain_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.drain_started = time.monotonic()
        self.draining = True  # requests that start from now on get 503; earlier ones complete
        # Still accepting meanwhile: a connection that arrives now gets its documented 503 (with
        # Connection: close) instead of waiting in the backlog for a reset.
        with self._lock:
            while self._busy and time.monotonic() < deadline:
                self._idle.wait(max(0.0, deadline - time.monotonic()))
            finished = self._busy == 0
        drained = self.service.close(max(0.0, deadline - time.monotonic()))
        self.shutdown()  # the serve_forever loop stops accepting
        self._refuse_pending()
        with self._lock:
            idle = list(self._conns)
        for conn in idle:  # idle keep-alive connections: nothing in flight on them
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        return finished and drained

    def _refuse_pending(self, seconds: float = 2.0) -> None:
        """Answers 503 to connections still in the listen backlog (bounded), so that closing the
        listening socket resets none of them."""
        body = b'{"error":{"status":503,"message":"the service is shutting down"}}'
        reply = (b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
                 b'Connection: close\r\nRetry-After: 5\r\nContent-Length: ' +
                 str(len(body)).encode() + b'\r\n\r\n' + body)
        deadline = time.monotonic() + seconds
        try:
            self.socket.setblocking(False)
        except OSError:
            return
        while time.monotonic() < deadline:
            try:
                conn, _ = self.socket.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                return
            try:
                conn.settimeout(0.2)
                try:
                    conn.recv(65536)  # the request: unread data at close() would send a reset
                except OSError:
                    pass
                conn.sendall(reply)
                conn.shutdown(socket.SHUT_WR)
                while time.monotonic() < deadline and conn.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                conn.close()
            self.count('refused_draining')


def start_server(predictor, config: ServeConfig = ServeConfig()) -> YolactHTTPServer:
    """Binds and starts serving in a background thread (for embedding and tests); stop with
    ``server.drain()``."""
    server = YolactHTTPServer(predictor, config)
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.2},
                     name='yolact-http', daemon=True).start()
    return server


def run_forever(predictor, config: ServeConfig, ready=None) -> int:
    """Serves until SIGTERM/SIGINT, then drains. Returns 0 when drained cleanly, 1 otherwise."""
    server = YolactHTTPServer(predictor, config)
    stop = threading.Event()

    def on_signal(signum, frame):
        log.warning('signal %d: draining (in flight: %d requests, %d queued images)', signum,
                    server._busy, server.service.queued)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.2},
                              name='yolact-http', daemon=True)
    thread.start()
    if ready:
        ready(server)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    ok = server.drain()
    thread.join(5)
    log.warning('stopped (%s)', 'drained' if ok else 'drain timed out')
    return 0 if ok else 1
