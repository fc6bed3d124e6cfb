"""Small models exported to ONNX once per test session, shared by the ONNX test modules.

Exports take ~1 minute each on the 2-core CI machine, so each (model, options) pair is exported at most
once per session and cached here (module-level, so all test modules share it).
"""
from __future__ import annotations

import os
import tempfile

from yolact_deploy.testing import make_test_model as make_model

from yolact_deploy.checkpoint import save_checkpoint
from yolact_deploy.export import ExportOptions, export_onnx

_DIR = None
_CACHE = {}


def _workdir() -> str:
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix='yolact_onnx_tests_')
    return _DIR


def checkpoint(preset: str = 'yolact_resnet50', max_size: int = 256) -> str:
    key = ('ckpt', preset, max_size)
    if key not in _CACHE:
        path = os.path.join(_workdir(), f'{preset}_{max_size}.pth')
        save_checkpoint(path, make_model(preset, max_size))
        _CACHE[key] = path
    return _CACHE[key]


def exported(preset: str = 'yolact_resnet50', max_size: int = 256, **options) -> tuple:
    """(onnx path, checkpoint path) of ``preset`` exported with ``ExportOptions(**options)``."""
    key = ('onnx', preset, max_size, tuple(sorted(options.items())))
    if key not in _CACHE:
        from yolact_deploy.checkpoint import load_model
        ckpt = checkpoint(preset, max_size)
        tag = '_'.join(f'{k}{v}' for k, v in sorted(options.items())) or 'default'
        path = os.path.join(_workdir(), f'{preset}_{max_size}_{tag}.onnx')
        export_onnx(load_model(ckpt), path, ExportOptions(**options), quiet=True)
        _CACHE[key] = path
    return _CACHE[key], checkpoint(preset, max_size)
