"""The house's layers: the deployment layer, the runtimes and the service import no PyTorch, folders
import each other one way only, and the tools that need PyTorch say so in one line.

A deployment box (Jetson, a service container) installs ``pip install yolact-deploy`` without torch;
these tests run the deployment code in a subprocess where importing torch fails.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_models import exported

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'yolact_deploy'
TORCH_FREE = ('deploy', 'runtime', 'serve')
# torch-free modules of other folders: the TensorRT build from an .onnx runs on the target (Jetson),
# and the deployment tools run .onnx / .plan models.
TORCH_FREE_MODULES = ('yolact_deploy.export.tensorrt_build', 'yolact_deploy.export.trt_config',
                      'yolact_deploy.export.trt_calibrator', 'yolact_deploy.export.trt_progress',
                      'yolact_deploy.export.onnx_options', 'yolact_deploy.export.triton',
                      'yolact_deploy.cli.infer', 'yolact_deploy.cli.serve', 'yolact_deploy.cli.bench',
                      'yolact_deploy.cli.export', 'yolact_deploy.config', 'yolact_deploy.assets',
                      'yolact_deploy.bench')
# Lower layers first; a folder may import only folders of its own layer or below.
LAYERS = (
    {'errors.py', 'config.py', 'assets/'},
    {'deploy/'},
    {'runtime/', 'serve/'},
    {'transforms.py', 'ops/'},
    {'model/'},
    {'checkpoint.py', 'testing.py', 'data/'},
    {'export/', 'train/', 'torch_runtime.py', 'evaluation/', 'validate.py', 'bench.py'},
    {'cli/'},
)

BLOCKER = '''
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision'):
            raise ImportError(f'No module named {name!r} (blocked: this box has no PyTorch)')
sys.meta_path.insert(0, _NoTorch())
'''


def _run_without_torch(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / 'tests')]))
    return subprocess.run([sys.executable, '-c', BLOCKER + code], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=timeout)


def _modules(folder: str) -> list:
    return sorted('yolact_deploy.' + '.'.join(p.relative_to(PACKAGE).with_suffix('').parts)
                  .removesuffix('.__init__') for p in (PACKAGE / folder).rglob('*.py'))


def test_the_blocker_blocks():
    """The check below can fail: under the blocker, a PyTorch module does not import."""
    proc = _run_without_torch('import yolact_deploy.transforms')
    assert proc.returncode != 0 and 'blocked: this box has no PyTorch' in proc.stderr


def test_deployment_modules_import_without_torch():
    modules = [m for folder in TORCH_FREE for m in _modules(folder)] + list(TORCH_FREE_MODULES)
    assert len(modules) > 20
    proc = _run_without_torch(f'''
import importlib, sys
bad = []
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError as exc:   # an optional backend's own library may be absent; torch may not
        if 'no PyTorch' in str(exc):
            bad.append(f'{{name}}: {{exc}}')
print('\\n'.join(bad))
print('TORCH_LOADED' if 'torch' in sys.modules else 'no torch')
''')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'no torch', proc.stdout


def _folder_graph() -> dict:
    """{unit: {units it imports}} where a unit is a top-level module or folder of the package."""
    def unit(module: str):
        parts = module.split('.')
        if len(parts) < 2 or parts[0] != 'yolact_deploy':
            return None
        return parts[1] + ('/' if (PACKAGE / parts[1]).is_dir() else '.py')
    graph: dict = {}
    for path in PACKAGE.rglob('*.py'):
        rel = path.relative_to(PACKAGE.parent).with_suffix('').parts
        module = '.'.join(rel)
        package = module.removesuffix('.__init__') if path.name == '__init__.py' else \
            module.rsplit('.', 1)[0]
        src = unit(module if path.name != '__init__.py' else package + '.x') or '__init__'
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split('.')[:len(package.split('.')) - node.level + 1] \
                    if node.level else []
                mod = '.'.join(base + ([node.module] if node.module else [])) if node.level \
                    else node.module
                targets = [mod] + [f'{mod}.{a.name}' for a in node.names]
            else:
                continue
            for t in targets:
                dst = unit(t or '')
                if dst and dst != src and (PACKAGE / dst.rstrip('/')).exists() or \
                        dst and (PACKAGE / dst).is_file():
                    graph.setdefault(src, set()).add(dst)
    return graph


def test_folders_import_downwards_only():
    """No import cycles between folders; arrows point to the same layer or down (the string table
    MOVED_MODULES in yolact_deploy/__init__.py names modules, it imports none)."""
    graph = _folder_graph()
    layer = {u: i for i, units in enumerate(LAYERS) for u in units}
    units = set(graph) | {d for ds in graph.values() for d in ds}
    assert units - {'__init__'} <= set(layer), f'place new folders in LAYERS: {units - set(layer)}'
    upward = [f'{a} -> {b}' for a, ds in graph.items() if a != '__init__' for b in ds
              if layer[b] > layer[a]]
    assert not upward, upward
    cycles = [f'{a} <-> {b}' for a, ds in graph.items() for b in ds if a in graph.get(b, ())]
    assert not cycles, cycles


@pytest.mark.parametrize('raw', [False, True])
def test_onnx_runs_without_torch(raw, samples, tmp_path):
    """yolact-infer on an end-to-end or a raw .onnx, with torch unimportable, gives the full
    install's detections (the same file, run here with PyTorch importable)."""
    from yolact_deploy.cli import infer
    path, _ = exported(raw=True) if raw else exported()
    ref = tmp_path / 'ref.json'
    assert infer.main([samples[0], '--weights', path, '--no-draw', '--save-json', str(ref)]) == 0
    out = tmp_path / 'out.json'
    proc = _run_without_torch(f'''
from yolact_deploy.cli import infer
import sys
rc = infer.main([{samples[0]!r}, '--weights', {path!r}, '--no-draw', '--save-json', {str(out)!r}])
sys.exit(rc if 'torch' not in sys.modules else 99)
''')
    assert proc.returncode == 0, proc.stderr
    got, want = json.loads(out.read_text()), json.loads(ref.read_text())
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        assert (a['category_id'], a.get('segmentation')) == (b['category_id'], b.get('segmentation'))
        np.testing.assert_allclose(a['score'], b['score'], rtol=1e-6)


