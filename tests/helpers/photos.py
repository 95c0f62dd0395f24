"""Real photos bundled with scikit-image, and painted artifacts on them."""
import os
import os.path as osp
import struct
from typing import Dict, Sequence

import cv2
import numpy as np

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')


def skimage_photo_bgr(name: str) -> np.ndarray:
    """A photo bundled with scikit-image, as HxWx3 uint8 BGR."""
    from skimage import data
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3][:, :, ::-1])


def jpeg_with_orientation(img: np.ndarray, orientation: int) -> bytes:
    """``img`` encoded as JPEG with an EXIF block holding only the orientation tag (1-8), as cameras write it."""
    ok, encoded = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b'II*\x00' + struct.pack('<IHHHIHHI', 8, 1, 0x0112, 3, 1, orientation, 0, 0)  # one IFD entry: SHORT 6
    app1 = b'Exif\x00\x00' + tiff
    data = encoded.tobytes()
    return data[:2] + b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1 + data[2:]


def write_quarter_photos(folder: str, names: Sequence[str] = ('chelsea', 'coffee')) -> str:
    """Write photos shrunk to a quarter of their size (area interpolation) as ``folder/<name>.png``; return folder."""
    os.makedirs(folder, exist_ok=True)
    for name in names:
        photo = cv2.resize(skimage_photo_bgr(name), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
        cv2.imwrite(osp.join(folder, f'{name}.png'), photo)
    return folder


def make_paired_sr_data(root: str, scale: int = 4, gt_size: int = 96, names: Sequence[str] = PHOTOS) -> Dict[str, str]:
    """Write GT crops of real photos and their bicubic x``scale`` LR images as ``root/{gt,lq}/<name>.png``.

    Returns:
        dict: ``{'gt': folder, 'lq': folder}``.
    """
    folders = {key: osp.join(root, key) for key in ('gt', 'lq')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for name in names:
        img = skimage_photo_bgr(name)
        h, w = img.shape[:2]
        top, left = (h - gt_size) // 2, (w - gt_size) // 2
        gt = img[top:top + gt_size, left:left + gt_size]
        lq = cv2.resize(gt, (gt_size // scale, gt_size // scale), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(osp.join(folders['gt'], f'{name}.png'), gt)
        cv2.imwrite(osp.join(folders['lq'], f'{name}.png'), lq)
    return folders


def paint_noise(img: np.ndarray, top: int, left: int, size: int, seed: int) -> np.ndarray:
    """Paint a high-frequency noise square (a GAN-like texture artifact) onto a copy of ``img``."""
    out = img.copy()
    noise = np.random.default_rng(seed).integers(-60, 61, (size, size, 1))
    patch = out[top:top + size, left:left + size].astype(np.int64) + noise
    out[top:top + size, left:left + size] = np.clip(patch, 0, 255).astype(np.uint8)
    return out


def make_pair(name, top, left, h, w, seed=0):
    """Simulated SR pair: MSE-SR = the photo slightly blurred; GAN-SR = the photo plus painted artifact texture."""
    photo = skimage_photo_bgr(name)
    mse = cv2.GaussianBlur(photo, (0, 0), 1.0)
    gan = photo.astype(np.int16)
    rng = np.random.default_rng(seed)
    stripes = 25 * np.sin(np.arange(w)[None, :] * 2.2 + np.arange(h)[:, None] * 0.9)
    gan[top:top + h, left:left + w] += (stripes[:, :, None] + rng.normal(0, 12, (h, w, 3))).astype(np.int16)
    gt = np.zeros(photo.shape[:2], bool)
    gt[top:top + h, left:left + w] = True
    return mse, np.clip(gan, 0, 255).astype(np.uint8), gt
