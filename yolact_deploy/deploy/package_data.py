"""Files the package needs at run time besides its code: the deployment presets (``export/*.json``)
and the sources of the plugins' CPU library (``CMakeLists.txt`` + ``plugins/``, built on first use
for ONNX Runtime's custom ops).

A checkout keeps them at the repository root (the source of truth); a wheel carries copies under
``yolact_deploy/deploy/data/`` (setup.py puts them there). The wheel's copy wins when both exist.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parent / 'data'
REPO_ROOT = Path(__file__).resolve().parents[2]


def presets_dir() -> Path:
    """The folder of deployment presets (``desktop_fp16.json``, ...)."""
    shipped = PACKAGE_DATA / 'presets'
    return shipped if shipped.is_dir() else REPO_ROOT / 'export'


def native_source_dir() -> Path:
    """The CMake project that builds ``libyolact_plugins_cpu.so`` (CMakeLists.txt + plugins/)."""
    shipped = PACKAGE_DATA / 'native'
    return shipped if (shipped / 'CMakeLists.txt').is_file() else REPO_ROOT


def is_checkout() -> bool:
    """True when the package runs from a source checkout (editable install or PYTHONPATH)."""
    return (REPO_ROOT / 'setup.py').is_file() and (REPO_ROOT / 'plugins').is_dir()
