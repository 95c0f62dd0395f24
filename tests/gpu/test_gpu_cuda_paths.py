"""CUDA paths of detection and inference (``make gpu-check``; collected only where CUDA is available).

* the D map on CUDA equals the CPU (OpenCV float64) map within 1e-4;
* batched ``DeSRADetector.detect_tensors`` on CUDA gives the CPU masks and maps;
* ``desra sr --fp16`` (autocast) is close to fp32, for RRDBNet and for SwinIR at a size other than ``img_size``
  (SwinIR then builds its attention mask in fp32).
"""
import os

import cv2
import numpy as np
import pytest
import torch

import desra_basicsr  # noqa: F401  (compat fixes before BasicSR)
from desra_basicsr.commands import main
from desra_basicsr.detection.detector import DeSRADetector
from desra_basicsr.detection.indicator import indicator_numpy, indicator_torch
from desra_basicsr.inference import build_generator
from helpers.photos import skimage_photo_bgr

SWINIR_OPTS = ['upscale=4', 'in_chans=3', 'img_size=16', 'window_size=8', 'img_range=1.0', 'depths=[2, 2]',
               'embed_dim=24', 'num_heads=[2, 2]', 'mlp_ratio=2', 'upsampler=nearest+conv', 'resi_connection=1conv']
RRDB_OPTS = ['num_in_ch=3', 'num_out_ch=3', 'num_feat=32', 'num_block=3', 'num_grow_ch=16']


def sr_pair(name: str, size: int) -> tuple:
    """MSE-SR-like (smooth) and GAN-SR-like (sharpened + noise) versions of a real photo."""
    photo = cv2.resize(skimage_photo_bgr(name), (size, size), interpolation=cv2.INTER_CUBIC)
    mse = cv2.GaussianBlur(photo, (0, 0), 1.2)
    noise = np.random.default_rng(0).normal(0, 8, photo.shape)
    gan = np.clip(cv2.addWeighted(photo, 1.8, mse, -0.8, 0) + noise, 0, 255).astype(np.uint8)
    return mse, gan


def to_tensor(img: np.ndarray, device: str) -> torch.Tensor:
    """HxWx3 uint8 BGR -> 3xHxW RGB float in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float().div(255).to(device)


def test_d_map_cuda_equals_cpu_map():
    mse, gan = sr_pair('astronaut', 768)
    cpu = indicator_numpy(mse, gan)
    cuda = indicator_torch(torch.from_numpy(mse).permute(2, 0, 1).cuda(), torch.from_numpy(gan).permute(2, 0, 1).cuda())
    assert cuda.is_cuda
    assert np.abs(cuda.cpu().numpy() - cpu).max() <= 1e-4


def test_batched_detect_tensors_on_cuda_match_cpu():
    pairs = [sr_pair(name, 384) for name in ('astronaut', 'chelsea', 'coffee')]
    detector_cpu, detector_cuda = DeSRADetector(device='cpu'), DeSRADetector(device='cuda')
    batch_mse = torch.stack([to_tensor(m, 'cuda') for m, _ in pairs])
    batch_gan = torch.stack([to_tensor(g, 'cuda') for _, g in pairs])
    results = detector_cuda.detect_tensors(batch_mse.requires_grad_(), batch_gan)  # outputs taken outside no_grad
    expected = detector_cpu.detect_tensors(batch_mse.cpu(), batch_gan.cpu())
    assert len(results) == 3
    for got, want in zip(results, expected):
        assert np.abs(got.d_map - want.d_map).max() <= 1e-4
        assert (got.mask != want.mask).mean() < 1e-3  # pixels at the 0.7 threshold may flip
    assert any(r.mask.any() for r in results)


@pytest.mark.parametrize('arch, opts, lr_size', [('RRDBNet', RRDB_OPTS, 48), ('SwinIR', SWINIR_OPTS, 44)])
def test_sr_fp16_close_to_fp32(tmp_path, arch, opts, lr_size):
    from desra_basicsr.commands.sr_cmd import parse_arch_opts
    lr_dir = tmp_path / 'lr'
    lr_dir.mkdir()
    for name in ('astronaut', 'rocket'):
        photo = skimage_photo_bgr(name)
        lr = cv2.resize(photo, (lr_size + 4, lr_size), interpolation=cv2.INTER_AREA)  # not a multiple of the window
        cv2.imwrite(str(lr_dir / f'{name}.png'), lr)
    torch.manual_seed(0)
    weights = str(tmp_path / 'net.pth')
    torch.save({'params_ema': build_generator(arch, parse_arch_opts(opts)).state_dict()}, weights)
    outs = {}
    for precision in ('fp32', 'fp16'):
        out = str(tmp_path / precision)
        args = ['sr', '--arch', arch, '--arch-opt', *opts, '--weights', weights, '--input', str(lr_dir), '--out', out,
                '--device', 'cuda'] + (['--fp16'] if precision == 'fp16' else [])
        assert main(args) == 0
        outs[precision] = {f: cv2.imread(os.path.join(out, f)).astype(int) for f in ('astronaut.png', 'rocket.png')}
    for name, fp32 in outs['fp32'].items():
        diff = np.abs(outs['fp16'][name] - fp32)
        assert fp32.shape == (lr_size * 4, (lr_size + 4) * 4, 3)
        assert diff.mean() < 1.0 and diff.max() <= 16, (name, diff.mean(), diff.max())
