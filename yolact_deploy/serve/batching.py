"""Dynamic batching over a Predictor: one worker thread, a bounded queue of images, futures.

Requests put their decoded images on the queue (all or nothing: a request that does not fit is refused
with :class:`Overloaded`, so a 503 never leaves half a request queued). The worker takes the first image,
waits up to ``batch_window_ms`` for more (up to ``max_batch``), runs them as one ``predict_batch`` and
resolves each image's future with its own :class:`~yolact_deploy.postprocess.ImageDetections`.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..deploy.postprocess import ImageDetections

log = logging.getLogger('yolact_deploy.serve')

DEFAULT_MAX_BATCH = 8


class Overloaded(Exception):
    """The queue bound would be exceeded (HTTP 503)."""

    def __init__(self, queued: int, limit: int, wanted: int):
        super().__init__(f'overloaded: {queued} images queued, limit {limit}; this request has '
                         f'{wanted}; retry later')
        self.queued, self.limit, self.wanted = queued, limit, wanted


class ServiceClosed(Exception):
    """The service is draining or stopped (HTTP 503)."""


@dataclass
class _Item:
    image: np.ndarray
    score_threshold: float
    top_k: Optional[int]
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class ItemResult:
    detections: ImageDetections
    queue_ms: float
    inference_ms: float
    batch_size: int


def _restrict(det: ImageDetections, score_threshold: float, top_k: Optional[int]) -> ImageDetections:
    """The detections ``finalize`` would give with a higher threshold / smaller top_k (same order)."""
    keep = np.nonzero(det.scores > score_threshold)[0]
    if top_k is not None:
        keep = keep[:top_k]
    if len(keep) == len(det):
        return det
    return det.subset(keep)


def model_max_batch(predictor) -> Optional[int]:
    """The predictor's batch limit when it has one (TensorRT profiles); None otherwise."""
    for name in ('max_batch', 'max_batch_size'):
        value = getattr(predictor, name, None)
        if isinstance(value, int) and value >= 1:
            return value
    profile = getattr(predictor, 'profile', None)  # TensorRT backend: ([B,H,W,3] min, opt, max)
    try:
        value = int(profile[2][0])
        return value if value >= 1 else None
    except (TypeError, IndexError, ValueError):
        return None


class InferenceService:
    def __init__(self, predictor, max_batch: Optional[int] = None, batch_window_ms: float = 5.0,
                 max_queue: int = 64):
        self.predictor = predictor
        limit = model_max_batch(predictor)
        if max_batch is None:
            max_batch = limit or DEFAULT_MAX_BATCH
        elif limit is not None:
            max_batch = min(max_batch, limit)  # never past the engine's batch profile
        self.max_batch = int(max_batch)
        self.batch_window = batch_window_ms / 1000.0
        self.max_queue = int(max_queue)
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0  # images being run right now
        self.stats = collections.Counter()
        self._worker = threading.Thread(target=self._run, name='yolact-batcher', daemon=True)
        self._worker.start()

    # -- producer side -------------------------------------------------------------------------
    def submit(self, images: Sequence[np.ndarray], score_threshold: float,
               top_k: Optional[int]) -> List[Future]:
        items = [_Item(im, score_threshold, top_k) for im in images]
        with self._cond:
            if self._closed:
                self.stats['rejected_closed'] += 1
                raise ServiceClosed('the service is shutting down')
            if len(self._queue) + len(items) > self.max_queue:
                self.stats['rejected_overload'] += 1
                raise Overloaded(len(self._queue), self.max_queue, len(items))
            self._queue.extend(items)
            self.stats['images_queued'] += len(items)
            self._cond.notify()
        return [it.future for it in items]

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def snapshot(self) -> dict:
        with self._cond:
            return {'queue': len(self._queue), 'running': self._busy, **self.stats}

    def close(self, timeout: Optional[float] = None) -> bool:
        """Stops taking work, lets the worker finish everything queued. True when drained in time."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout)
        return not self._worker.is_alive()

    # -- worker side ---------------------------------------------------------------------------
    def _take_batch(self) -> List[_Item]:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return []
            deadline = time.monotonic() + self.batch_window
            while len(self._queue) < self.max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(self.max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(n)]
            self._busy = n
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            try:
                self._process(batch)
            except BaseException as exc:  # never let the worker die: fail the batch instead
                log.exception('batch failed')
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(exc)
            finally:
                with self._cond:
                    self._busy = 0

    def _process(self, batch: List[_Item]) -> None:
        # Same-size images next to each other: backends without a resize outside the graph run
        # one call per image size.
        order = sorted(range(len(batch)), key=lambda i: batch[i].image.shape)
        images = [batch[i].image for i in order]
        threshold = min(it.score_threshold for it in batch)
        tops = [it.top_k for it in batch]
        top_k = None if any(t is None for t in tops) else max(tops)
        start = time.monotonic()
        try:
            results = self.predictor.predict_batch(images, score_threshold=threshold,
                                                   top_k=top_k).results
        except Exception:
            if len(batch) == 1:
                raise
            # Isolate the failing image: run them one by one.
            log.warning('batch of %d failed; retrying images one by one', len(batch))
            for it in batch:
                try:
                    self._process([it])
                except Exception as exc:
                    it.future.set_exception(exc)
            return
        elapsed = (time.monotonic() - start) * 1000
        self.stats['batches'] += 1
        self.stats['images'] += len(batch)
        self.stats[f'batch_size_{len(batch)}'] += 1
        for pos, i in enumerate(order):
            it = batch[i]
            det = _restrict(results[pos], it.score_threshold, it.top_k)
            it.future.set_result(ItemResult(det, (start - it.queued_at) * 1000, elapsed, len(batch)))
