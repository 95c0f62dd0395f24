"""Build the demo's real-photo corpus from the photos listed in ``demo_data/manifest.csv``.

Every photo comes from a package reachable offline: scikit-image's bundled photos (installed by ``make setup``)
and Debian's ``lomiri-wallpapers-16.04``, ``lomiri-wallpapers-20.04``, ``mate-backgrounds`` and ``opencv-doc``
(``apt-get install`` them first; the script names what is missing). The manifest fixes each photo's split once
(:mod:`desra_basicsr.demo_corpus`). For every photo the HR image is the photo shrunk (area interpolation) so its
longer side is at most ``--hr-size`` pixels, cropped to a multiple of 4. Then:

* ``train`` photos: ``<out>/train/{gt,lq}/<photo>_dNN.png``, ``--variants`` copies per photo degraded with
  Real-ESRGAN's second-order degradation (BasicSR's ``basicsr.data.degradations``: mixed blur kernels, sinc
  filters, Gaussian / Poisson noise, JPEG, random resizes) on the CPU, with a fixed seed: the data of
  ``options/demo_train_mse.yml`` and ``options/demo_train_gan.yml``. (BasicSR's ``RealESRGANDataset`` /
  ``RealESRGANModel`` degrade on the GPU, hence offline here.)
* ``finetune`` and ``heldout`` photos: real LR inputs, ``demo_data/<split>_lr/<photo>.png``: the HR image as a web
  photo would be, shrunk x4 (area) and JPEG-compressed at quality ``LR_JPEG_QUALITY``; no synthetic blur or noise.
  These are committed; ``make demo`` needs nothing else.
* every photo's HR image: ``<out>/hr/<photo>.png`` (ground truth for PSNR / SSIM in the benchmarks).

Usage (from the repository root)::

    apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds opencv-doc
    .venv/bin/python scripts/prepare_demo_data.py
"""
import argparse
import math
import random
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np
from tqdm import tqdm

import desra_basicsr  # noqa: F401  (compat fixes before BasicSR imports)
from basicsr.data.degradations import circular_lowpass_kernel
from basicsr.data.degradations import random_add_gaussian_noise, random_add_poisson_noise
from basicsr.data.degradations import random_mixed_kernels
from desra_basicsr.demo_corpus import Photo, read_manifest, split_names
from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import read_image, write_image

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Real-ESRGAN's degradation settings (options/train_realesrgan_x4plus.yml of Real-ESRGAN).
KERNEL_LIST = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
KERNEL_PROB = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
FIRST = dict(
    sigma=(0.2, 3),
    resize=(0.15, 1.5),
    resize_prob=(0.2, 0.7, 0.1),
    noise=(1, 30),
    poisson=(0.05, 3),
    jpeg=(30, 95),
    sinc_prob=0.1,
    blur_prob=1.0)
SECOND = dict(
    sigma=(0.2, 1.5),
    resize=(0.3, 1.2),
    resize_prob=(0.3, 0.4, 0.3),
    noise=(1, 25),
    poisson=(0.05, 2.5),
    jpeg=(30, 95),
    sinc_prob=0.1,
    blur_prob=0.8)
GAUSSIAN_NOISE_PROB = 0.5
GRAY_NOISE_PROB = 0.4
FINAL_SINC_PROB = 0.8
INTERPOLATIONS = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)
LR_JPEG_QUALITY = 75
HR_SIZE = 640


def load_photo(photo: Photo) -> np.ndarray:
    """Read a manifest photo from its package as HxWx3 uint8 BGR.

    Args:
        photo (Photo): Manifest row.

    Returns:
        np.ndarray: The photo.

    Raises:
        DesraInputError: If the file is missing (naming the package to install) or unreadable.
    """
    if photo.source_package == 'scikit-image':
        import skimage.data
        path = osp.join(osp.dirname(skimage.data.__file__), photo.source_file)
    else:
        path = photo.source_file
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: photo {photo.name!r} not found; install its package: '
                              f'apt-get install {photo.source_package}')
    return read_image(path)


