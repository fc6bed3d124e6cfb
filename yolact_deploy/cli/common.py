"""Shared command-line plumbing: one-line errors with exit code 2, atomic file output."""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile

from ..errors import YolactError


def cli_main(func):
    """Wraps a ``main(argv)``: user errors print one line (``error: ...``) and exit with code 2."""
    @functools.wraps(func)
    def wrapper(argv=None):
        try:
            return func(argv) or 0
        except YolactError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            return 130
    return wrapper


def run_cli(main) -> None:
    sys.exit(main())


def check_writable_dir(path: str) -> None:
    """Creates ``path`` if needed and fails early, with one line, when it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise YolactError(f'cannot create output directory {path}: {exc.strerror}') from None
    if not os.access(path, os.W_OK):
        raise YolactError(f'output directory is not writable: {path}')


def check_output_file(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    check_writable_dir(directory)
    if os.path.isdir(path):
        raise YolactError(f'output path is a directory: {path}')


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = ''):
    """Yields a temporary path next to ``path``; renames it over ``path`` only on success."""
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
