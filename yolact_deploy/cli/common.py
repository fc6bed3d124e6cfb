"""Shared command-line plumbing: one-line errors with exit code 2, atomic file output."""
from __future__ import annotations

import functools
import os
import sys

from ..errors import YolactError
from ..fileio import Terminated, atomic_output, install_signal_cleanup  # noqa: F401  (re-exported)


def cli_main(func):
    """Wraps a ``main(argv)``: user errors print one line (``error: ...``) and exit with code 2."""
    @functools.wraps(func)
    def wrapper(argv=None):
        install_signal_cleanup()  # SIGTERM unwinds like Ctrl-C: no temporary is left behind
        try:
            return func(argv) or 0
        except YolactError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            return 130
        except Terminated as exc:
            print('terminated', file=sys.stderr)
            return exc.code
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
    if not os.access(probe, os.W_OK):
        raise YolactError(f'output directory is not writable: {probe}')


def check_output_file(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    check_writable_dir(directory)
    if os.path.isdir(path):
        raise YolactError(f'output path is a directory: {path}')