def hr_image(img: np.ndarray, size: int) -> np.ndarray:
    """Shrink so the longer side is at most ``size`` (area interpolation), then crop to a multiple of 4."""
    h, w = img.shape[:2]
    factor = size / max(h, w)
    if factor < 1:
        img = cv2.resize(img, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    return crop_to_multiple(img, 4)


def _blur_kernel(rng: np.random.RandomState, sigma: Tuple[float, float], sinc_prob: float) -> np.ndarray:
    kernel_size = int(rng.choice(np.arange(7, 22, 2)))
    if rng.uniform() < sinc_prob:
        omega = rng.uniform(np.pi / 3, np.pi) if kernel_size < 13 else rng.uniform(np.pi / 5, np.pi)
        return circular_lowpass_kernel(omega, kernel_size, pad_to=False)
    return random_mixed_kernels(
        KERNEL_LIST, KERNEL_PROB, kernel_size, sigma, sigma, [-math.pi, math.pi], [0.5, 4], [1, 2], noise_range=None)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a float [0, 1] BGR image through 8 bits, as BasicSR's ``add_jpg_compression``."""
    img8 = np.clip(np.round(img * 255.), 0, 255).astype(np.uint8)
    _, data = cv2.imencode('.jpg', img8, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR).astype(np.float32) / 255.


def _resize(img: np.ndarray, size: Tuple[int, int], rng: np.random.RandomState) -> np.ndarray:
    interp = INTERPOLATIONS[rng.randint(len(INTERPOLATIONS))]
    return np.clip(cv2.resize(img, size, interpolation=interp), 0, 1)


def _order(img: np.ndarray, rng: np.random.RandomState, stage: Dict, ref_hw: Tuple[int, int]) -> np.ndarray:
    """One degradation order: blur, random resize (relative to ``ref_hw``), noise."""
    if rng.uniform() < stage['blur_prob']:
        img = cv2.filter2D(img, -1, _blur_kernel(rng, stage['sigma'], stage['sinc_prob']))
    updown = rng.choice(['up', 'down', 'keep'], p=stage['resize_prob'])
    factor = {'up': rng.uniform(1, stage['resize'][1]), 'down': rng.uniform(stage['resize'][0], 1), 'keep': 1.0}
    h, w = ref_hw
    img = _resize(img, (max(8, int(w * factor[updown])), max(8, int(h * factor[updown]))), rng)
    if rng.uniform() < GAUSSIAN_NOISE_PROB:
        img = random_add_gaussian_noise(img, sigma_range=stage['noise'], gray_prob=GRAY_NOISE_PROB, clip=True)
    else:
        img = random_add_poisson_noise(img, scale_range=stage['poisson'], gray_prob=GRAY_NOISE_PROB, clip=True)
    return img


def degrade(img: np.ndarray, scale: int, rng: np.random.RandomState) -> np.ndarray:
    """Real-ESRGAN's second-order degradation of one image (numpy, CPU).

    Args:
        img (np.ndarray): HxWx3 uint8 BGR image, H and W divisible by ``scale``.
        scale (int): Overall down-scaling factor.
        rng (np.random.RandomState): Random state (BasicSR's kernel and noise helpers also draw from
            ``np.random`` and Python's ``random``, which the caller seeds).

    Returns:
        np.ndarray: ``(H/scale)x(W/scale)x3`` uint8 BGR image.
    """
    h, w = img.shape[:2]
    out = img.astype(np.float32) / 255.
    out = _order(out, rng, FIRST, (h, w))
    out = _jpeg(out, int(rng.uniform(*FIRST['jpeg'])))
    out = _order(out, rng, SECOND, (h // scale, w // scale))
    # final stage: resize to the LR size + sinc filter, and JPEG, in random order (as Real-ESRGAN does)
    lr_size = (w // scale, h // scale)
    sinc = circular_lowpass_kernel(rng.uniform(np.pi / 3, np.pi), int(rng.choice(np.arange(7, 22, 2))), pad_to=False)
    use_sinc = rng.uniform() < FINAL_SINC_PROB
    if rng.uniform() < 0.5:
        out = _resize(out, lr_size, rng)
        out = cv2.filter2D(out, -1, sinc) if use_sinc else out
        out = _jpeg(out, int(rng.uniform(*SECOND['jpeg'])))
    else:
        out = _jpeg(out, int(rng.uniform(*SECOND['jpeg'])))
        out = _resize(out, lr_size, rng)
        out = cv2.filter2D(out, -1, sinc) if use_sinc else out
    return np.clip(np.round(out * 255.), 0, 255).astype(np.uint8)


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right border so both sides are divisible by ``scale``."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def real_lr(hr: np.ndarray) -> np.ndarray:
    """The LR input of a fine-tune / held-out photo: x4 area shrink and a JPEG round trip, as a web photo."""
    h, w = hr.shape[:2]
    small = cv2.resize(hr, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    return np.round(_jpeg(small.astype(np.float32) / 255., LR_JPEG_QUALITY) * 255.).astype(np.uint8)


def main() -> None:
    """Write the training pairs, the real LR inputs of the fine-tune and held-out sets, and every HR image."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--manifest', default=osp.join(REPO_ROOT, 'demo_data', 'manifest.csv'))
    parser.add_argument('--out', default='datasets/demo', help='training pairs (train/gt, train/lq) and hr/')
    parser.add_argument('--lr-root', default=osp.join(REPO_ROOT, 'demo_data'), help='writes <split>_lr/ here')
    parser.add_argument('--hr-size', type=int, default=HR_SIZE, help='longer side of the HR images')
    parser.add_argument('--variants', type=int, default=8, help='degraded copies per training photo')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    photos = read_manifest(args.manifest)
    random.seed(args.seed)  # BasicSR's random_mixed_kernels draws the kernel type with Python's random
    np.random.seed(args.seed)
    rng = np.random.RandomState(args.seed)
    for photo in tqdm(photos, desc='corpus', unit='photo'):
        hr = hr_image(load_photo(photo), args.hr_size)
        write_image(osp.join(args.out, 'hr', f'{photo.name}.png'), hr)
        if photo.split == 'train':
            for k in range(args.variants):
                key = f'{photo.name}_d{k:02d}.png'
                write_image(osp.join(args.out, 'train', 'gt', key), hr)
                write_image(osp.join(args.out, 'train', 'lq', key), degrade(hr, 4, rng))
        else:
            write_image(osp.join(args.lr_root, f'{photo.split}_lr', f'{photo.name}.png'), real_lr(hr))
    counts = split_names(photos)
    print(f'{len(counts["train"])} x {args.variants} training pairs in {args.out}/train; '
          f'{len(counts["finetune"])} fine-tune and {len(counts["heldout"])} held-out LR photos in '
          f'{args.lr_root}/{{finetune,heldout}}_lr; HR images in {args.out}/hr')


if __name__ == '__main__':
    main()
