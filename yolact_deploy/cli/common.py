"""Shared command-line plumbing: one-line errors with exit code 2, atomic file output."""
from __future__ import annotations

import functools
import os
import sys

from ..errors import YolactError
from ..fileio import atomic_output  # noqa: F401  (re-exported for the tools)


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
