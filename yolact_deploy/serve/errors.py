"""The service's request error (shared by input parsing and memory accounting)."""
from __future__ import annotations

from typing import Optional


class RequestError(Exception):
    """A bad or refused request: HTTP status + one-line message (+ Retry-After for 503s)."""

    def __init__(self, status: int, message: str, retry_after: Optional[int] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
