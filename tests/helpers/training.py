"""Runs of ``desra_basicsr/train.py`` in a subprocess, and what they leave behind."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import pytest
import yaml

from helpers.paths import REPO_ROOT, TRAIN_SCRIPT


def train_env() -> Dict[str, str]:
    """Environment for training subprocesses: CPU only, few threads, the repository importable."""
    env = dict(os.environ)
    env.update(CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')])))
    return env


def run_train(opt: dict, cwd: str, extra_args: Sequence[str] = (), nproc: int = 1, timeout: int = 600,
              check: bool = True, script: str = TRAIN_SCRIPT, env: Optional[Dict[str, str]] = None,
              torchrun: Optional[bool] = None) -> subprocess.CompletedProcess:
    """Write ``opt`` to ``cwd/options.yml`` and run ``desra_basicsr/train.py`` on it in a subprocess.

    Args:
        opt (dict): BasicSR options.
        cwd (str): Working directory (``experiments/`` is created there).
        extra_args (Sequence[str]): More command-line arguments, e.g. ``['--auto_resume']``.
        nproc (int): Processes; > 1 runs under ``python -m torch.distributed.run --standalone`` with
            ``--launcher pytorch``.
        timeout (int): Seconds before the run is killed.
        check (bool): Fail the test (showing the output) when the run exits non-zero.
        script (str): Training script; ``desra_basicsr/train.py`` unless a test wraps it.
        env (dict | None): Environment of the run; :func:`train_env` (CPU only) when None.
        torchrun (bool | None): Run under torchrun with ``--launcher pytorch`` (default: ``nproc > 1``).

    Returns:
        subprocess.CompletedProcess: The finished run, stdout and stderr merged into ``stdout``.
    """
    opt_path = osp.join(cwd, 'options.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    torchrun = nproc > 1 if torchrun is None else torchrun
    cmd: List[str] = [sys.executable]
    if torchrun:
        cmd += ['-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}']
    cmd += [script, '-opt', opt_path] + list(extra_args)
    if torchrun:
        cmd += ['--launcher', 'pytorch']
    proc = subprocess.run(cmd, cwd=cwd, env=env if env is not None else train_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f'training exited with {proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


def experiment_dir(cwd: str, opt: dict) -> str:
    """The BasicSR experiment folder of a run started in ``cwd``."""
    return osp.join(cwd, 'experiments', opt['name'])


def latest_state_iter(cwd: str, opt: dict) -> Optional[int]:
    """Iteration of the newest training state saved by a run, or None."""
    folder = osp.join(experiment_dir(cwd, opt), 'training_states')
    if not osp.isdir(folder):
        return None
    iters = [int(f.split('.')[0]) for f in os.listdir(folder) if f.endswith('.state')]
    return max(iters) if iters else None


def validation_values(log: str, metric: str):
    return [float(v) for v in re.findall(rf'# {metric}: ([-0-9.naninf]+)', log)]


def read_logs(cwd: str, opt: dict) -> str:
    return ''.join(open(f).read() for f in sorted(glob.glob(osp.join(experiment_dir(cwd, opt), 'train_*.log'))))


def gpu_env() -> dict:
    """Environment for training subprocesses on the GPU(s) this process sees."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')])))
    return env
