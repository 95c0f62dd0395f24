"""Fine-tuning end to end: the tiny CPU twins of the DeSRA option files train through ``desra_basicsr/train.py``.

Each twin (``tests/options/finetune_*_desra_tiny.yml``, the same keys as ``options/finetune_*_desra.yml``) runs as
it is in a temporary working directory holding its data (``datasets/desra_tiny``), tiny randomly initialised
"released" weights and a random VGG19 file (``experiments/pretrained_models``): it trains, validates with
``desra_artifact_ratio`` and ``psnr``, saves, and resumes with ``--auto_resume``. The Real-ESRGAN twin also runs
under ``torch.distributed.run`` with two gloo processes, and a stock-shaped Real-ESRGAN option file is turned into
a DeSRA fine-tune by the README's edit alone.
"""
import copy
import glob
import os
import os.path as osp

import pytest

from helpers.finetune import (FULL_OPTIONS, TINY_OPTIONS, install_vgg, load_options, make_split, make_tiny_data,
                              prepare, save_weights)
from helpers.training import experiment_dir, latest_state_iter, read_logs, run_train, validation_values


def key_paths(tree, prefix=''):
    """Every key path of a nested option dict (lists are leaves)."""
    paths = set()
    for key, value in tree.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= key_paths(value, prefix + key + '.')
    return paths


@pytest.mark.parametrize('key', sorted(TINY_OPTIONS))
def test_twin_has_the_same_keys_as_its_option_file(key):
    assert key_paths(load_options(TINY_OPTIONS[key])) == key_paths(load_options(FULL_OPTIONS[key]))


@pytest.mark.slow
@pytest.mark.parametrize('key', sorted(TINY_OPTIONS))
def test_twin_trains_validates_saves_and_resumes(key, tmp_path, vgg19_file):
    cwd = str(tmp_path)
    opt = load_options(TINY_OPTIONS[key])
    prepare(cwd, opt, vgg19_file)
    first = copy.deepcopy(opt)
    first['train']['total_iter'] = 2
    run_train(first, cwd)
    assert latest_state_iter(cwd, opt) == 2
    proc = run_train(opt, cwd, extra_args=['--auto_resume'])  # the twin as it is: 4 iterations, resumed at 2
    assert 'Resuming training from epoch' in proc.stdout + read_logs(cwd, opt)
    assert latest_state_iter(cwd, opt) == 4
    models = os.listdir(osp.join(experiment_dir(cwd, opt), 'models'))
    assert {'net_g_2.pth', 'net_d_2.pth', 'net_g_4.pth', 'net_d_4.pth', 'net_g_latest.pth'} <= set(models)
    log = read_logs(cwd, opt)
    ratios, psnrs = validation_values(log, 'desra_artifact_ratio'), validation_values(log, 'psnr')
    assert len(ratios) >= 3 and len(psnrs) >= 3  # iterations 2 and 4, and the final validation
    assert all(0 <= r <= 1 for r in ratios) and all(5 < p < 100 for p in psnrs)
    assert 'l_g_percep' in log and 'l_d_real' in log
    if key == 'ldl':
        assert 'l_g_artifacts' in log


@pytest.mark.slow
def test_realesrgan_twin_under_torchrun_two_gloo_processes(tmp_path, vgg19_file):
    cwd = str(tmp_path)
    opt = load_options(TINY_OPTIONS['realesrgan'])
    prepare(cwd, opt, vgg19_file)
    opt['train']['total_iter'] = 2
    proc = run_train(opt, cwd, nproc=2)
    log = read_logs(cwd, opt)
    assert 'world_size: 2' in log or 'World size: 2' in log or "'world_size': 2" in log, proc.stdout[-3000:]
    assert latest_state_iter(cwd, opt) == 2
    assert validation_values(log, 'desra_artifact_ratio')


