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

Every source photo is checked before anything is written, and the corpus is built in a staging folder beside
``<out>`` and moved into place when complete, so ``<out>/hr`` only ever holds a complete corpus. A missing photo or
manifest ends the run with one ``error:`` line and exit code 2.

Usage (from the repository root)::

    apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds opencv-doc
    .venv/bin/python scripts/prepare_demo_data.py
"""
import argparse
import math
import os
import os.path as osp
import random
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

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
#: The corpus folders under ``--out``, in the order they are moved into place (``hr/`` last: later steps test for it).
CORPUS_FOLDERS = ('train', 'hr')
#: Name of the staging folders beside ``--out``: ``.<out's name>.partial-XXXX``.
STAGING_SUFFIX = '.partial-'


def photo_path(photo: Photo) -> str:
    """The file of a manifest photo: in scikit-image's data folder, or the absolute path a Debian package installs.

    Args:
        photo (Photo): Manifest row.

    Returns:
        str: The file.
    """
    if photo.source_package == 'scikit-image':
        import skimage.data
        return osp.join(osp.dirname(skimage.data.__file__), photo.source_file)
    return photo.source_file


def check_sources(photos: List[Photo]) -> None:
    """Check that every photo of the manifest is installed, before anything is written.

    Args:
        photos (list[Photo]): Manifest rows.

    Raises:
        DesraInputError: Naming the first missing file, how many are missing and the packages to install.
    """
    missing = [photo for photo in photos if not osp.isfile(photo_path(photo))]
    if missing:
        packages = ' '.join(sorted({photo.source_package for photo in missing}))
        others = f' (and {len(missing) - 1} more photos)' if len(missing) > 1 else ''
        raise DesraInputError(f'{photo_path(missing[0])}: photo {missing[0].name!r} not found{others}; install its '
                              f'package: apt-get install {packages}')


def load_photo(photo: Photo) -> np.ndarray:
    """Read a manifest photo from its package as HxWx3 uint8 BGR.

    Args:
        photo (Photo): Manifest row.

    Returns:
        np.ndarray: The photo.

    Raises:
        DesraInputError: If the file is missing (naming the package to install) or unreadable.
    """
    check_sources([photo])
    return read_image(photo_path(photo))


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


def _staging_folder(out: str) -> str:
    """A new temporary folder beside ``out`` (same file system, so its contents can be renamed into place).

    Staging folders that an interrupted run left beside ``out`` are removed first.
    """
    parent, name = osp.split(osp.abspath(out))
    prefix = f'.{name}{STAGING_SUFFIX}'
    os.makedirs(parent, exist_ok=True)
    for entry in os.listdir(parent):
        if entry.startswith(prefix) and osp.isdir(osp.join(parent, entry)):
            shutil.rmtree(osp.join(parent, entry))
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def install(staged: str, out: str, lr_root: str) -> None:
    """Move a finished corpus from its staging folder into place.

    The LR images replace their files one by one (each rename is atomic; the committed ones are rewritten with the
    same bytes); then ``train/`` and last ``hr/`` (the folder later steps test for) each replace their folder under
    ``out``, whose other contents are kept.

    Args:
        staged (str): The staging folder: ``lr/<split>_lr/``, ``train/``, ``hr/``.
        out (str): The corpus folder (``--out``).
        lr_root (str): Where the ``<split>_lr/`` folders go (``--lr-root``).
    """
    lr_staged = osp.join(staged, 'lr')
    for folder in sorted(os.listdir(lr_staged)) if osp.isdir(lr_staged) else []:
        os.makedirs(osp.join(lr_root, folder), exist_ok=True)
        for name in sorted(os.listdir(osp.join(lr_staged, folder))):
            os.replace(osp.join(lr_staged, folder, name), osp.join(lr_root, folder, name))
    os.makedirs(out, exist_ok=True)
    for folder in CORPUS_FOLDERS:
        target = osp.join(out, folder)
        if osp.exists(target):  # the previous corpus goes into the staging folder, removed with it
            os.rename(target, osp.join(staged, f'previous_{folder}'))
        os.rename(osp.join(staged, folder), target)


def build(photos: List[Photo], staged: str, args: argparse.Namespace) -> None:
    """Write every HR image, the training pairs and the real LR inputs into the staging folder."""
    random.seed(args.seed)  # BasicSR's random_mixed_kernels draws the kernel type with Python's random
    np.random.seed(args.seed)
    rng = np.random.RandomState(args.seed)
    for photo in tqdm(photos, desc='corpus', unit='photo'):
        hr = hr_image(load_photo(photo), args.hr_size)
        write_image(osp.join(staged, 'hr', f'{photo.name}.png'), hr)
        if photo.split == 'train':
            for k in range(args.variants):
                key = f'{photo.name}_d{k:02d}.png'
                write_image(osp.join(staged, 'train', 'gt', key), hr)
                write_image(osp.join(staged, 'train', 'lq', key), degrade(hr, 4, rng))
        else:
            write_image(osp.join(staged, 'lr', f'{photo.split}_lr', f'{photo.name}.png'), real_lr(hr))
    for folder in CORPUS_FOLDERS:  # a manifest without training photos: an empty train/
        os.makedirs(osp.join(staged, folder), exist_ok=True)


def main(argv: Optional[List[str]] = None) -> int:
    """Write the training pairs, the real LR inputs of the fine-tune and held-out sets, and every HR image.

    Nothing reaches ``--out`` or ``--lr-root`` before the whole corpus is built (in a staging folder beside
    ``--out``), so an interrupted run leaves the previous corpus, or none, never part of one.

    Args:
        argv (list[str] | None): Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        int: 0, or 2 when an input is missing or unusable (one ``error:`` line on stderr).
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--manifest', default=osp.join(REPO_ROOT, 'demo_data', 'manifest.csv'))
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'datasets', 'demo'),
                        help='training pairs (train/gt, train/lq) and hr/ (default: the repository\'s datasets/demo)')
    parser.add_argument('--lr-root', default=osp.join(REPO_ROOT, 'demo_data'), help='writes <split>_lr/ here')
    parser.add_argument('--hr-size', type=int, default=HR_SIZE, help='longer side of the HR images')
    parser.add_argument('--variants', type=int, default=8, help='degraded copies per training photo')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    try:
        photos = read_manifest(args.manifest)
        check_sources(photos)
        staged = _staging_folder(args.out)
        try:
            build(photos, staged, args)
            install(staged, args.out, args.lr_root)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    except DesraInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    counts = split_names(photos)
    print(f'{len(counts["train"])} x {args.variants} training pairs in {args.out}/train; '
          f'{len(counts["finetune"])} fine-tune and {len(counts["heldout"])} held-out LR photos in '
          f'{args.lr_root}/{{finetune,heldout}}_lr; HR images in {args.out}/hr')
    return 0


if __name__ == '__main__':
    sys.exit(main())
