"""Every TensorRT Python attribute yolact_deploy uses exists in the releases it claims (10.3 and 11.x).

No TensorRT or GPU is needed: the registry in yolact_deploy/trt_compat.py is compared with the names
of the real bindings (tests/data/trt_api/*.txt, extracted from NVIDIA's 10.3.0 and 11.4.0 wheels by
tests/data/trt_api/extract_names.py), and an AST walk over our TensorRT modules checks that every
``trt.X.Y`` path, every attribute read on a TensorRT object and every ``cudart.X`` name is in the
registry. A misspelled or removed API fails here, before anyone has a GPU.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from yolact_deploy import trt_compat as compat

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / 'data' / 'trt_api'
RELEASES = {'10.3': 'trt_10.3.0.txt', '11.4': 'trt_11.4.0.106.txt'}
EXPECTED = {compat.ALL: {'10.3', '11.4'}, compat.V10: {'10.3'}, compat.AFTER_10_3: {'11.4'}}


def load_names(filename: str):
    names, version, classes = set(), None, set()
    for line in (DATA / filename).read_text().splitlines():
        if not line or line.startswith('#'):
            continue
        if line.startswith('version '):
            version = line.split()[1]
            continue
        names.add(line)
        if '.' in line:
            classes.add(line.split('.')[0])
    return version, names, classes


NAMES = {rel: load_names(f) for rel, f in RELEASES.items()}


def test_name_lists_are_the_releases_they_claim():
    assert NAMES['10.3'][0] == '10.3.0'
    assert NAMES['11.4'][0].startswith('11.4.')
    # Sanity of the extraction: known facts from the release notes.
    assert 'BuilderFlag.FP16' in NAMES['10.3'][1] and 'BuilderFlag.FP16' not in NAMES['11.4'][1]
    assert 'IInt8EntropyCalibrator2' in NAMES['10.3'][1]
    assert 'IInt8EntropyCalibrator2' not in NAMES['11.4'][1]
    assert 'IExecutionContext.execute_async_v3' in NAMES['10.3'][1] & NAMES['11.4'][1]


@pytest.mark.parametrize('path', sorted(compat.TRT_API))
def test_registry_entry_matches_real_bindings(path):
    availability = compat.TRT_API[path]
    assert availability in EXPECTED, f'{path}: unknown availability {availability!r}'
    cls = path.split('.')[0]
    for release, (_, names, classes) in NAMES.items():
        if '.' in path and cls not in classes and cls in names:
            pytest.fail(f'{path}: members of {cls} were not extracted; add {cls} to CLASSES in '
                        f'tests/data/trt_api/extract_names.py and re-run it')
        present = path in names
        should = release in EXPECTED[availability]
        assert present == should, (
            f'{path} is registered as {availability!r} but is '
            f'{"present in" if present else "absent from"} the TensorRT {release} bindings')


# ---------------------------------------------------------------------------------------------------
# Static check of the code

def _chain(node):
    """``a.b.c`` -> ['a', 'b', 'c'] (None when the root is not a plain name or self.<name>)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _object_class(name: str):
    return compat.OBJECT_NAMES.get(name.lstrip('_'))


