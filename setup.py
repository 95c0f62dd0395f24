#!/usr/bin/env python
"""desra-basicsr: DeSRA artifact detection and fine-tuning as a BasicSR plugin."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
DEV_TOOLS = ('pytest', 'flake8', 'hypothesis', 'mkdocs')


def get_version() -> str:
    scope = {}
    with open(osp.join(HERE, 'desra_basicsr', 'version.py'), 'r') as f:
        exec(f.read(), scope)
    return scope['__version__']


def get_requirements() -> list:
    """Runtime requirements: the pins of requirements.txt (the one place versions are pinned), minus dev tools."""
    with open(osp.join(HERE, 'requirements.txt'), 'r') as f:
        lines = [line.split('#')[0].strip() for line in f]
    return [line for line in lines if line and not line.startswith(DEV_TOOLS)]


setup(
    name='desra-basicsr',
    version=get_version(),
    description='DeSRA (ICML 2023) for BasicSR: detect and delete the artifacts of GAN-based real-world SR models',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    keywords='computer vision, super resolution, gan, artifacts, basicsr',
    license='Apache License 2.0',
    packages=find_packages(exclude=('options', 'experiments', 'tests', 'benchmarks', 'scripts')),
    package_data={'desra_basicsr': ['detection/tables/*']},
    include_package_data=True,
    python_requires='>=3.9',
    install_requires=get_requirements(),
    entry_points={'console_scripts': ['desra = desra_basicsr.commands:main']},
    zip_safe=False,
)
