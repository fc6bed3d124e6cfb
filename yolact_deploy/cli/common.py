"""Shared command-line plumbing: one-line errors with exit code 2, atomic file output."""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys

from ..errors import YolactError
from ..deploy.fileio import Terminated, atomic_output, install_signal_cleanup  # noqa: F401  (re-exported)


MAX_BATCH = 1024  # larger batches only end in an allocation error minutes later


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the house error format: one line, ``error: ...``, exit code 2 (via
    :func:`cli_main`), instead of argparse's usage block."""

    def error(self, message):
        raise YolactError(f'{message} (see {self.prog} --help)')


def _number(cast, text, what):
    try:
        value = cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}') from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}')
    return value


def int_range(lo=None, hi=None):
    """argparse type: an integer in [lo, hi] (either bound may be None)."""
    what = ('an integer' + (f' >= {lo}' if lo is not None and hi is None else '') +
            (f' in {lo}..{hi}' if lo is not None and hi is not None else '') +
            (f' <= {hi}' if hi is not None and lo is None else ''))

    def parse(text):
        value = _number(int, text, what)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}')
        return value
    parse.__name__ = 'integer'
    return parse


def float_range(lo=None, hi=None, lo_open=False):
    """argparse type: a finite number in [lo, hi] (``lo_open``: > lo)."""
    what = 'a number' + (f' {">" if lo_open else ">="} {lo:g}' if lo is not None and hi is None else '') + \
        (f' in [{lo:g}, {hi:g}]' if lo is not None and hi is not None else '')

    def parse(text):
        value = _number(float, text, what)
        if lo is not None and (value < lo or (lo_open and value == lo)) or \
                (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}')
        return value
    parse.__name__ = 'number'
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
batch_size = int_range(1, MAX_BATCH)
probability = float_range(0.0, 1.0)     # score thresholds
positive_float = float_range(0.0, lo_open=True)
non_negative_float = float_range(0.0)


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
        except OSError as exc:
            if exc.errno is None:
                raise
            # A file-system fault (full disk, read-only folder, a directory where a file goes):
            # atomic outputs already removed their temporaries; say it in one line.
            where = f': {exc.filename}' if exc.filename else ''
            print(f'error: {exc.strerror or exc}{where}', file=sys.stderr)
            return 2
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
    import tempfile

    from ..deploy.fileio import temp_prefix
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
