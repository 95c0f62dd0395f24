"""The artifact localiser on CUDA (``make gpu-check``; collected only where CUDA is available).

* ``desra localizer train`` under ``torch.distributed.run`` with nccl on every visible GPU (mmengine's distributed
  launch, SyncBN; world size 1 is fine), then ``desra detect --method localizer`` on the GPU.
"""
import json
import os.path as osp
import subprocess
import sys

import torch

from helpers.localizer import make_artifact_data, mmengine_log
from helpers.paths import REPO_ROOT
from helpers.training import gpu_env


def test_localizer_trains_under_torchrun_nccl_and_detects_on_gpu(tmp_path):
    data = make_artifact_data(str(tmp_path / 'data'))
    out, masks = str(tmp_path / 'loc'), str(tmp_path / 'masks')
    world = torch.cuda.device_count()
    train = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={world}', '-m',
        'desra_basicsr', 'localizer', 'train', '--gan', data['img'], '--masks', data['mask'], '--out', out, '--arch',
        'deeplabv3plus-r18', '--iters', '4', '--batch-size', '2', '--crop-size', '48', '--num-workers', '0'
    ]
    proc = subprocess.run(train, cwd=REPO_ROOT, env=gpu_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = mmengine_log(out)
    assert 'Distributed training: True' in log and 'nccl' in log and "sync_bn = 'torch'" in log
    detect = [
        sys.executable, '-m', 'desra_basicsr', 'detect', '--method', 'localizer', '--gan', data['img'], '--out', masks,
        '--localizer-config', osp.join(out, 'localizer_config.py'), '--localizer-checkpoint',
        osp.join(out, 'localizer.pth'), '--device', 'cuda'
    ]
    proc = subprocess.run(detect, cwd=REPO_ROOT, env=gpu_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(osp.join(masks, 'summary.json')) as f:
        items = json.load(f)['items']
    assert len(items) == 4 and all(r['status'] == 'done' for r in items.values())
