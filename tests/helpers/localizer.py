"""Artifact data and logs of the localiser tests."""
import os
import os.path as osp

import cv2
import numpy as np

from helpers.photos import skimage_photo_bgr


def make_artifact_data(root: str, size: int = 64, names=('astronaut', 'chelsea', 'coffee', 'rocket')) -> dict:
    """Real-photo crops with a painted noise artifact and its 0/255 mask: ``root/{img,mask}/<name>.png``."""
    folders = {key: osp.join(root, key) for key in ('img', 'mask')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        photo = skimage_photo_bgr(name)
        img = np.ascontiguousarray(photo[:size, :size]).copy()
        mask = np.zeros((size, size), np.uint8)
        top = left = (i * 7) % (size // 2)
        side = size // 2
        noise = rng.integers(-70, 71, (side, side, 1))
        img[top:top + side, left:left + side] = np.clip(img[top:top + side, left:left + side] + noise, 0, 255)
        mask[top:top + side, left:left + side] = 255
        cv2.imwrite(osp.join(folders['img'], f'{name}.png'), img)
        cv2.imwrite(osp.join(folders['mask'], f'{name}.png'), mask)
    return folders


def mmengine_log(out: str) -> str:
    """The text of the mmengine log that ``desra localizer train --out OUT`` wrote under ``OUT/work_dir``."""
    with open(next(osp.join(root, f) for root, _, files in os.walk(osp.join(out, 'work_dir')) for f in files
                   if f.endswith('.log'))) as f:
        return f.read()
