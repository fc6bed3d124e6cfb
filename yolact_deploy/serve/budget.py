"""Memory accounting of requests: a per-request and a global budget, charged *before* allocating.

Every request reserves, before it reads its body, what parsing the body may cost, and before each
image is decoded, what that image costs from decoding to the response (estimated from the header's
true size, see :func:`image_cost`). A request over its own budget gets 413, one that does not fit in
what is left of the global budget gets 503 with ``Retry-After``; all of it is released when the
response has been sent. So the service's memory is bounded by its baseline plus the global budget,
whatever the inputs.
"""
from __future__ import annotations

import threading
from typing import Optional

from .errors import RequestError

# Parsing a body: the bytes read, plus the copies json/base64 or the multipart parser make of them.
BODY_COPIES = 3
# Per pixel of an image, from decode to response: the BGR image (3), the batch copy (3), the graph's
# float input at full size (12), decoder scratch (the header's source bytes per pixel, counted apart)
# and slack for the onnxruntime/torch resize (8).
IMAGE_BYTES_PER_PIXEL = 26
# Per pixel and per detection: finalize resizes each kept mask to the image size in float32 and
# thresholds it (float out + resize buffer, then the bool mask kept until the JSON is written).
MASK_BYTES_PER_PIXEL = 9


def image_cost(pixels: int, source_bytes_per_pixel: float, detections: int) -> int:
    """Worst-case bytes one image holds while it is in the service (``detections`` = how many masks
    may be kept: the request's top_k, at most the model's K)."""
    return int(pixels * (IMAGE_BYTES_PER_PIXEL + source_bytes_per_pixel +
                         MASK_BYTES_PER_PIXEL * max(detections, 0)))


def mib(n: int) -> str:
    return f'{n / 2 ** 20:.0f} MiB'


class MemoryBudget:
    """The global budget: non-blocking reservations that either fit or are refused."""

    def __init__(self, total_bytes: int):
        self.total = int(total_bytes)
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    def try_reserve(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.total:
                return False
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.used -= n

    def request(self, limit_bytes: int) -> 'RequestBudget':
        return RequestBudget(self, limit_bytes)


class RequestBudget:
    """One request's reservations (a context manager that releases them all at the end)."""

    def __init__(self, budget: MemoryBudget, limit_bytes: int):
        self.budget, self.limit, self.used = budget, int(limit_bytes), 0

    def charge(self, n: int, what: str) -> None:
        n = int(n)
        if self.used + n > self.limit:
            raise RequestError(413, f'{what} needs about {mib(n)} of memory; with the rest of the '
                                    f'request that exceeds the per-request limit of {mib(self.limit)}'
                                    ' (send smaller images, fewer images, or a lower top_k)')
        if not self.budget.try_reserve(n):
            raise RequestError(503, f'the server memory budget ({mib(self.budget.total)}) is in use '
                                    'by other requests; retry later', retry_after=1)
        self.used += n

    def release(self) -> None:
        if self.used:
            self.budget.release(self.used)
            self.used = 0

    def __enter__(self) -> 'RequestBudget':
        return self

    def __exit__(self, *exc) -> Optional[bool]:
        self.release()
        return None
