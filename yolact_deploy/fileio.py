"""Atomic file output, shared by the library (checkpoints, ONNX, engines) and the command-line tools."""
from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = ''):
    """Yields a temporary path next to ``path``; renames it over ``path`` only on success, so a
    failed or interrupted write never leaves a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix=suffix or os.path.splitext(path)[1],
                               dir=directory)
    os.close(fd)
    # mkstemp creates 0600 files; outputs get the permissions a plain open() would give them.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
