"""BasicSR training through ``desra_basicsr/train.py`` on CPU, single process, resumed, and DDP (gloo)."""
import copy
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from helpers.paths import REPO_ROOT
from helpers.training import experiment_dir, latest_state_iter, run_train, train_env


def tiny_srgan_options(name: str, data: dict, total_iter: int, model_type: str = 'SRGANModel') -> dict:
    """SRGANModel with a tiny RRDBNet and UNetDiscriminatorSN, validation with psnr, checkpoints every 2 iters."""
    dataset = dict(
        type='PairedImageDataset', dataroot_gt=data['gt'], dataroot_lq=data['lq'], io_backend=dict(type='disk'),
        filename_tmpl='{}')
    return dict(
        name=name, model_type=model_type, scale=4, num_gpu=0, manual_seed=0,
        datasets=dict(
            train=dict(
                dataset, name='train', gt_size=64, use_hflip=True, use_rot=True, num_worker_per_gpu=0,
                batch_size_per_gpu=2, dataset_enlarge_ratio=10, prefetch_mode=None),
            val=dict(dataset, name='val')),
        network_g=dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, num_grow_ch=2),
        network_d=dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=4, skip_connection=True),
        path=dict(pretrain_network_g=None, strict_load_g=True, resume_state=None),
        train=dict(
            ema_decay=0.999,
            optim_g=dict(type='Adam', lr=1e-4, weight_decay=0, betas=[0.9, 0.99]),
            optim_d=dict(type='Adam', lr=1e-4, weight_decay=0, betas=[0.9, 0.99]),
            scheduler=dict(type='MultiStepLR', milestones=[100], gamma=0.5),
            total_iter=total_iter, warmup_iter=-1,
            pixel_opt=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
            gan_opt=dict(type='GANLoss', gan_type='vanilla', real_label_val=1.0, fake_label_val=0.0, loss_weight=0.1),
            net_d_iters=1, net_d_init_iters=0),
        val=dict(val_freq=2, save_img=False, metrics=dict(psnr=dict(type='calculate_psnr', crop_border=4))),
        logger=dict(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False, wandb=dict(project=None)),
        dist_params=dict(backend='gloo', port=29500))


def test_import_registers_plugin_components():
    from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    import desra_basicsr  # noqa: F401
    from desra_basicsr.registry import TRANSFORM_REGISTRY
    assert 'PseudoGTPairedDataset' in DATASET_REGISTRY
    assert 'DeSRAFinetuneModel' in MODEL_REGISTRY
    assert 'desra_artifact_ratio' in METRIC_REGISTRY
    assert 'ArtifactMaskTransform' in TRANSFORM_REGISTRY


def test_build_dataset_and_model_find_plugin_types(paired_sr_data, tmp_path):
    from basicsr.data import build_dataset
    from basicsr.models import build_model

    import desra_basicsr  # noqa: F401
    from desra_basicsr.data.pseudo_gt_paired_dataset import PseudoGTPairedDataset
    from desra_basicsr.models.desra_finetune_model import DeSRAFinetuneModel

    dataset = build_dataset(
        dict(
            type='PseudoGTPairedDataset', name='t', phase='val', scale=4, dataroot_gt=paired_sr_data['gt'],
            dataroot_lq=paired_sr_data['lq'], io_backend=dict(type='disk'), filename_tmpl='{}'))
    assert isinstance(dataset, PseudoGTPairedDataset) and len(dataset) == 4

    opt = tiny_srgan_options('build', paired_sr_data, total_iter=1, model_type='DeSRAFinetuneModel')
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    opt['path'].update(experiments_root=str(tmp_path), models=str(tmp_path), training_states=str(tmp_path),
                       log=str(tmp_path), visualization=str(tmp_path))
    assert isinstance(build_model(opt), DeSRAFinetuneModel)


