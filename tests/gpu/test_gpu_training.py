"""DeSRA fine-tuning on CUDA (``make gpu-check``; collected only where CUDA is available).

* the three tiny twins (``tests/options/finetune_*_desra_tiny.yml``) train, validate and save with ``num_gpu: 1``;
* the Real-ESRGAN twin under ``torch.distributed.run`` with nccl on every visible GPU (world size 1 is fine);
* ``--auto_resume`` on the GPU (BasicSR maps the state to ``torch.cuda.current_device()``).
"""
import copy

import pytest
import torch

from helpers.finetune import TINY_OPTIONS, load_options, prepare
from helpers.training import gpu_env, latest_state_iter, read_logs, run_train, validation_values


def on_gpu(opt: dict, num_gpu) -> dict:
    opt = copy.deepcopy(opt)
    opt['num_gpu'] = num_gpu
    opt['dist_params']['backend'] = 'nccl'
    return opt


@pytest.mark.parametrize('key', sorted(TINY_OPTIONS))
def test_tiny_twin_trains_on_one_gpu(key, tmp_path, vgg19_file):
    cwd = str(tmp_path)
    opt = on_gpu(load_options(TINY_OPTIONS[key]), 1)
    prepare(cwd, opt, vgg19_file)
    run_train(opt, cwd, env=gpu_env())
    log = read_logs(cwd, opt)
    assert latest_state_iter(cwd, opt) == opt['train']['total_iter']
    assert "'num_gpu': 1" in log or 'num_gpu: 1' in log
    assert validation_values(log, 'desra_artifact_ratio') and 'l_g_gan' in log


def test_realesrgan_twin_under_torchrun_nccl_on_every_gpu(tmp_path, vgg19_file):
    cwd = str(tmp_path)
    world = torch.cuda.device_count()
    opt = on_gpu(load_options(TINY_OPTIONS['realesrgan']), 'auto')
    prepare(cwd, opt, vgg19_file)
    proc = run_train(opt, cwd, nproc=world, torchrun=True, env=gpu_env())
    log = read_logs(cwd, opt)
    assert latest_state_iter(cwd, opt) == opt['train']['total_iter'], proc.stdout[-3000:]
    assert 'nccl' in log and f'world_size: {world}' in log.replace("'", '').replace('"', '')


def test_auto_resume_on_gpu(tmp_path, vgg19_file):
    cwd = str(tmp_path)
    opt = on_gpu(load_options(TINY_OPTIONS['realesrgan']), 1)
    prepare(cwd, opt, vgg19_file)
    first = copy.deepcopy(opt)
    first['train']['total_iter'] = 2
    run_train(first, cwd, env=gpu_env())
    assert latest_state_iter(cwd, opt) == 2
    proc = run_train(opt, cwd, extra_args=['--auto_resume'], env=gpu_env())
    assert 'Resuming training from epoch' in proc.stdout + read_logs(cwd, opt)
    assert latest_state_iter(cwd, opt) == opt['train']['total_iter']
