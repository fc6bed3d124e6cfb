"""Shared command-line plumbing: one-line errors with exit code 2, atomic file output."""
from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import sys

from ..errors import YolactError
from ..deploy.fileio import (Terminated, atomic_output, check_creatable_dir,  # noqa: F401
                             check_output_file, check_writable_dir, install_signal_cleanup)


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


def require_torch(what: str) -> None:
    """One line (exit code 2) when PyTorch is missing: the runtime install has none."""
    if not have_torch():
        raise YolactError(f"{what} needs PyTorch, which this install does not have (the runtime "
                          f"install runs .onnx and .plan models only): pip install 'yolact-deploy[torch]'")


def have_torch() -> bool:
    try:
        return importlib.util.find_spec('torch') is not None
    except (ImportError, ValueError):   # an import hook that refuses it counts as absent
        return False


def open_model(weights, backend=None, **options):
    """``load_predictor`` for the tools. A checkpoint (and no ``--weights``: the bundled one) needs
    PyTorch, said in one line when it is missing."""
    from ..runtime import backend_for_path, load_predictor
    if weights is None or (backend or backend_for_path(weights)) == 'torch':
        require_torch(f'running the checkpoint {weights or "(bundled model)"}')
    return load_predictor(weights, backend, **options)


def run_cli(main) -> None:
    sys.exit(main())
