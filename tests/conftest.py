"""Shared fixtures: small real-photo SR data and a runner for ``desra_basicsr/train.py`` in a subprocess.

Training runs in a subprocess with ``cwd`` set to a temporary folder, so ``experiments/`` (and BasicSR's
``--auto_resume`` look-up, relative to the working directory) stay out of the repository.
"""
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import pytest
import torch
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# tests/gpu/ needs CUDA (``make gpu-check`` runs it): not collected where there is none, so CPU runs show no skips.
collect_ignore = [] if torch.cuda.is_available() else ['gpu']
TRAIN_SCRIPT = osp.join(REPO_ROOT, 'desra_basicsr', 'train.py')
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')


def skimage_photo_bgr(name: str) -> np.ndarray:
    """A photo bundled with scikit-image, as HxWx3 uint8 BGR."""
    from skimage import data
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3][:, :, ::-1])


def make_paired_sr_data(root: str, scale: int = 4, gt_size: int = 96, names: Sequence[str] = PHOTOS) -> Dict[str, str]:
    """Write GT crops of real photos and their bicubic x``scale`` LR images as ``root/{gt,lq}/<name>.png``.

    Returns:
        dict: ``{'gt': folder, 'lq': folder}``.
    """
    folders = {key: osp.join(root, key) for key in ('gt', 'lq')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for name in names:
        img = skimage_photo_bgr(name)
        h, w = img.shape[:2]
        top, left = (h - gt_size) // 2, (w - gt_size) // 2
        gt = img[top:top + gt_size, left:left + gt_size]
        lq = cv2.resize(gt, (gt_size // scale, gt_size // scale), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(osp.join(folders['gt'], f'{name}.png'), gt)
        cv2.imwrite(osp.join(folders['lq'], f'{name}.png'), lq)
    return folders


@pytest.fixture(scope='session')
def paired_sr_data(tmp_path_factory) -> Dict[str, str]:
    """Real-photo GT/LQ pairs (x4, 96x96 GT) shared by the whole test session."""
    return make_paired_sr_data(str(tmp_path_factory.mktemp('paired_sr_data')))


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


def mmseg_b0_config_path() -> str:
    """mmseg's SegFormer mit-b0 ADE20K 512x512 config, shipped inside the mmseg wheel."""
    from desra_basicsr.detection.mmseg_segmenter import default_config_path
    return osp.join(osp.dirname(default_config_path()), 'segformer_mit-b0_8xb2-160k_ade20k-512x512.py')


def write_small_config(folder, num_classes=150):
    """mit-b0 ADE20K config with a small test scale (fast on CPU) and the given class count."""
    path = osp.join(folder, f'segformer_b0_small_{num_classes}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{mmseg_b0_config_path()}']\n"
                f'model = dict(decode_head=dict(num_classes={num_classes}))\n'
                "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(128, 64), "
                "keep_ratio=True), dict(type='PackSegInputs')]\n")
    return path


def random_checkpoint(config, path):
    """Build the config's model with random weights (no init_cfg download) and save its state_dict."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='session')
def vgg19_file(tmp_path_factory):
    """A random VGG19 state dict (BasicSR's perceptual loss loads it), created once per session."""
    path = osp.join(str(tmp_path_factory.getbasetemp()), 'vgg19_random', 'vgg19-dcbb9e9d.pth')
    if not osp.exists(path):
        from finetune_helpers import make_vgg19_file
        make_vgg19_file(path)
    return path
