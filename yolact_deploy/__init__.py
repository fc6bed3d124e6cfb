"""yolact-deploy: YOLACT / YOLACT++ from PyTorch to ONNX and TensorRT engines."""
import importlib
import importlib.abc
import importlib.util
import sys

__version__ = '0.1.0'

# Modules that moved, by their old import path. The old path gives the new module itself (one object,
# so monkeypatching either name patches both) and is loaded only when imported. Aliases instead of
# stub files: git then records the moves as renames.
MOVED_MODULES = {
    'yolact_deploy.postprocess': 'yolact_deploy.deploy.postprocess',
    'yolact_deploy.visualize': 'yolact_deploy.deploy.draw',
    'yolact_deploy.fileio': 'yolact_deploy.deploy.fileio',
    'yolact_deploy.plugins': 'yolact_deploy.deploy.plugin_library',
    'yolact_deploy.trt_compat': 'yolact_deploy.deploy.trt_compat',
    'yolact_deploy.export.metadata': 'yolact_deploy.deploy.metadata',
    'yolact_deploy.export.plugins': 'yolact_deploy.export.plugin_ops',
    'yolact_deploy.runtime.torch_backend': 'yolact_deploy.torch_runtime',
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in MOVED_MODULES:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):
        pass


# First in line: a path finder (an editable install's, for one) would otherwise find a stale copy.
if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())
