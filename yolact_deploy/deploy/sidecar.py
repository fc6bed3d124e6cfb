"""The engine sidecar: the JSON that travels with every TensorRT engine (``model.plan.json``).

One schema (:data:`SIDECAR_SCHEMA`), written by ``yolact-export --to trt`` and read by every runtime:
the model metadata of the ONNX file it was built from, the TensorRT version, GPU, profiles and plugin
library it was built with. :func:`check_compatibility` decides, without TensorRT or a GPU, whether an
engine can run here.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
from typing import Dict, List, Optional, Tuple

from .. import __version__
from ..errors import YolactError
from . import trt_compat as compat
from .contract import INPUT_NAME
from .fileio import atomic_output

SIDECAR_SUFFIX = '.json'            # model.plan -> model.plan.json
SIDECAR_SCHEMA = 1
SIDECAR_KIND = 'yolact_deploy.tensorrt_engine'
_ELF_MACHINES = {3: 'x86', 62: 'x86_64', 40: 'arm', 183: 'aarch64', 20: 'ppc', 21: 'ppc64'}
_MACHINE_ALIASES = {'amd64': 'x86_64', 'arm64': 'aarch64'}


class EngineError(YolactError):
    """An engine that cannot run here: wrong TensorRT, wrong GPU, wrong plugins, bad sidecar."""


# ---------------------------------------------------------------------------------------------------
# Reading, writing and compatibility checks (pure functions: no TensorRT, no GPU)

def sidecar_path(engine_path: str) -> str:
    return str(engine_path) + SIDECAR_SUFFIX


def read_sidecar(engine_path: str, sidecar: Optional[str] = None) -> dict:
    path = sidecar or sidecar_path(engine_path)
    if not os.path.isfile(path):
        raise EngineError(f'{os.path.basename(engine_path)} has no sidecar ({path} not found): the '
                          f'engine must come with the JSON that yolact-export --to trt writes '
                          f'next to it (or pass sidecar=...)')
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineError(f'cannot read engine sidecar {path}: {exc}') from None
    if not isinstance(data, dict) or data.get('kind') != SIDECAR_KIND:
        raise EngineError(f'{path} is not a yolact-deploy engine sidecar')
    if int(data.get('schema', 0)) > SIDECAR_SCHEMA:
        raise EngineError(f'{path} uses sidecar schema {data.get("schema")}; this yolact-deploy reads '
                          f'up to {SIDECAR_SCHEMA}: upgrade yolact-deploy')
    from .sidecar_schema import SidecarError, validate_sidecar
    try:
        validate_sidecar(data)     # the schema the C++ runtime checks too
    except SidecarError as exc:
        raise EngineError(f'{path}: {exc}') from None
    return data


def elf_machine(path: str) -> Optional[str]:
    """The CPU architecture an ELF shared object was built for ('x86_64', 'aarch64'), or None."""
    try:
        with open(path, 'rb') as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b'\x7fELF':
        return None
    order = 'little' if head[5] == 1 else 'big'
    return _ELF_MACHINES.get(int.from_bytes(head[18:20], order), f'elf-{head[18]}')


def host_machine() -> str:
    m = platform.machine().lower()
    return _MACHINE_ALIASES.get(m, m)


def check_compatibility(sidecar: dict, *, installed_trt: str, gpu: Optional[dict],
                        engine_sha256: Optional[str] = None, plugin_path: Optional[str] = None,
                        plugin_sha256: Optional[str] = None, machine: Optional[str] = None,
                        strict_plugin: bool = True) -> List[str]:
    """Raises :class:`EngineError` (one line) when the engine cannot run here; returns warnings.

    ``gpu``: ``{'name', 'compute_capability'}`` of the device that will run it.
    ``plugin_path``: the plugin library that would be loaded (None: none found).
    """
    warnings: List[str] = []
    engine = sidecar.get('engine', 'the engine')
    if engine_sha256 and sidecar.get('engine_sha256') and engine_sha256 != sidecar['engine_sha256']:
        raise EngineError(f'the sidecar does not belong to this engine file ({engine}: sha256 differs '
                          f'from the one recorded at build time); rebuild or use the matching pair')
    built = compat.parse_version(sidecar['tensorrt_version'])
    here = compat.parse_version(installed_trt)
    if built != here:
        raise EngineError(f'{engine} was built with TensorRT {sidecar["tensorrt_version"]} but '
                          f'TensorRT {installed_trt} is installed: engines only run on the TensorRT '
                          f'release that built them; rebuild it here (yolact-export --to trt)')
    want = sidecar.get('gpu') or {}
    if gpu is not None and want.get('compute_capability'):
        if str(gpu.get('compute_capability')) != str(want['compute_capability']):
            raise EngineError(
                f'{engine} was built for compute capability {want["compute_capability"]} '
                f'({want.get("name", "?")}) but this GPU is {gpu.get("name", "?")} (compute '
                f'{gpu.get("compute_capability")}); build the engine on this GPU')
        if want.get('name') and gpu.get('name') and want['name'] != gpu['name']:
            warnings.append(f'{engine} was built on {want["name"]}, running on {gpu["name"]} (same '
                            f'compute capability; TensorRT advises building on the target GPU)')
    plugin = sidecar.get('plugin_library')
    if plugin:
        ops = ', '.join(plugin.get('ops', [])) or 'plugin layers'
        if not plugin_path or not os.path.isfile(plugin_path):
            where = f' ({plugin_path} not found)' if plugin_path else ''
            raise EngineError(f'{engine} needs the plugin library {plugin.get("file", "libyolact_plugins.so")} '
                              f'({ops}){where}: build it (scripts/build_plugins.sh) and set '
                              f'YOLACT_PLUGINS_LIB or pass plugin_library / --plugin-library')
        arch = elf_machine(plugin_path)
        machine = machine or host_machine()
        if arch is None:
            raise EngineError(f'plugin library {plugin_path} is not an ELF shared library')
        if arch != machine:
            raise EngineError(f'plugin library {plugin_path} is built for {arch}, this machine is '
                              f'{machine}: build the plugins on the target (see docs/tensorrt.md)')
        if plugin_sha256 and plugin.get('sha256') and plugin_sha256 != plugin['sha256']:
            text = (f'plugin library {plugin_path} is not the one {engine} was built with '
                    f'(sha256 differs)')
            if strict_plugin:
                raise EngineError(text + '; rebuild the engine against it, or point '
                                         'YOLACT_PLUGINS_LIB to the original library')
            warnings.append(text)
    return warnings


def profile_of(sidecar: dict) -> Tuple[List[int], List[int], List[int]]:
    prof = next((p for p in sidecar['profiles'] if p.get('input') == INPUT_NAME), None)
    if prof is None:
        raise EngineError(f'sidecar has no profile for input {INPUT_NAME!r}')
    return list(prof['min']), list(prof['opt']), list(prof['max'])


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def make_sidecar(*, engine_path: str, engine_sha256: str, trt_version: str, gpu: dict,
                 plan, options, profile: Dict[str, List[int]], info, plugin: Optional[dict],
                 build_seconds: float, io_tensors: Optional[List[dict]] = None) -> dict:
    """``plan``, ``options``, ``info``: the builder's BuildPlan, BuildOptions and OnnxInfo."""
    meta = dict(info.metadata)
    meta['precision'] = plan.precision_label.split('-')[0]
    return {
        'schema': SIDECAR_SCHEMA,
        'kind': SIDECAR_KIND,
        'engine': os.path.basename(engine_path),
        'engine_sha256': engine_sha256,
        'tensorrt_version': trt_version,
        'gpu': gpu,
        'precision': plan.precision_label,
        'strongly_typed': plan.strongly_typed,
        'builder_flags': plan.flags,
        'profiles': [{'input': INPUT_NAME, **profile}],
        'plugin_library': plugin,
        'builder': {'workspace_mib': options.workspace_mib,
                    'optimization_level': options.optimization_level,
                    'timing_cache': options.timing_cache, 'preset': options.preset,
                    'detailed_profile': options.detailed_profile},
        'onnx': {'file': os.path.basename(info.path), 'sha256': info.sha256,
                 'plugin_ops': info.plugin_ops, 'qdq': info.has_qdq},
        'io_tensors': io_tensors or [],
        'model': meta,
        'build_seconds': round(build_seconds, 1),
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'yolact_deploy': __version__,
        'notes': plan.notes,
    }


def write_sidecar(path: str, data: dict) -> None:
    with atomic_output(path, suffix='.json') as tmp:
        with open(tmp, 'w') as f:
            json.dump(data, f, indent=1)
            f.write('\n')
