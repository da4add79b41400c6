"""Install basicattn: ``pip install -e .`` (add ``[test]`` for the test suite)."""

import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'basicattn', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)  # the file holds one assignment we wrote ourselves
    return scope['__version__']


setup(
    name='basicattn',
    version=read_version(),
    description='Attention-based image and video super-resolution toolbox on mmengine',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['basicattn', 'basicattn.*']),
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10.4,<0.11',
        'lmdb',
        'opencv-python-headless',
        'addict',
        'tensorboard',
        'einops',
        'PyYAML',
        'numpy',
        'tqdm',
        # weights-only files to share (.safetensors): a small wheel, no code runs on load
        'safetensors',
    ],
    extras_require={
        # scikit-image ships the photographs that the demo and tests use;
        # ruff is pinned so that `ruff format --check` means the same everywhere;
        # pytest-xdist runs the suite in two processes (tools/run_tests.sh)
        'test': ['pytest>=7', 'pytest-xdist>=3', 'scikit-image', 'scipy', 'ruff==0.17.6'],
        'demo': ['scikit-image'],
        'mmcv': ['mmcv>=2.0'],
        # Weights & Biases logging (`logger.wandb.project`), through mmengine's WandbVisBackend
        'wandb': ['wandb'],
        # tools/export.py: ONNX export, checked with onnxruntime (TorchScript exporter),
        # simplified by onnxslim; onnxruntime also does the fp16 conversion and runs the
        # files (tools/infer.py --backend onnxruntime)
        'export': ['onnx>=1.16', 'onnxruntime>=1.17', 'onnxslim>=0.1.90'],
        # tools/infer.py: H.264/H.265 video outputs with the input's audio (PyAV bundles
        # FFmpeg with libx264 and libx265; without it, OpenCV's mp4v writer and a warning)
        'video': ['av>=14'],
    },
    zip_safe=False,
)