def check_source(source: str, filename: str = '<src>', allow_version_specific: bool = False):
    """Problems in one module's use of TensorRT / cuda-python, as readable lines."""
    problems = []
    tree = ast.parse(source, filename)
    seen = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in compat.SUBCLASSES:
            cls = compat.SUBCLASSES[node.name]
            defined = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            wanted = {p.split('.', 1)[1] for p in compat.TRT_API if p.startswith(cls + '.')}
            for name in sorted(wanted - defined):
                problems.append(f'{filename}:{node.lineno}: {node.name} does not define {name}() '
                                f'of {cls}')
        if not isinstance(node, ast.Attribute) or id(node) in seen:
            continue
        chain = _chain(node)
        # mark inner attributes of this chain as seen (we judge the whole chain once)
        inner = node.value
        while isinstance(inner, ast.Attribute):
            seen.add(id(inner))
            inner = inner.value
        if not chain:
            continue
        if chain[0] == 'self' and len(chain) >= 2:
            chain = chain[1:]
            if len(chain) == 1:
                continue
        root, rest = chain[0], chain[1:]
        path = None
        if root == 'trt' and rest:
            first = rest[0]
            if len(rest) >= 2 and not rest[1].startswith('__'):
                path = f'{first}.{rest[1]}'
            else:
                path = first
        elif root == 'cudart' and rest:
            if rest[0] not in compat.CUDART_API:
                problems.append(f'{filename}:{node.lineno}: cudart.{rest[0]} is not in '
                                f'trt_compat.CUDART_API')
            continue
        elif _object_class(root) and rest and not rest[0].startswith('__'):
            path = f'{_object_class(root)}.{rest[0]}'
        if path is None:
            continue
        if path not in compat.TRT_API:
            problems.append(f'{filename}:{node.lineno}: {".".join(chain)} -> {path} is not in '
                            f'trt_compat.TRT_API')
        elif compat.TRT_API[path] != compat.ALL and not allow_version_specific:
            problems.append(f'{filename}:{node.lineno}: {path} exists only in '
                            f'{compat.TRT_API[path]}: use it through trt_compat')
    return problems


@pytest.mark.parametrize('module', compat.TRT_MODULES)
def test_code_uses_only_registered_tensorrt_api(module):
    path = ROOT / module
    assert path.is_file(), f'{module} listed in trt_compat.TRT_MODULES but missing'
    problems = check_source(path.read_text(), module,
                            allow_version_specific=module.endswith('trt_compat.py'))
    assert not problems, '\n'.join(problems)


def test_static_check_catches_misspelled_and_removed_api():
    src = '''
import tensorrt as trt
def f(logger, x):
    builder = trt.Builder(logger)
    network = builder.create_netwrok(0)           # misspelled
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)         # 10.x only, outside trt_compat
    config.set_flag(trt.BuilderFlag.FP61)         # does not exist
    self_engine = None
    context = x.create_execution_context()
    context.execute_async_v2(0)                   # not what we registered
    cudart.cudaMallocManaged(4)                   # not registered
class _Monitor(trt.IProgressMonitor):
    def phase_start(self, a, b, c): pass
    def step_completed(self, a, b): return True   # misspelled override
    def phase_finish(self, a): pass
'''
    problems = '\n'.join(check_source(src))
    for needle in ('Builder.create_netwrok', 'BuilderFlag.FP16 exists only in 10.x',
                   'BuilderFlag.FP61', 'IExecutionContext.execute_async_v2',
                   'cudart.cudaMallocManaged', 'does not define step_complete()'):
        assert needle in problems, f'{needle!r} not reported in:\n{problems}'


def test_registry_paths_are_well_formed():
    for path in compat.TRT_API:
        assert path.count('.') <= 1, path
    for name, cls in compat.OBJECT_NAMES.items():
        assert any(p.startswith(cls + '.') for p in compat.TRT_API), (name, cls)


def test_cudart_names_exist_in_installed_cuda_python():
    cudart = pytest.importorskip('cuda.bindings.runtime',
                                 reason='cuda-python is not installed here')
    missing = [n for n in compat.CUDART_API if not hasattr(cudart, n)]
    assert not missing, f'not in cuda-python {getattr(cudart, "__version__", "")}: {missing}'
    assert hasattr(cudart.cudaMemcpyKind, 'cudaMemcpyHostToDevice')
    assert hasattr(cudart.cudaMemcpyKind, 'cudaMemcpyDeviceToHost')
    assert hasattr(cudart.cudaStreamCaptureMode, 'cudaStreamCaptureModeThreadLocal')


# ---------------------------------------------------------------------------------------------------
# Version logic (pure)

