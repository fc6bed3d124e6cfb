"""Service settings (``yolact-serve`` flags map onto these one to one)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import InputError


@dataclass(frozen=True)
class ServeConfig:
    host: str = '127.0.0.1'
    port: int = 8080
    max_batch: Optional[int] = None     # None: the model's batch limit (8 when it has none)
    batch_window_ms: float = 5.0        # how long the first queued image waits for company
    max_queue: int = 64                 # images waiting for inference; more -> 503
    max_body_bytes: int = 20 * 2 ** 20  # request body limit -> 413
    max_pixels: int = 40_000_000        # per decoded image -> 413 (checked from the header first)
    max_images_per_request: int = 16    # -> 413
    # Memory accounting (serve/budget.py): what a request may hold (body copies, decoded images,
    # masks) -> 413, and what all requests together may hold -> 503.
    max_request_bytes: int = 1024 * 2 ** 20
    memory_budget_bytes: int = 1536 * 2 ** 20
    max_connections: int = 64           # open connections; more -> 503 at once
    request_timeout_s: float = 60.0     # waiting for inference -> 504
    read_timeout_s: float = 15.0        # idle/slow clients are disconnected
    drain_timeout_s: float = 30.0       # SIGTERM: longest wait for in-flight requests
    score_threshold: float = 0.15       # defaults for requests that do not say
    top_k: Optional[int] = 100
    model_name: str = 'yolact'
    access_log: bool = False

    def validate(self) -> 'ServeConfig':
        checks = [
            (0 <= self.port <= 65535, f'port must be 0..65535, got {self.port}'),
            (self.max_batch is None or self.max_batch >= 1, f'max batch must be >= 1, got {self.max_batch}'),
            (self.batch_window_ms >= 0, 'batch window must be >= 0 ms'),
            (self.max_queue >= 1, f'max queue must be >= 1, got {self.max_queue}'),
            (self.max_body_bytes >= 1024, 'max body must be at least 1 KiB'),
            (self.max_pixels >= 1, 'max pixels must be positive'),
            (self.max_images_per_request >= 1, 'max images per request must be >= 1'),
            (self.max_request_bytes >= 2 ** 20, 'max request memory must be at least 1 MiB'),
            (self.memory_budget_bytes >= self.max_request_bytes,
             'the memory budget must be at least the per-request memory limit'),
            (self.max_connections >= 1, 'max connections must be >= 1'),
            (self.request_timeout_s > 0 and self.read_timeout_s > 0, 'timeouts must be positive'),
            (0.0 <= self.score_threshold <= 1.0, 'score threshold must be in [0, 1]'),
            (self.top_k is None or self.top_k >= 0, 'top-k must be >= 0'),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        return self