def test_argparse_only_in_cli():
    users = [str(path.relative_to(ROOT)) for path in PACKAGE.rglob('*.py')
             if 'cli' not in path.relative_to(PACKAGE).parts[:1]
             and any(isinstance(node, (ast.Import, ast.ImportFrom)) and
                     'argparse' in ([a.name for a in node.names] if isinstance(node, ast.Import)
                                    else [node.module])
                     for node in ast.walk(ast.parse(path.read_text())))]
    assert not users, users


@pytest.mark.parametrize('argv,needs', [
    (['yolact_deploy.cli.export', '--weights', 'model.pth'], 'yolact-export --to onnx'),
    (['yolact_deploy.cli.infer', 'photo.jpg', '--weights', 'model.pth'], 'running the checkpoint'),
    (['yolact_deploy.cli.infer', 'photo.jpg'], 'running the checkpoint (bundled model)'),
    (['yolact_deploy.cli.train', '--images', 'x', '--annotations', 'y.json'], 'yolact-train'),
    (['yolact_deploy.cli.validate', 'model.onnx'], 'yolact-validate'),
    (['yolact_deploy.cli.bench', 'model.pth'], 'running the checkpoint'),
])
def test_tools_that_need_torch_say_so_in_one_line(argv, needs, samples, tmp_path):
    for name in ('model.pth', 'model.onnx'):
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / 'photo.jpg').write_bytes(Path(samples[0]).read_bytes())
    proc = _run_without_torch(f'''
import importlib, os, sys
os.chdir({str(tmp_path)!r})
sys.exit(importlib.import_module({argv[0]!r}).main({argv[1:]!r}))
''')
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and needs in lines[0], proc.stderr
    assert "pip install 'yolact-deploy[torch]'" in lines[0]
