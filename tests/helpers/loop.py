"""Tiny batches of real LR photo crops and the demo models, for ``desra loop`` tests."""
import os
import os.path as osp
from typing import Dict, List, Sequence

import cv2
import numpy as np

from helpers.paths import REPO_ROOT

#: The demo's GAN-SR model, its discriminator and its MSE-SR twin, as ``desra loop`` options.
PRETRAINED = osp.join(REPO_ROOT, 'experiments', 'pretrained_models')
DEMO_MODELS = [
    '--gan-opt', osp.join(REPO_ROOT, 'options', 'demo_train_gan.yml'),
    '--gan-weights', osp.join(PRETRAINED, 'demo_gan_x4.pth'),
    '--netd-weights', osp.join(PRETRAINED, 'demo_gan_x4_netD.pth'),
    '--mse-opt', osp.join(REPO_ROOT, 'options', 'demo_train_mse.yml'),
    '--mse-weights', osp.join(PRETRAINED, 'demo_mse_x4.pth'),
]  # yapf: disable
#: Crops of the corpus's fine-tune photos on which the demo GAN-SR model paints artifacts (the first of each batch)
#: or none (the second).
BATCHES = {'b1': ('apple', 'aerial'), 'b2': ('bridge', 'baboon')}
#: Crops on which the demo GAN-SR model paints no artifact DeSRA-det finds.
CLEAN = ('aerial', 'baboon')


def crop_photo(name: str, size: int = 48, split: str = 'finetune') -> np.ndarray:
    """The central ``size`` x ``size`` crop of a corpus LR photo."""
    img = cv2.imread(osp.join(REPO_ROOT, 'demo_data', f'{split}_lr', f'{name}.png'))
    top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[top:top + size, left:left + size]


def make_batch(folder: str, names: Sequence[str], split: str = 'finetune') -> str:
    """Write the crops of some corpus photos into ``folder``; returns it."""
    os.makedirs(folder, exist_ok=True)
    for name in names:
        cv2.imwrite(osp.join(folder, f'{name}.png'), crop_photo(name, split=split))
    return folder


def make_batches(root: str, names: Sequence[str] = ('b1', 'b2')) -> List[str]:
    """The folders of some :data:`BATCHES` under ``root``."""
    return [make_batch(osp.join(root, name), BATCHES[name]) for name in names]


def loop_args(out: str, *batches: str, extra: Sequence[str] = ()) -> List[str]:
    """``desra loop`` arguments: the demo models, a fixed length of 2 iterations, a pool of 1."""
    return ['loop', '--input', *batches, '--out', out, *DEMO_MODELS, '--length', 'fixed', '--iters', '2',
            '--min-pool', '1', *extra]


def stage_records(out: str) -> Dict[str, dict]:
    """``OUT/loop_state.json``'s stage records by round."""
    import json
    with open(osp.join(out, 'loop_state.json')) as f:
        return json.load(f)['rounds']
