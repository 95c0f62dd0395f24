"""Fine-tuning, model side: DeSRAFinetuneModel built in-process on CPU (losses, loading errors, VGG, padding, warm-up).

The end-to-end runs through ``desra_basicsr/train.py`` are in ``tests/test_finetune_twins.py``.
"""
import copy
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from basicsr.models import build_model

import desra_basicsr  # noqa: F401  (registers the plugin)
from desra_basicsr.data.artifact_mask_transform import ArtifactMaskTransform
from desra_basicsr.errors import DesraInputError
from helpers.finetune import (TINY_OPTIONS, VGG_RELATIVE, in_process_options, install_vgg, load_options, make_sample,
                              save_weights)
from helpers.photos import skimage_photo_bgr


def tiny_opt(cwd, key='realesrgan', perceptual=False, **train_changes):
    """In-process options from a tiny twin, with its weights saved in ``cwd``; perceptual loss off unless asked."""
    opt = load_options(TINY_OPTIONS[key])
    opt.pop('datasets')
    opt.pop('val')
    if not perceptual:
        opt['train'].pop('perceptual_opt')
    opt['train'].update(train_changes)
    save_weights(opt, cwd)
    return in_process_options(opt, cwd)


def batch(hr_size=32, n=2, seed=0):
    """A training batch from real photos: ``lq``, ``gt`` (pseudo-GT) and ``mask`` tensors."""
    samples = [make_sample(name, hr_size, offset=seed) for name in ('astronaut', 'chelsea')[:n]]

    def to_t(key):
        return torch.stack([torch.from_numpy(s[key][:, :, ::-1].copy()).permute(2, 0, 1) for s in samples])

    return {
        'lq': to_t('lq').float() / 255,
        'gt': to_t('pseudo').float() / 255,
        'mask': torch.stack([torch.from_numpy(s['mask'] > 127)[None] for s in samples]).float()
    }


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the machine's cores are shared, and tiny nets run faster without thread contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a temporary working directory (BasicSR's VGG path is relative to it)."""
    monkeypatch.chdir(tmp_path)
    return str(tmp_path)


def test_iterations_log_base_losses_on_cpu(in_tmp):
    model = build_model(tiny_opt(in_tmp))
    assert model.device.type == 'cpu' and model.cri_ldl is None and model.cri_mask_pix is None
    model.feed_data(batch())
    for it in (1, 2):
        model.optimize_parameters(it)
    log = model.get_current_log()
    assert {'l_g_pix', 'l_g_gan', 'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'} <= set(log)
    assert all(np.isfinite(v) for v in log.values())


def test_perceptual_loss_runs_offline_with_vgg_file(in_tmp, vgg19_file, monkeypatch):

    def no_download(*args, **kwargs):
        raise AssertionError('a download was attempted')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_download)
    install_vgg(vgg19_file, in_tmp)
    model = build_model(tiny_opt(in_tmp, perceptual=True))
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert np.isfinite(model.get_current_log()['l_g_percep'])


def test_missing_vgg_file_is_a_clear_error_before_building(in_tmp, monkeypatch):
    opt = tiny_opt(in_tmp, perceptual=True)
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', lambda *a, **k: pytest.fail('download attempted'))
    with pytest.raises(DesraInputError, match=r'vgg19-dcbb9e9d\.pth: VGG19 weights for the perceptual loss not found'):
        build_model(opt)
    assert not osp.exists(osp.join(in_tmp, VGG_RELATIVE))


def test_ldl_artifact_loss_uses_ema_without_grad(in_tmp):
    model = build_model(tiny_opt(in_tmp, key='ldl'))
    assert model.cri_ldl is not None and model.net_d_init_iters == 1
    model.feed_data(batch())
    g_before = [p.detach().clone() for p in model.net_g.parameters()]
    model.optimize_parameters(1)  # discriminator warm-up: G held
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.net_g.parameters()))
    assert 'l_d_real' in model.get_current_log() and 'l_g_gan' not in model.get_current_log()
    model.optimize_parameters(2)
    log = model.get_current_log()
    assert 'l_g_artifacts' in log and np.isfinite(log['l_g_artifacts'])
    assert not any(torch.equal(a, b) for a, b in zip(g_before, model.net_g.parameters()))
    assert all(p.grad is None for p in model.net_g_ema.parameters())


def test_ldl_loss_needs_ema(in_tmp):
    with pytest.raises(DesraInputError, match='ema_decay'):
        build_model(tiny_opt(in_tmp, key='ldl', ema_decay=0))


def test_mask_pixel_loss(in_tmp):
    opt = tiny_opt(in_tmp, mask_pixel_opt={'type': 'L1Loss', 'loss_weight': 1.0})
    model = build_model(opt)
    data = batch()
    model.feed_data(data)
    model.optimize_parameters(1)
    assert np.isfinite(model.get_current_log()['l_g_mask_pix'])
    model.feed_data({'lq': data['lq'], 'gt': data['gt']})
    with pytest.raises(DesraInputError, match='return_mask: true'):
        model.optimize_parameters(2)


def test_mask_pixel_loss_is_logged_as_zero_for_an_empty_mask(in_tmp):
    model = build_model(tiny_opt(in_tmp, mask_pixel_opt={'type': 'L1Loss', 'loss_weight': 1.0}, pixel_opt=None))
    data = batch()
    model.feed_data(dict(data, mask=torch.zeros_like(data['mask'])))
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['l_g_mask_pix'] == 0  # logged (every rank has the key) and finite
    assert all(torch.isfinite(p.grad).all() for p in model.net_g.parameters() if p.grad is not None)
    model.feed_data(data)
    model.optimize_parameters(2)
    masked = (model.output - model.gt).abs().mul(data['mask']).sum() / (data['mask'].sum() * 3)
    assert model.get_current_log()['l_g_mask_pix'] == pytest.approx(masked.item(), rel=1e-5)


def test_mask_pixel_loss_needs_return_mask_in_the_option_file(in_tmp):
    opt = tiny_opt(in_tmp, mask_pixel_opt={'type': 'L1Loss', 'loss_weight': 1.0})
    opt['datasets'] = {'train': {'type': 'PseudoGTPairedDataset'}}
    with pytest.raises(DesraInputError, match='return_mask: true'):
        build_model(opt)
    opt['datasets']['train']['return_mask'] = True
    build_model(opt)


def test_warm_up_runs_g_without_autograd_and_skips_unused_inputs(in_tmp):
    model = build_model(tiny_opt(in_tmp, key='ldl'))  # net_d_init_iters: 1
    data = dict(batch(), mse=torch.rand(2, 3, 32, 32))
    model.feed_data(data)
    assert model.mask is None  # no mask_pixel_opt: the mask stays on the host
    model.optimize_parameters(1)
    assert not model.output.requires_grad and model.output.grad_fn is None
    model.optimize_parameters(2)
    assert model.output.requires_grad


@pytest.mark.parametrize('tf32', [True, False])
def test_tf32_option(in_tmp, tf32):
    precision, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        build_model(tiny_opt(in_tmp, **({} if tf32 else {'tf32': False})))
        assert torch.get_float32_matmul_precision() == ('high' if tf32 else 'highest')
        assert torch.backends.cudnn.allow_tf32 is tf32
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cudnn.allow_tf32 = cudnn


def test_validation_runs_the_bare_generator_without_ema(in_tmp):
    model = build_model(tiny_opt(in_tmp, ema_decay=0))
    assert not hasattr(model, 'net_g_ema')
    bare = model.net_g
    model.net_g = torch.nn.DataParallel(bare)  # a wrapper, as DDP is under torchrun
    calls = []
    model.net_g.forward = lambda *args: calls.append('wrapper')
    model.feed_data({'lq': torch.rand(1, 3, 8, 8)})
    model.test()
    assert not calls and model.output.shape == (1, 3, 32, 32)


def test_swinir_test_pads_to_window(in_tmp):
    model = build_model(tiny_opt(in_tmp, key='swinir'))
    model.feed_data({'lq': torch.rand(1, 3, 18, 17)})  # not multiples of window_size 4
    model.test()
    assert model.output.shape == (1, 3, 72, 68)


@pytest.mark.parametrize('case',
                         ['missing_g', 'missing_d', 'mismatched', 'reshaped', 'param_key', 'no_network_d', 'no_gan'])
def test_loading_errors_before_training(in_tmp, case):
    opt = tiny_opt(in_tmp)
    expect = None
    if case == 'missing_g':
        opt['path']['pretrain_network_g'] = 'experiments/pretrained_models/RealESRGAN_x4plus.pth'
        expect = r'RealESRGAN_x4plus\.pth: pretrained network_g file not found'
    elif case == 'missing_d':
        os.remove(opt['path']['pretrain_network_d'])
        expect = 'pretrained network_d file not found'
    elif case == 'mismatched':
        other = copy.deepcopy(opt)
        other['network_g']['num_block'] = 2  # a checkpoint with one more block: unexpected keys
        save_weights(other, in_tmp)
        expect = r'tiny_RealESRGAN_x4plus\.pth \[params_ema\] does not fit RRDBNet: 30 unexpected keys'
    elif case == 'reshaped':
        other = copy.deepcopy(opt)
        other['network_g']['num_feat'] = 8
        save_weights(other, in_tmp)
        opt['path']['strict_load_g'] = False
        expect = 'shape mismatches'
    elif case == 'param_key':
        torch.save({'weights': {}}, opt['path']['pretrain_network_g'])
        expect = "no state dict under 'params_ema'"
    elif case == 'no_network_d':
        opt.pop('network_d')
        expect = 'needs network_d'
    elif case == 'no_gan':
        opt['train'].pop('gan_opt')
        expect = 'needs train.gan_opt'
    with pytest.raises(DesraInputError, match=expect):
        build_model(opt)


def test_loading_bare_state_dict_and_non_strict(in_tmp):
    opt = tiny_opt(in_tmp)
    from basicsr.archs import build_network
    state = build_network(copy.deepcopy(opt['network_g'])).state_dict()
    torch.save(state, opt['path']['pretrain_network_g'])  # bare state dict, as some releases ship
    model = build_model(opt)
    torch.testing.assert_close(model.net_g.state_dict(), state)
    state.pop('conv_last.bias')
    torch.save({'params': state}, opt['path']['pretrain_network_g'])
    with pytest.raises(DesraInputError, match='1 missing keys'):  # strict: refused
        build_model(opt)
    opt['path']['strict_load_g'] = False
    loaded = build_model(opt).net_g.state_dict()  # non-strict: every parameter the file holds is loaded
    assert set(loaded) - set(state) == {'conv_last.bias'}
    torch.testing.assert_close({key: loaded[key] for key in state}, state)


def flat_region_data(hr_size=48):
    """Two real LR photos with one flat-coloured rectangle (a texture-less region where GAN-SR models paint
    artifacts); the MSE-SR image is the bicubic up-scaled LR and the mask the rectangle at HR scale."""
    lqs, mses, masks = [], [], []
    for i, name in enumerate(('astronaut', 'chelsea')):
        img = skimage_photo_bgr(name)[:, :, ::-1]
        h, w = img.shape[:2]
        crop = img[(h - hr_size) // 2:(h + hr_size) // 2, (w - hr_size) // 2:(w + hr_size) // 2]
        lq = cv2.resize(crop, (hr_size // 4, hr_size // 4), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        lq[3:9, 4:10] = np.float32([0.3, 0.6, 0.8]) + np.random.default_rng(i).normal(0, 0.01, (6, 6, 3))
        mask = np.zeros((hr_size, hr_size), np.float32)
        mask[12:36, 16:40] = 1
        lqs.append(lq.clip(0, 1))
        mses.append(cv2.resize(lq, (hr_size, hr_size), interpolation=cv2.INTER_CUBIC).clip(0, 1))
        masks.append(mask[:, :, None])
    to_t = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to_t(lqs), to_t(mses), to_t(masks)


def test_finetune_removes_artifact_and_keeps_the_rest(in_tmp):
    """The fine-tune does its job on a fixed tiny setup.

    G0, a fixed tiny RRDBNet (num_feat 8), plays the GAN-SR model: its output on two real LR photos is ``y_gan``.
    Each photo has a flat rectangle; the pseudo-GT replaces G0's output there (mask: 25 % of the image) by the
    bicubic up-scaled LR (the MSE-SR image). After 60 iterations of the DeSRA objective (L1 + GAN 0.1, no USM;
    lr 2e-3 to keep the test short), the L1 distance to the pseudo-GT inside the mask falls at least 4x (measured:
    about 6.5x), while outside the mask the output moves from G0's by less than 5 % of the initial inside
    distance (measured: about 2.5 %).
    """
    opt = tiny_opt(in_tmp)
    opt.update(l1_gt_usm=False, percep_gt_usm=False)
    opt['network_g'].update(num_feat=8, num_grow_ch=4)
    opt['network_d']['num_feat'] = 8
    opt['train']['optim_g']['lr'] = 2e-3
    opt['path']['pretrain_network_d'] = None
    save_weights(opt, in_tmp, seed=1)
    torch.manual_seed(0)
    model = build_model(opt)
    lq, y_mse, mask = flat_region_data()
    with torch.no_grad():
        y_gan = model.net_g(lq)
    pseudo = ArtifactMaskTransform()(y_mse, y_gan, mask)
    inside, outside = mask.bool().expand_as(y_gan), ~mask.bool().expand_as(y_gan)

    def gaps():
        with torch.no_grad():
            out = model.net_g(lq)
        return (out - pseudo).abs()[inside].mean().item(), (out - y_gan).abs()[outside].mean().item()

    inside_before, _ = gaps()
    for it in range(1, 61):
        model.feed_data({'lq': lq, 'gt': pseudo, 'mask': mask})
        model.optimize_parameters(it)
    inside_after, outside_drift = gaps()
    assert inside_after <= inside_before / 4, (inside_before, inside_after)
    assert outside_drift <= 0.05 * inside_before, (inside_before, outside_drift)


def test_missing_weights_say_where_to_get_them(in_tmp):
    """A released file names its source (docs/finetune.md, section 2); G of a DeSRA fine-tune is never random."""
    from desra_basicsr.models.desra_finetune_model import DeSRAFinetuneModel, FINETUNE_MODEL, check_pretrained_files
    assert FINETUNE_MODEL == DeSRAFinetuneModel.__name__
    opt = tiny_opt(in_tmp)
    opt['path']['pretrain_network_g'] = 'experiments/pretrained_models/RealESRGAN_x4plus.pth'
    with pytest.raises(DesraInputError) as info:
        check_pretrained_files(opt)
    assert str(info.value) == (
        f'{osp.abspath(opt["path"]["pretrain_network_g"])}: pretrained network_g file not found '
        '(path.pretrain_network_g); get it from Real-ESRGAN GitHub releases (xinntao/Real-ESRGAN, release v0.1.0) '
        '(docs/finetune.md, section 2) and put it there; a DeSRA fine-tune starts from the GAN-SR model whose '
        'artifacts you detected, never from random weights')
    opt['path']['pretrain_network_g'] = 'experiments/pretrained_models/my_gan.pth'
    with pytest.raises(DesraInputError) as info:
        check_pretrained_files(opt)
    assert str(info.value).endswith('put the weights there; a DeSRA fine-tune starts from the GAN-SR model whose '
                                    'artifacts you detected, never from random weights')
    opt['path']['pretrain_network_g'] = None
    opt['path']['pretrain_network_d'] = 'experiments/pretrained_models/RealESRGAN_x4plus_netD.pth'
    with pytest.raises(DesraInputError) as info:
        check_pretrained_files(opt)
    assert str(info.value).endswith('get it from Real-ESRGAN GitHub releases (v0.2.2.3) (docs/finetune.md, section '
                                    '2) and put it there, or set path.pretrain_network_d: ~ to start from random '
                                    'weights')
    opt['model_type'] = 'SRGANModel'  # another model may start G from random weights
    opt['path'].update(pretrain_network_g='experiments/pretrained_models/my_gan.pth', pretrain_network_d=None)
    with pytest.raises(DesraInputError, match=r'or set path\.pretrain_network_g: ~ to start from random weights$'):
        check_pretrained_files(opt)
