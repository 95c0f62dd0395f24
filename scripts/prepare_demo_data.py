"""Make the demo's training pairs and held-out LR photos from scikit-image's bundled photographs.

BasicSR's ``RealESRGANDataset``/``RealESRGANModel`` degrade images on the GPU (they call ``.cuda()``), so the
Real-ESRGAN-style second-order degradation is applied here, offline and on the CPU, with BasicSR's own functions
(``basicsr.data.degradations``: mixed anisotropic/isotropic/generalised/plateau blur kernels, sinc filters,
Gaussian and Poisson noise, JPEG), with a fixed seed so every run writes the same files.

Photos are split once and never mixed (``TRAIN_PHOTOS`` / ``HELDOUT_PHOTOS``):

* training: ``<out>/train/{gt,lq}/<photo>_dNN.png`` (``--variants`` degraded copies per photo, x4), the data of
  ``options/demo_train_mse.yml`` and ``options/demo_train_gan.yml``;
* held-out: ``<heldout>/<photo>.png``, "real" LR inputs of the demo: the photo as a web photo would be, halved
  (area interpolation) and JPEG-compressed at quality ``HELDOUT_JPEG_QUALITY``; no synthetic blur or noise, so
  the GAN-SR model meets real image content it was not trained on.

Usage (from the repository root)::

    .venv/bin/python scripts/prepare_demo_data.py --out datasets/demo --heldout demo_data/heldout_lr
"""
import argparse
import math
import random
import os.path as osp
import sys
from typing import Dict, Tuple

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import desra_basicsr  # noqa: F401,E402  (compat fixes before BasicSR imports)
from basicsr.data.degradations import circular_lowpass_kernel  # noqa: E402
from basicsr.data.degradations import random_add_gaussian_noise, random_add_poisson_noise  # noqa: E402
from basicsr.data.degradations import random_mixed_kernels  # noqa: E402
from desra_basicsr.image_io import to_bgr_uint8, write_image  # noqa: E402

# scikit-image file names (skimage/data/), all bundled with the wheel.
TRAIN_PHOTOS = ('astronaut.png', 'motorcycle_left.png', 'motorcycle_right.png', 'hubble_deep_field.jpg', 'retina.jpg',
                'ihc.png', 'brick.png', 'grass.png', 'gravel.png', 'camera.png', 'moon.png', 'coins.png')
HELDOUT_PHOTOS = ('chelsea.png', 'coffee.png', 'rocket.jpg')

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
HELDOUT_JPEG_QUALITY = 75


def skimage_photo(name: str) -> np.ndarray:
    """Read one of scikit-image's bundled photos as HxWx3 uint8 BGR.

    Args:
        name (str): File name inside ``skimage/data``.

    Returns:
        np.ndarray: The photo.
    """
    import skimage.data
    path = osp.join(osp.dirname(skimage.data.__file__), name)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f'{path}: scikit-image photo not found')
    return to_bgr_uint8(img, path)


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


def main() -> None:
    """Write the training pairs and the held-out LR photos."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='datasets/demo', help='training pairs folder (train/gt, train/lq)')
    parser.add_argument('--heldout', default='demo_data/heldout_lr', help='held-out LR photos folder')
    parser.add_argument('--variants', type=int, default=8, help='degraded copies per training photo')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    random.seed(args.seed)  # BasicSR's random_mixed_kernels draws the kernel type with Python's random
    np.random.seed(args.seed)
    rng = np.random.RandomState(args.seed)
    for name in TRAIN_PHOTOS:
        gt = crop_to_multiple(skimage_photo(name), 4)
        for k in range(args.variants):
            key = f'{osp.splitext(name)[0]}_d{k:02d}.png'
            write_image(osp.join(args.out, 'train', 'gt', key), gt)
            write_image(osp.join(args.out, 'train', 'lq', key), degrade(gt, 4, rng))
    for name in HELDOUT_PHOTOS:
        photo = crop_to_multiple(skimage_photo(name), 2)
        half = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
        lr = _jpeg(half.astype(np.float32) / 255., HELDOUT_JPEG_QUALITY)
        write_image(osp.join(args.heldout, f'{osp.splitext(name)[0]}.png'), np.round(lr * 255.).astype(np.uint8))
    print(f'{len(TRAIN_PHOTOS)} x {args.variants} training pairs in {args.out}/train, '
          f'{len(HELDOUT_PHOTOS)} held-out LR photos in {args.heldout}')


if __name__ == '__main__':
    main()