def stock_realesrgan_options() -> dict:
    """Real-ESRGAN's ``options/finetune_realesrgan_x4plus.yml`` as users have it, shrunk for a CPU test.

    Sections and keys are Real-ESRGAN's (degradation settings, RealESRGANDataset, RealESRGANModel, RealESRNet as
    the generator's start); only sizes are tiny (networks, patch, batch, iterations, workers) and TensorBoard is off.
    """
    kernels = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
    probs = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    return {
        'name': 'finetune_RealESRGANx4plus_400k',
        'model_type': 'RealESRGANModel',
        'scale': 4,
        'num_gpu': 'auto',
        'manual_seed': 0,
        'l1_gt_usm': True,
        'percep_gt_usm': True,
        'gan_gt_usm': False,
        'resize_prob': [0.2, 0.7, 0.1],
        'resize_range': [0.15, 1.5],
        'gaussian_noise_prob': 0.5,
        'noise_range': [1, 30],
        'poisson_scale_range': [0.05, 3],
        'gray_noise_prob': 0.4,
        'jpeg_range': [30, 95],
        'second_blur_prob': 0.8,
        'resize_prob2': [0.3, 0.4, 0.3],
        'resize_range2': [0.3, 1.2],
        'gaussian_noise_prob2': 0.5,
        'noise_range2': [1, 25],
        'poisson_scale_range2': [0.05, 2.5],
        'gray_noise_prob2': 0.4,
        'jpeg_range2': [30, 95],
        'gt_size': 32,
        'queue_size': 4,
        'datasets': {
            'train': {
                'name': 'DF2K+OST',
                'type': 'RealESRGANDataset',
                'dataroot_gt': 'datasets/DF2K',
                'meta_info': 'datasets/DF2K/meta_info/meta_info_DF2Kmultiscale+OST_sub.txt',
                'io_backend': {
                    'type': 'disk'
                },
                'blur_kernel_size': 21,
                'kernel_list': kernels,
                'kernel_prob': probs,
                'sinc_prob': 0.1,
                'blur_sigma': [0.2, 3],
                'betag_range': [0.5, 4],
                'betap_range': [1, 2],
                'blur_kernel_size2': 21,
                'kernel_list2': kernels,
                'kernel_prob2': probs,
                'sinc_prob2': 0.1,
                'blur_sigma2': [0.2, 1.5],
                'betag_range2': [0.5, 4],
                'betap_range2': [1, 2],
                'final_sinc_prob': 0.8,
                'gt_size': 32,
                'use_hflip': True,
                'use_rot': False,
                'use_shuffle': True,
                'num_worker_per_gpu': 0,
                'batch_size_per_gpu': 2,
                'dataset_enlarge_ratio': 1,
                'prefetch_mode': None
            }
        },
        'network_g': {
            'type': 'RRDBNet',
            'num_in_ch': 3,
            'num_out_ch': 3,
            'num_feat': 4,
            'num_block': 1,
            'num_grow_ch': 2
        },
        'network_d': {
            'type': 'UNetDiscriminatorSN',
            'num_in_ch': 3,
            'num_feat': 4,
            'skip_connection': True
        },
        'path': {
            'pretrain_network_g': 'experiments/pretrained_models/RealESRNet_x4plus.pth',
            'param_key_g': 'params_ema',
            'strict_load_g': True,
            'pretrain_network_d': 'experiments/pretrained_models/RealESRGAN_x4plus_netD.pth',
            'param_key_d': 'params',
            'strict_load_d': True,
            'resume_state': None
        },
        'train': {
            'ema_decay': 0.999,
            'optim_g': {
                'type': 'Adam',
                'lr': 1e-4,
                'weight_decay': 0,
                'betas': [0.9, 0.99]
            },
            'optim_d': {
                'type': 'Adam',
                'lr': 1e-4,
                'weight_decay': 0,
                'betas': [0.9, 0.99]
            },
            'scheduler': {
                'type': 'MultiStepLR',
                'milestones': [400000],
                'gamma': 0.5
            },
            'total_iter': 2,
            'warmup_iter': -1,
            'pixel_opt': {
                'type': 'L1Loss',
                'loss_weight': 1.0,
                'reduction': 'mean'
            },
            'perceptual_opt': {
                'type': 'PerceptualLoss',
                'layer_weights': {
                    'conv1_2': 0.1,
                    'conv2_2': 0.1,
                    'conv3_4': 1,
                    'conv4_4': 1,
                    'conv5_4': 1
                },
                'vgg_type': 'vgg19',
                'use_input_norm': True,
                'perceptual_weight': 1.0,
                'style_weight': 0,
                'range_norm': False,
                'criterion': 'l1'
            },
            'gan_opt': {
                'type': 'GANLoss',
                'gan_type': 'vanilla',
                'real_label_val': 1.0,
                'fake_label_val': 0.0,
                'loss_weight': 0.1
            },
            'net_d_iters': 1,
            'net_d_init_iters': 0
        },
        'logger': {
            'print_freq': 1,
            'save_checkpoint_freq': 2,
            'use_tb_logger': False,
            'wandb': {
                'project': None,
                'resume_id': None
            }
        },
        'dist_params': {
            'backend': 'nccl',
            'port': 29500
        }
    }


def apply_readme_edit(opt: dict) -> dict:
    """The README's edit (section "Fine-tuning your own Real-ESRGAN / LDL / SwinIR experiment"), nothing more."""
    opt = copy.deepcopy(opt)
    opt['model_type'] = 'DeSRAFinetuneModel'
    train_set = opt['datasets']['train']
    train_set['type'] = 'PseudoGTPairedDataset'
    train_set.pop('meta_info', None)
    train_set.pop('dataroot_gt')
    train_set.update(
        dataroot_lq='datasets/desra/train/lq',
        dataroot_mse='datasets/desra/train/mse',
        dataroot_gan='datasets/desra/train/gan',
        dataroot_mask='datasets/desra/train/mask')
    opt['path']['pretrain_network_g'] = 'experiments/pretrained_models/RealESRGAN_x4plus.pth'
    return opt


@pytest.mark.slow
def test_stock_realesrgan_options_with_readme_edit_train(tmp_path, vgg19_file):
    cwd = str(tmp_path)
    opt = apply_readme_edit(stock_realesrgan_options())
    make_split(osp.join(cwd, 'datasets', 'desra', 'train'), 64, keys=('lq', 'mse', 'gan', 'mask'))
    save_weights(opt, cwd)
    install_vgg(vgg19_file, cwd)
    run_train(opt, cwd)
    assert latest_state_iter(cwd, opt) == 2
    log = read_logs(cwd, opt)
    assert 'RealESRGAN_x4plus.pth' in log and 'l_g_percep' in log and 'l_g_gan' in log


def test_missing_vgg_file_stops_training_before_any_iteration(tmp_path):
    cwd = str(tmp_path)
    opt = load_options(TINY_OPTIONS['realesrgan'])
    make_tiny_data(cwd)
    save_weights(opt, cwd)
    proc = run_train(opt, cwd, check=False)
    assert proc.returncode != 0
    assert 'vgg19-dcbb9e9d.pth: VGG19 weights for the perceptual loss not found' in proc.stdout
    assert 'Start training' not in proc.stdout + read_logs(cwd, opt)
    assert not glob.glob(osp.join(experiment_dir(cwd, opt), 'models', '*.pth'))
