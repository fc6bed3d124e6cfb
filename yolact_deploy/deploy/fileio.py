"""Atomic file output, shared by the library (checkpoints, ONNX, engines) and the command-line tools.

A file is written to a temporary name next to its final path and renamed over it only when
complete, so the final path never holds half a file. The temporary names say whose they are
(``.yolact-tmp-<host>.<pid>.<random>...``): temporaries of this process are removed when it fails,
is interrupted (Ctrl-C) or terminated (SIGTERM, see :func:`install_signal_cleanup`), and a later
write into the same folder removes those left by a process of this host that no longer exists (a
SIGKILL or a power cut). Nothing else is ever removed. The output checks fail before any work.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import tempfile
import threading

from ..errors import YolactError

PREFIX = '.yolact-tmp-'
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_NAME = re.compile(re.escape(PREFIX) + r'([0-9a-f]{8})\.(\d+)\.')
_live = set()  # this process's temporaries (files and folders)
_lock = threading.Lock()


def temp_prefix() -> str:
    return f'{PREFIX}{_HOST}.{os.getpid()}.'


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(directory: str) -> list:
    """Removes temporaries in ``directory`` left by dead processes of this host; returns them."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _NAME.match(name)
        if not m or m.group(1) != _HOST:
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        path = os.path.join(directory, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _register(path: str) -> None:
    with _lock:
        _live.add(path)


def _discard(path: str) -> None:
    with _lock:
        _live.discard(path)
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
    except OSError:
        pass


def cleanup_temporaries() -> None:
    """Removes every temporary this process still has (at exit and on SIGTERM)."""
    with _lock:
        paths = list(_live)
    for path in paths:
        _discard(path)


atexit.register(cleanup_temporaries)


def make_temp_dir(directory: str, tag: str = '') -> str:
    """A registered temporary folder inside ``directory`` (for outputs that are folders)."""
    remove_stale_temporaries(directory)
    path = tempfile.mkdtemp(prefix=temp_prefix() + (f'{tag}.' if tag else ''), dir=directory)
    _register(path)
    return path


def release_temp_dir(path: str) -> None:
    """Forgets (after it was renamed into place) or removes a folder from :func:`make_temp_dir`."""
    _discard(path)


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = ''):
    """Yields a temporary path next to ``path``; renames it over ``path`` only on success, so a
    failed or interrupted write never leaves a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=suffix or os.path.splitext(path)[1],
                               dir=directory)
    _register(tmp)
    os.close(fd)
    try:
        # mkstemp creates 0600 files; outputs get the permissions a plain open() would give them.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        os.replace(tmp, path)
    finally:
        _discard(tmp)


class Terminated(SystemExit):
    """SIGTERM, turned into an exception so that ``finally`` blocks (and atomic outputs) run."""


def install_signal_cleanup() -> None:
    """SIGTERM raises :class:`Terminated` (exit code 143) in the main thread, so an interrupted
    write unwinds and removes its temporary like Ctrl-C does. Main thread only; no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_term(signum, frame):
        raise Terminated(128 + signum)
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, on_term)
    except (ValueError, OSError):
        pass


def check_writable_dir(path: str) -> None:
    """Creates ``path`` if needed and fails early, with one line, when it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise YolactError(f'cannot create output directory {path}: {exc.strerror}') from None
    if not os.access(path, os.W_OK):
        raise YolactError(f'output directory is not writable: {path}')
    _probe_write(path)


def check_creatable_dir(path: str) -> None:
    """Fails, with one line, when ``path`` could not be created or written -- without creating it
    (a run that fails later must not leave an empty output folder behind)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise YolactError(f'cannot create output directory {path}: {probe} is not a directory')
    _probe_write(probe)


def _probe_write(directory: str) -> None:
    # os.access says yes to root on read-only folders and file systems: try it.
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix() + 'probe.', dir=directory)
    except OSError as exc:
        raise YolactError(f'output directory is not writable: {directory} '
                          f'({exc.strerror or exc})') from None
    os.close(fd)
    os.unlink(tmp)


def check_output_file(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    check_writable_dir(directory)
    if os.path.isdir(path):
        raise YolactError(f'output path is a directory: {path}')
