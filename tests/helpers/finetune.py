"""Helpers of the fine-tuning tests: tiny DeSRA data from real photos, tiny weights, VGG19 file, options.

The data imitate DeSRA's inputs: ``mse`` is a smooth version of a real photo (an MSE-SR output is smooth), ``gan``
is the photo with a strong high-frequency pattern painted in one rectangle (a GAN-SR artifact), ``mask`` marks that
rectangle, ``lq`` is the bicubic x4 down-scaled photo and ``pseudo`` the eq. 10 merge.
"""
import copy
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
import yaml

import desra_basicsr  # noqa: F401  (compat fixes before BasicSR is imported; registers the plugin)
from helpers.paths import REPO_ROOT
from helpers.photos import skimage_photo_bgr

PHOTOS = ('astronaut', 'chelsea', 'coffee')
TINY_OPTIONS = {
    key: osp.join(REPO_ROOT, 'tests', 'options', f'finetune_{key}_desra_tiny.yml')
    for key in ('realesrgan', 'ldl', 'swinir')
}
FULL_OPTIONS = {key: osp.join(REPO_ROOT, 'options', f'finetune_{key}_desra.yml') for key in TINY_OPTIONS}
VGG_RELATIVE = osp.join('experiments', 'pretrained_models', 'vgg19-dcbb9e9d.pth')


def load_options(path: str) -> dict:
    """Read an option file."""
    with open(path, 'r') as f:
        return yaml.safe_load(f)


def artifact_box(hr_size: int) -> tuple:
    """``(top, left, height, width)`` of the painted artifact in an ``hr_size`` square image."""
    return hr_size // 4, hr_size // 3, hr_size // 2, hr_size // 2


def make_sample(name: str, hr_size: int, offset: int = 0) -> Dict[str, np.ndarray]:
    """One DeSRA sample from a real photo: ``lq``, ``mse``, ``gan``, ``mask`` (uint8 0/255) and ``pseudo``."""
    img = skimage_photo_bgr(name)
    h, w = img.shape[:2]
    top, left = (h - hr_size) // 2 + offset, (w - hr_size) // 2 + offset
    hr = img[top:top + hr_size, left:left + hr_size].copy()
    lq = cv2.resize(hr, (hr_size // 4, hr_size // 4), interpolation=cv2.INTER_AREA)
    mse = cv2.GaussianBlur(hr, (0, 0), 1.5)
    gan = hr.copy()
    bt, bl, bh, bw = artifact_box(hr_size)
    yy, xx = np.mgrid[0:bh, 0:bw]
    pattern = np.where((yy // 2 + xx // 2) % 2 == 0, 70, -70)[:, :, None]
    gan[bt:bt + bh, bl:bl + bw] = np.clip(gan[bt:bt + bh, bl:bl + bw].astype(int) + pattern, 0, 255).astype(np.uint8)
    mask = np.zeros((hr_size, hr_size), np.uint8)
    mask[bt:bt + bh, bl:bl + bw] = 255
    pseudo = np.where(mask[:, :, None] > 127, mse, gan)
    return dict(lq=lq, mse=mse, gan=gan, mask=mask, pseudo=pseudo)


def make_split(root: str,
               hr_size: int,
               names: Sequence[str] = PHOTOS,
               keys: Sequence[str] = ('lq', 'mse', 'gan', 'mask', 'pseudo'),
               ext: str = '.png') -> Dict[str, str]:
    """Write one split as ``root/<key>/<name><ext>`` (masks always PNG); returns ``{key: folder}``."""
    folders = {key: osp.join(root, key) for key in keys}
    for i, name in enumerate(names):
        sample = make_sample(name, hr_size, offset=3 * i)
        for key, folder in folders.items():
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(osp.join(folder, name + ('.png' if key == 'mask' else ext)), sample[key])
    return folders


def make_tiny_data(cwd: str) -> None:
    """The data the tiny twins name: ``cwd/datasets/desra_tiny/{train,val}/{lq,mse,gan,mask}``.

    Training HR images are 64x64 (LR 16x16); validation HR 72x72 (LR 18x18, not a multiple of SwinIR's window 4,
    so the padding in ``test()`` runs).
    """
    make_split(osp.join(cwd, 'datasets', 'desra_tiny', 'train'), 64, keys=('lq', 'mse', 'gan', 'mask'))
    make_split(osp.join(cwd, 'datasets', 'desra_tiny', 'val'), 72, names=PHOTOS[:2], keys=('lq', 'mse', 'gan', 'mask'))


def save_weights(opt: dict, cwd: str, seed: int = 0, g_keys=('params', 'params_ema')) -> None:
    """Save randomly initialised ``network_g`` (and ``network_d`` if a pretrained D is named) where ``opt`` says.

    Imitates the released files: G with ``g_keys`` entries, D with ``params``.
    """
    from basicsr.archs import build_network
    torch.manual_seed(seed)
    path_opt = opt['path']
    for net, keys in (('g', g_keys), ('d', ('params', ))):
        target = path_opt.get(f'pretrain_network_{net}')
        if target is None:
            continue
        state = build_network(copy.deepcopy(opt[f'network_{net}'])).state_dict()
        target = osp.join(cwd, target)
        os.makedirs(osp.dirname(target), exist_ok=True)
        torch.save({key: state for key in keys}, target)


def make_vgg19_file(path: str) -> None:
    """A randomly initialised torchvision VGG19 state dict at ``path`` (what BasicSR loads for perceptual losses).

    Conv weights are He-normal; the classifier (unused by the perceptual loss) is zero, which is fast to build.
    """
    from torchvision.models import vgg19
    with torch.device('meta'):
        shapes = {k: v.shape for k, v in vgg19().state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        if key.startswith('features') and key.endswith('weight'):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in)**0.5
        else:
            state[key] = torch.zeros(shape)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(state, path)


def install_vgg(vgg_file: str, cwd: str) -> None:
    """Link the session's VGG19 file to ``cwd/experiments/pretrained_models/vgg19-dcbb9e9d.pth``."""
    target = osp.join(cwd, VGG_RELATIVE)
    os.makedirs(osp.dirname(target), exist_ok=True)
    if not osp.exists(target):
        os.symlink(vgg_file, target)


def in_process_options(opt: dict, cwd: str, is_train: bool = True, name: Optional[str] = None) -> dict:
    """What BasicSR's ``parse_options`` adds to an option dict (CPU, non-distributed), for building in-process."""
    opt = copy.deepcopy(opt)
    opt.update(is_train=is_train, dist=False, rank=0, world_size=1, num_gpu=0, auto_resume=False)
    if name:
        opt['name'] = name
    root = osp.join(cwd, 'experiments', opt['name'])
    opt['path'].update(
        experiments_root=root,
        models=osp.join(root, 'models'),
        training_states=osp.join(root, 'training_states'),
        log=root,
        visualization=osp.join(root, 'visualization'))
    for phase, dataset in opt.get('datasets', {}).items():
        dataset.update(phase=phase.split('_')[0], scale=opt['scale'])
    return opt


def prepare(cwd: str, opt: dict, vgg19_file: str) -> None:
    """Data, weights and VGG19 file the option file names, relative to ``cwd``."""
    make_tiny_data(cwd)
    save_weights(opt, cwd)
    install_vgg(vgg19_file, cwd)
