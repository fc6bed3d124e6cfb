"""Shared fixtures of the plugin tests: the CPU library is located, or built once with CMake."""
import os

import pytest

from yolact_deploy import plugins


@pytest.fixture(scope='session')
def cpu_lib():
    """Path of libyolact_plugins_cpu.so; builds it into build/ when absent (YOLACT_PLUGINS_NO_BUILD=1
    turns that off, e.g. for the AddressSanitizer run, which must use the library it was given)."""
    path = plugins.find_library(plugins.CPU_LIBRARY)
    if path is None:
        if os.environ.get('YOLACT_PLUGINS_NO_BUILD') == '1' or os.environ.get('YOLACT_PLUGINS_CPU_LIB'):
            pytest.fail(f'{plugins.CPU_LIBRARY} not found and building is disabled')
        path = plugins.build_cpu_library()
    plugins.load_cpu_library(path)
    os.environ['YOLACT_PLUGINS_CPU_LIB'] = str(path)   # later lookups resolve to this very file
    return path