def test_version_parsing_and_support():
    assert compat.parse_version('10.3.0.26') == (10, 3, 0)
    assert compat.parse_version('11.4.0.106') == (11, 4, 0)
    assert compat.parse_version('10') == (10, 0, 0)
    assert compat.parse_version('garbage') == (0, 0, 0)
    compat.check_supported((10, 3, 0))
    compat.check_supported((11, 4, 0))
    with pytest.raises(compat.TensorRTUnavailable, match='too old'):
        compat.check_supported((8, 6, 1))
    with pytest.raises(compat.TensorRTUnavailable, match='too old'):
        compat.check_supported((10, 2, 0))
    assert not compat.strongly_typed_only((10, 16, 0)) and compat.strongly_typed_only((11, 0, 0))
    assert compat.has_calibrators((10, 3, 0)) and not compat.has_calibrators((11, 4, 0))


class _Enum:
    def __init__(self, **members):
        self.__dict__.update(members)


class _FakeTrt:
    """Just enough of the module for the pure helpers (enum values as in 10.3 / 11.4)."""

    def __init__(self, version):
        self.__version__ = version
        self.NetworkDefinitionCreationFlag = _Enum(STRONGLY_TYPED=1 if version < '11' else 0)
        self.BuilderFlag = _Enum(FP16='FP16', INT8='INT8') if version < '11' else _Enum()


class _FakeConfig:
    def __init__(self):
        self.flags = []

    def set_flag(self, flag):
        self.flags.append(flag)


def test_network_flags_per_major():
    assert compat.network_flags(_FakeTrt('10.3.0'), strongly_typed=True) == 2
    assert compat.network_flags(_FakeTrt('10.3.0'), strongly_typed=False) == 0
    assert compat.network_flags(_FakeTrt('11.4.0'), strongly_typed=True) == 0
    with pytest.raises(compat.TensorRTError, match='no weakly typed'):
        compat.network_flags(_FakeTrt('11.4.0'), strongly_typed=False)


def test_weak_precision_flags_only_on_10x():
    cfg = _FakeConfig()
    compat.set_weak_precision_flags(_FakeTrt('10.3.0'), cfg, fp16=True, int8=True)
    assert cfg.flags == ['FP16', 'INT8']
    with pytest.raises(compat.TensorRTError, match='removed BuilderFlag.FP16'):
        compat.set_weak_precision_flags(_FakeTrt('11.4.0'), _FakeConfig(), fp16=True)
    with pytest.raises(compat.TensorRTError, match='no INT8 calibrators'):
        compat.set_int8_calibrator(_FakeTrt('11.4.0'), _FakeConfig(), object(), object())


def test_resolve_explains_missing_attribute():
    with pytest.raises(compat.TensorRTError, match=r'TensorRT 11.4.0 has no BuilderFlag.FP16'):
        compat.resolve(_FakeTrt('11.4.0'), 'BuilderFlag.FP16')
    assert compat.resolve(_FakeTrt('10.3.0'), 'BuilderFlag.FP16') == 'FP16'
    with pytest.raises(KeyError):
        compat.resolve(_FakeTrt('10.3.0'), 'BuilderFlag.NOT_REGISTERED')


def test_import_tensorrt_one_line_error_here(monkeypatch):
    monkeypatch.setattr(compat, '_TRT', None)
    monkeypatch.setenv('YOLACT_DISABLE_TENSORRT', '1')
    with pytest.raises(compat.TensorRTUnavailable) as info:
        compat.import_tensorrt()
    assert '\n' not in str(info.value)


def test_cuda_errors_are_one_line_without_gpu():
    pytest.importorskip('cuda.bindings.runtime', reason='cuda-python is not installed here')
    try:
        info = compat.gpu_info(0)
    except compat.CudaError as exc:
        assert '\n' not in str(exc)
        assert 'cudaGetDeviceCount' in str(exc) or 'no CUDA device' in str(exc)
    else:   # a machine with a GPU
        assert info['compute_capability'].count('.') == 1


def test_native_handle_of_a_stream_object():
    runtime = pytest.importorskip('cuda.bindings.runtime', reason='cuda-python is not installed here')
    assert compat.native_handle(runtime.cudaStream_t(0)) == 0
