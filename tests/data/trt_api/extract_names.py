"""Extracts the Python attribute names of the real TensorRT bindings into a small text file.

The names lists next to this script are *facts about NVIDIA's bindings* (which attributes exist in
which version), not code. They were produced, on a machine without a GPU or the TensorRT libraries,
like this:

    pip download --no-deps --only-binary=:all: -d /tmp/w "tensorrt-cu12-bindings==11.4.0.106"
    (cd /tmp/w && unzip -q tensorrt_cu12_bindings-*.whl)
    python tests/data/trt_api/extract_names.py /tmp/w 11 > tests/data/trt_api/trt_11.4.0.106.txt

``tensorrt.so`` links ``libnvinfer.so.N``, ``libnvonnxparser.so.N`` and ``libnvinfer_plugin.so.N``
but only needs nine ``extern "C"`` entry points from them at import time. This script compiles
stand-ins for those (each returns 0 and says so if ever called; none is called by an import or by
``dir()``), imports the bindings against them and lists, with ``dir()``, the module-level names and
the members of the classes in :data:`CLASSES`. Nothing is executed on a GPU; nothing of NVIDIA's is
copied into this repository except these names.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile

# The classes whose members are listed (every class yolact_deploy touches, and their neighbours).
CLASSES = (
    'Builder', 'IBuilderConfig', 'INetworkDefinition', 'ITensor', 'ILayer', 'OnnxParser', 'Runtime',
    'ICudaEngine', 'IExecutionContext', 'IOptimizationProfile', 'IPluginRegistry',
    'IPluginCreatorInterface', 'EngineInspector', 'ITimingCache', 'IHostMemory', 'IProgressMonitor',
    'IInt8Calibrator', 'IInt8EntropyCalibrator2', 'IInt8MinMaxCalibrator', 'ILogger', 'Logger',
    'IOutputAllocator', 'IGpuAllocator', 'BuilderFlag', 'NetworkDefinitionCreationFlag',
    'MemoryPoolType', 'ProfilingVerbosity', 'LayerInformationFormat', 'TensorIOMode', 'DataType',
    'HardwareCompatibilityLevel', 'CalibrationAlgoType', 'OnnxParserFlag',
    'ExecutionContextAllocationStrategy', 'TacticSource', 'PreviewFeature', 'TensorLocation',
    'TensorFormat', 'TilingOptimizationLevel', 'Dims', 'ErrorCode', 'EngineCapability',
    'DeviceType', 'QuantizationFlag', 'SerializationFlag', 'IRuntimeConfig',
)

STUB_C = r'''
#include <stdio.h>
#define STUB(name) void* name() { fprintf(stderr, "stub called: " #name "\n"); return 0; }
STUB(createNvOnnxParserRefitter_INTERNAL) STUB(createInferRefitter_INTERNAL)
STUB(createInferRuntime_INTERNAL) STUB(createNvOnnxParser_INTERNAL) STUB(getBuilderPluginRegistry)
STUB(createInferBuilder_INTERNAL) STUB(getPluginRegistry) STUB(initLibNvInferPlugins)
int getNvOnnxParserVersion() { return 0; }
'''

DUMP = r'''
import sys
sys.path.insert(0, sys.argv[1])
import tensorrt_bindings as trt
names = set()
for n in dir(trt):
    if not n.startswith('_'):
        names.add(n)
names.add('__version__')
for c in sys.argv[2].split(','):
    obj = getattr(trt, c, None)
    if obj is None:
        continue
    for m in dir(obj):
        if not m.startswith('_'):
            names.add(f'{c}.{m}')
print(trt.__version__)
print('\n'.join(sorted(names)))
'''


def main() -> int:
    unpacked, major = sys.argv[1], sys.argv[2]
    so = os.path.join(unpacked, 'tensorrt_bindings', 'tensorrt.so')
    wheel = [f for f in os.listdir(unpacked) if f.endswith('.whl')]
    digest = hashlib.sha256(open(os.path.join(unpacked, wheel[0]), 'rb').read()).hexdigest() \
        if wheel else 'unknown'
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'stub.c')
        with open(src, 'w') as f:
            f.write(STUB_C)
        for lib in ('nvinfer', 'nvonnxparser', 'nvinfer_plugin'):
            soname = f'lib{lib}.so.{major}'
            subprocess.run(['gcc', '-shared', '-fPIC', '-o', os.path.join(tmp, soname),
                            f'-Wl,-soname,{soname}', src], check=True)
        env = dict(os.environ, LD_LIBRARY_PATH=tmp)
        out = subprocess.run([sys.executable, '-c', DUMP, unpacked, ','.join(CLASSES)], env=env,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    version, names = out[0], out[1:]
    print(f'# Python attribute names of the TensorRT {version} bindings (tensorrt.so),')
    print(f'# from {wheel[0] if wheel else so} (sha256 {digest}),')
    print('# listed with dir() by tests/data/trt_api/extract_names.py: module-level names and the members')
    print('# of the classes in its CLASSES tuple. Facts about the bindings, not code.')
    print(f'version {version}')
    print('\n'.join(names))
    return 0


if __name__ == '__main__':
    sys.exit(main())