def test_import_opens_no_network_and_prints_no_warnings():
    """A fresh interpreter imports the package with sockets disabled and prints nothing."""
    code = ('import socket\n'
            'def refuse(*a, **k):\n'
            '    raise AssertionError("network access during import")\n'
            'socket.socket.connect = refuse\n'
            'socket.create_connection = refuse\n'
            'import desra_basicsr\n')
    env = train_env()
    env.pop('PYTHONWARNINGS')
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '' and proc.stderr == ''


def test_train_validate_checkpoint_and_auto_resume(paired_sr_data, tmp_path):
    opt = tiny_srgan_options('srgan_cpu', paired_sr_data, total_iter=4)
    first = run_train(opt, str(tmp_path))
    assert 'Start training from epoch: 0, iter: 0' in first.stdout
    assert re.search(r'# psnr: +\d+\.\d+', first.stdout), first.stdout[-3000:]
    models = osp.join(experiment_dir(str(tmp_path), opt), 'models')
    assert {'net_g_4.pth', 'net_d_4.pth', 'net_g_latest.pth'} <= set(os.listdir(models))
    assert latest_state_iter(str(tmp_path), opt) == 4

    resumed = copy.deepcopy(opt)
    resumed['train']['total_iter'] = 6
    second = run_train(resumed, str(tmp_path), extra_args=['--auto_resume'])
    assert 'Resuming training from epoch' in second.stdout and 'iter: 4.' in second.stdout
    assert 'Start training from epoch: 0, iter: 0' not in second.stdout
    assert latest_state_iter(str(tmp_path), opt) == 6
    state = torch.load(osp.join(experiment_dir(str(tmp_path), opt), 'training_states', '6.state'))
    assert state['iter'] == 6


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_end_identical(paired_sr_data, tmp_path):
    """Ranks start from different seeds (BasicSR seeds ``manual_seed + rank``) and see different batches; DDP must
    broadcast and all-reduce so both end with the same generator."""
    opt = tiny_srgan_options('srgan_ddp', paired_sr_data, total_iter=4, model_type='RankDumpSRGANModel')
    script = osp.join(REPO_ROOT, 'tests', 'scripts', 'train_with_rank_dump.py')
    proc = run_train(opt, str(tmp_path), nproc=2, script=script)
    assert re.search(r'world_size: 2', proc.stdout), proc.stdout[-3000:]
    dump = osp.join(experiment_dir(str(tmp_path), opt), 'rank_dump')
    rank0 = torch.load(osp.join(dump, 'net_g_rank0.pth'))
    rank1 = torch.load(osp.join(dump, 'net_g_rank1.pth'))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


def test_prepare_argv_translates_local_rank_and_exports_backend(tmp_path, monkeypatch):
    from desra_basicsr.compat import DIST_BACKEND_ENV
    from desra_basicsr.train import prepare_argv
    monkeypatch.delenv(DIST_BACKEND_ENV, raising=False)
    opt_path = tmp_path / 'o.yml'
    opt_path.write_text('name: x\ndist_params:\n  backend: gloo\n  port: 29500\n')
    argv = prepare_argv(['--local-rank=1', '-opt', str(opt_path), '--launcher', 'pytorch'])
    assert argv == ['--local_rank=1', '-opt', str(opt_path), '--launcher', 'pytorch']
    assert os.environ[DIST_BACKEND_ENV] == 'gloo'


def test_desra_console_help_lists_every_command():
    """Every ``desra_basicsr/commands/<name>_cmd.py`` shows up in ``desra --help`` as ``<name>`` with dashes."""
    folder = osp.join(REPO_ROOT, 'desra_basicsr', 'commands')
    commands = sorted(f[:-len('_cmd.py')].replace('_', '-') for f in os.listdir(folder) if f.endswith('_cmd.py'))
    assert {'detect', 'pseudo-gt', 'fuse', 'localizer'} <= set(commands)
    proc = subprocess.run([sys.executable, '-m', 'desra_basicsr', '--help'], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=train_env())
    assert proc.returncode == 0, proc.stderr
    for command in commands:
        assert re.search(rf'^\s+{command}\b', proc.stdout, re.M), (command, proc.stdout)
