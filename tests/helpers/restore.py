"""Data, option files and checkpoints of the restorer tests (``desra restore`` and ``desra restore train``)."""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import yaml

from helpers.photos import paint_noise, skimage_photo_bgr

#: Classes painted by :func:`write_synth_folder`, in turn.
CLASSES = ('noise', 'stripes')


def paint_stripes(img: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """Paint a diagonal stripe pattern square onto a copy of ``img``."""
    out = img.astype(np.int16)
    stripes = 40 * np.sin(np.arange(size)[None, :] * 1.7 + np.arange(size)[:, None] * 1.1)
    out[top:top + size, left:left + size] += stripes[:, :, None].astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def write_synth_folder(root: str, hr_dir: str, size: int = 48, names: Sequence[str] = ('astronaut', 'chelsea',
                                                                                       'coffee', 'rocket')) -> Dict:
    """Write a ``desra zoo synth``-style folder by hand: ``root/{img,mask}/NAME.png`` and ``root/summary.json``.

    The HR photos (``size`` x ``size`` crops of scikit-image photos) go to ``hr_dir``; each item paints one class of
    :data:`CLASSES` on a square of its photo.

    Returns:
        dict: The summary's items.
    """
    for folder in (hr_dir, osp.join(root, 'img'), osp.join(root, 'mask')):
        os.makedirs(folder, exist_ok=True)
    items = {}
    for i, name in enumerate(names):
        photo = np.ascontiguousarray(skimage_photo_bgr(name)[:size, :size])
        hr = osp.join(hr_dir, f'{name}.png')
        cv2.imwrite(hr, photo)
        cls = CLASSES[i % len(CLASSES)]
        top, side = size // 4, size // 2
        img = paint_noise(photo, top, top, side, seed=i) if cls == 'noise' else paint_stripes(photo, top, top, side)
        mask = np.zeros((size, size), np.uint8)
        mask[top:top + side, top:top + side] = 255
        cv2.imwrite(osp.join(root, 'img', f'{name}.png'), img)
        cv2.imwrite(osp.join(root, 'mask', f'{name}.png'), mask)
        items[name] = {'status': 'done', 'class': cls, 'target': hr}
    with open(osp.join(root, 'summary.json'), 'w') as f:
        json.dump({'meta': {'command': 'zoo synth'}, 'items': items}, f)
    return items


def write_options(path: str, synth: str, autoencoder: Optional[str] = None, objective: str = 'diffusion',
                  **train) -> str:
    """A tiny restorer option file over one synthetic folder (CPU: 32-pixel crops, 8-16 channels)."""
    opt = {
        'name': 'tiny',
        'data': {'synthetic': [synth]},
        'model': {'block_out_channels': [8, 16], 'layers_per_block': 1, 'autoencoder': autoencoder,
                  'objective': objective},
        'diffusion': {'train_timesteps': 50},
        'train': dict({'iters': 1, 'batch_size': 2, 'crop_size': 32, 'checkpoint_every': 1, 'seed': 0}, **train),
    }
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


def write_autoencoder(folder: str) -> str:
    """A tiny randomly initialised diffusers ``AutoencoderKL`` (downsampling by 2), saved to ``folder``."""
    import torch
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=('DownEncoderBlock2D', ) * 2,
                  up_block_types=('UpDecoderBlock2D', ) * 2, latent_channels=4, norm_num_groups=8,
                  layers_per_block=1).save_pretrained(folder)
    return folder
