"""Offline set-up: ``scripts/wheelhouse.py`` (which wheels a machine needs) and ``DESRA_WHEELHOUSE`` in setup.sh.

The closure is computed on this interpreter's real installed stack (what ``make setup`` resolved); the offline
set-up runs the real ``scripts/setup.sh`` in a copy of the repository's set-up files, with this venv's Python as
the machine's own Python (as on a GPU machine whose ``python3`` is a venv holding torch) and no package index.
"""
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

import pytest
import torch

from helpers.paths import REPO_ROOT

SPEC = importlib.util.spec_from_file_location('wheelhouse', osp.join(REPO_ROOT, 'scripts', 'wheelhouse.py'))
wheelhouse = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(wheelhouse)

ROOTS = [requirement.name for requirement in wheelhouse.read_requirements(osp.join(REPO_ROOT, 'requirements.txt'))]


def test_read_have_takes_pip_freeze_pip_list_and_bare_names():
    lines = ['Package    Version', '---------- -------', 'opencv-python-headless 4.14.0.94', 'PyYAML==6.0.3',
             'mmcv_lite @ file:///wheels/mmcv_lite-2.1.0-py2.py3-none-any.whl', '-e /src/project', '# comment', '',
             'Scikit.Image']
    assert wheelhouse.read_have(lines) == {'opencv-python-headless', 'pyyaml', 'mmcv-lite', 'scikit-image'}


def test_closure_leaves_out_torch_what_the_target_has_and_what_only_they_need():
    everything = wheelhouse.closure(ROOTS, set(), '3.12')
    assert {'basicsr', 'mmsegmentation', 'mmengine', 'mmcv-lite', 'numpy', 'addict', 'yapf'} <= set(everything)
    assert not {'torch', 'torchvision', 'triton'} & set(everything)  # torch's own needs stay with the target's torch
    assert everything['basicsr'] == metadata.version('basicsr')  # the pinned, resolved versions
    assert everything['numpy'] == metadata.version('numpy')

    gpu_image = {'numpy', 'scipy', 'scikit-image', 'opencv-python-headless', 'tensorboard', 'pytest', 'pyyaml',
                 'tqdm', 'pillow', 'matplotlib', 'regex', 'requests', 'rich', 'packaging'}
    needed = wheelhouse.closure(ROOTS, gpu_image, '3.12')
    assert {'basicsr', 'mmsegmentation', 'mmengine', 'mmcv-lite', 'addict', 'yapf', 'lmdb'} <= set(needed)
    assert not gpu_image & set(needed)
    # an equivalent distribution counts: OpenCV headless does opencv-python's job, tensorboard tb-nightly's
    assert not {'opencv-python', 'tb-nightly', 'tensorboard'} & set(needed)
    assert {'tb-nightly', 'tensorboard'} & set(everything)  # whichever of the two this interpreter has
    # requirements of a distribution the target has are not followed (matplotlib's needs are the target's)
    assert 'kiwisolver' in everything and 'kiwisolver' not in needed


def test_closure_names_a_distribution_missing_here(monkeypatch):
    monkeypatch.setattr(wheelhouse, 'ALWAYS_HAD', ())
    with pytest.raises(RuntimeError, match='not-a-distribution is needed but not installed'):
        wheelhouse.closure(['not-a-distribution'], set(), '3.12')


def _tiny_wheel(folder: str) -> str:
    """A real, minimal pure-Python wheel (``desra_offline_probe`` 1.0) as pip installs it."""
    name = 'desra_offline_probe-1.0-py3-none-any.whl'
    info = 'desra_offline_probe-1.0.dist-info'
    files = {'desra_offline_probe.py': 'PROBE = 42\n',
             f'{info}/METADATA': 'Metadata-Version: 2.1\nName: desra-offline-probe\nVersion: 1.0\n',
             f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}
    files[f'{info}/RECORD'] = ''.join(f'{path},,\n' for path in files) + f'{info}/RECORD,,\n'
    path = osp.join(folder, name)
    with zipfile.ZipFile(path, 'w') as whl:
        for member, text in files.items():
            whl.writestr(member, text)
    return path


def _setup_tree(root: str, extra_requirement: str = '') -> str:
    """A copy of what setup.sh reads (its scripts, requirements, setup.py, README and the package)."""
    repo = osp.join(root, 'repo')
    os.makedirs(repo)
    for name in ('setup.py', 'README.md'):
        shutil.copy(osp.join(REPO_ROOT, name), repo)
    for name in ('scripts', 'desra_basicsr'):
        shutil.copytree(osp.join(REPO_ROOT, name), osp.join(repo, name),
                        ignore=shutil.ignore_patterns('__pycache__'))
    with open(osp.join(REPO_ROOT, 'requirements.txt')) as f:
        text = f.read()
    with open(osp.join(repo, 'requirements.txt'), 'w') as f:
        f.write(text + extra_requirement)
    return repo


def _offline_setup(repo: str, wheels: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, DESRA_WHEELHOUSE=wheels, PIP_NO_INDEX='1')
    return subprocess.run(['bash', osp.join(repo, 'scripts', 'setup.sh')], env=env, capture_output=True, text=True,
                          timeout=600)


def test_offline_setup_uses_the_machines_python_and_the_wheels(tmp_path):
    repo = _setup_tree(str(tmp_path))
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    _tiny_wheel(str(wheels))
    proc = _offline_setup(repo, str(wheels))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'setup: done (desra_basicsr' in proc.stdout
    venv_python = osp.join(repo, '.venv', 'bin', 'python')
    probe = ('import sys, json, desra_basicsr, torch, basicsr, desra_offline_probe; from importlib import metadata; '
             'url = json.loads(metadata.distribution("desra-basicsr").read_text("direct_url.json"))["url"]; '
             'print(sys.prefix, desra_offline_probe.PROBE, torch.__file__, url)')
    # from a neutral folder: a checkout's desra_basicsr.egg-info in the caller's working directory would come first
    out = subprocess.run([venv_python, '-c', probe], capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    prefix, value, torch_file, url = out.stdout.split()
    assert prefix == osp.join(repo, '.venv') and value == '42'
    assert torch_file == torch.__file__  # the machine's own torch (the creating Python's), not a new install
    assert url == f'file://{repo}'  # this checkout, installed editable into the new venv
    again = _offline_setup(repo, str(wheels))
    assert again.returncode == 0 and 'is up to date' in again.stdout


def test_offline_setup_stops_on_an_empty_wheelhouse_or_a_missing_requirement(tmp_path):
    repo = _setup_tree(str(tmp_path), extra_requirement='desra-not-installed-anywhere==1.0\n')
    empty = tmp_path / 'empty'
    empty.mkdir()
    proc = _offline_setup(repo, str(empty))
    assert proc.returncode == 1 and f'DESRA_WHEELHOUSE={empty} holds no wheels' in proc.stderr
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    _tiny_wheel(str(wheels))
    proc = _offline_setup(repo, str(wheels))
    assert proc.returncode == 1
    assert 'desra-not-installed-anywhere: neither installed here nor in the wheelhouse' in proc.stderr
    assert 'make wheelhouse' in proc.stderr
    assert not osp.exists(osp.join(repo, '.venv', '.desra-setup-stamp'))  # not taken for a finished set-up
