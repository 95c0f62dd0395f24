"""Throughput and peak memory of ``desra evaluate`` and ``desra calibrate`` on 1024x1024 inputs.

Run (from the repository root): ``.venv/bin/python -m benchmarks.bench_evaluate [--count 500] [--calibrate-count 500]``.

* ``desra evaluate`` scores ``--count`` pairs of 1024x1024 masks (detections with several regions against
  shifted, partly overlapping GT masks, every pair different).
* ``desra calibrate`` (no segmenter) streams ``--calibrate-count`` MSE-SR / GAN-SR pairs of 1024x1024 images
  made from scikit-image photos with a painted high-frequency texture in the "GAN" image. To keep the temporary
  folder small, 20 distinct pairs are written and the rest of the file names are hard links to them (each file
  is still read and processed).

Each command runs in its own subprocess (:func:`benchmarks.common.run_measured`), which reports its peak RSS
(``VmHWM``), its growth over the bare interpreter's RSS and the time of the command (imports included), so the
figures are the command's own.
Memory flatness is shown by running each command on a tenth of the images as well. Baselines, timed in this
process on a few images: the authors' released metric scripts' per-region loop (one full-size mask per region)
for evaluate, and collecting every D value and calling ``np.percentile`` for calibrate. The calibrate baseline's
modules (the indicator, hence torch) are imported with this module, so neither its time nor its memory pays the
import; its memory growth per image is the slope between the RSS after half of its images and after all of them.
``--commands`` runs only some of the two commands (each with its baseline).
"""
import argparse
import os
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from benchmarks.common import check_counts, ratio, run_desra_measured, run_main
# Imported here, not in the baseline: the baseline's time and memory are then its own, not torch's import.
from desra_basicsr.detection.indicator import indicator_numpy
from desra_basicsr.image_io import read_image

SIZE = 1024


def run_command(args):
    """Run ``desra <args>`` in a subprocess.

    Returns:
        tuple: seconds of the command, peak RSS (MiB), and the peak's growth over the RSS of the bare interpreter
        (MiB): what the command itself imported and allocated.
    """
    run = run_desra_measured(args)
    return run.seconds, run.peak_mib, run.peak_mib - run.start_mib


def random_mask(rng, shift=0):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(rng.integers(3, 9)):
        centre = (int(rng.integers(100, SIZE - 100)) + shift, int(rng.integers(100, SIZE - 100)))
        axes = (int(rng.integers(20, 120)), int(rng.integers(20, 120)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return mask


def make_masks(root, count):
    pred_dir, gt_dir = osp.join(root, 'pred'), osp.join(root, 'gt')
    os.makedirs(pred_dir)
    os.makedirs(gt_dir)
    for i in range(count):
        rng = np.random.default_rng(i)
        gt = random_mask(rng)
        pred = np.roll(gt, int(rng.integers(-40, 40)), axis=1)
        pred[random_mask(np.random.default_rng(10**6 + i)) > 0] = 255
        cv2.imwrite(osp.join(gt_dir, f'{i:04d}.png'), gt)
        cv2.imwrite(osp.join(pred_dir, f'{i:04d}.png'), pred)
    return pred_dir, gt_dir


def make_pairs(root, count, distinct=20):
    from skimage import data
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    mse_dir, gan_dir = osp.join(root, 'mse'), osp.join(root, 'gan')
    os.makedirs(mse_dir)
    os.makedirs(gan_dir)
    for i in range(count):
        name = f'{i:04d}.png'
        if i >= distinct:
            for folder in (mse_dir, gan_dir):
                os.link(osp.join(folder, f'{i % distinct:04d}.png'), osp.join(folder, name))
            continue
        rng = np.random.default_rng(i)
        photo = cv2.resize(photos[i % len(photos)][:, :, ::-1], (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        mse = cv2.GaussianBlur(photo, (0, 0), 1.5)
        gan = mse.astype(np.int16)
        y, x = rng.integers(0, SIZE - 256, 2)
        gan[y:y + 256, x:x + 256] += rng.integers(-40, 41, (256, 256, 1), dtype=np.int16)
        cv2.imwrite(osp.join(mse_dir, name), mse)
        cv2.imwrite(osp.join(gan_dir, name), np.clip(gan, 0, 255).astype(np.uint8))
    return mse_dir, gan_dir


def released_loop_scores(pred_dir, gt_dir, names):
    """The authors' metric scripts' approach: one full-size mask per region, IoU + precision + recall."""
    for name in names:
        pred = cv2.imread(osp.join(pred_dir, name), cv2.IMREAD_GRAYSCALE)
        gt = cv2.imread(osp.join(gt_dir, name), cv2.IMREAD_GRAYSCALE)
        _ = np.sum((pred > 127) & (gt > 127)) / np.sum((pred > 127) | (gt > 127))
        for a, b in ((pred, gt), (gt, pred)):
            n, labels = cv2.connectedComponents(a, connectivity=8)
            for i in range(1, n):
                region = np.zeros_like(a)
                region[labels == i] = 1
                _ = np.sum(np.asarray(region, 'int32') & np.asarray(b / 255, 'int32')) / np.sum(region)


def rss_mib() -> float:
    """This process's resident memory now (``VmRSS``), MiB."""
    with open('/proc/self/status') as f:
        return int(next(line.split()[1] for line in f if line.startswith('VmRSS:'))) / 1024


def percentile_baseline(mse_dir: str, gan_dir: str, names: List[str], q: float) -> Tuple[float, Dict[int, float]]:
    """Collect every D value, then ``np.percentile`` (memory grows with the data set).

    Args:
        mse_dir (str): MSE-SR images.
        gan_dir (str): GAN-SR images of the same names.
        names (list[str]): The file names to read.
        q (float): The percentile.

    Returns:
        tuple: The percentile, and this process's RSS (MiB) after each image, by the count of images read.
    """
    values, rss = [], {}
    for count, name in enumerate(names, start=1):
        values.append(indicator_numpy(read_image(osp.join(mse_dir, name)), read_image(osp.join(gan_dir, name))).ravel())
        rss[count] = rss_mib()
    return float(np.percentile(np.concatenate(values), q)), rss


def memory_slope(rss: Dict[int, float]) -> Optional[float]:
    """MiB per image between the RSS after half of the images and after all of them (None: fewer than 2 images).

    The difference of two counts leaves out what was there before the first image (imports, buffers), which a
    total divided by the count would spread over the images.
    """
    total = max(rss, default=0)
    if total < 2:
        return None
    half = total // 2
    return (rss[total] - rss[half]) / (total - half)


def bench_evaluate_command(root: str, count: int, baseline_count: int) -> None:
    """``desra evaluate`` on ``count`` mask pairs against the released scripts' loop (see the module docstring)."""
    pred_dir, gt_dir = make_masks(osp.join(root, 'masks'), count)
    small = osp.join(root, 'masks_small')
    os.makedirs(osp.join(small, 'pred'))
    os.makedirs(osp.join(small, 'gt'))
    names = sorted(os.listdir(pred_dir))
    n_small = max(1, count // 10)
    for name in names[:n_small]:
        for sub in ('pred', 'gt'):
            os.link(osp.join(root, 'masks', sub, name), osp.join(small, sub, name))
    _, rss_small, grow_small = run_command(['evaluate', '--pred', osp.join(small, 'pred'), '--gt',
                                            osp.join(small, 'gt')])
    sec, rss, grow = run_command(['evaluate', '--pred', pred_dir, '--gt', gt_dir, '--json',
                                  osp.join(root, 'scores.json')])
    base_names = names[:baseline_count]
    start = time.perf_counter()
    released_loop_scores(pred_dir, gt_dir, base_names)
    base_rate = len(base_names) / (time.perf_counter() - start)
    rate = count / sec
    print(f'desra evaluate: {count} masks in {sec:.1f} s = {rate:.1f} img/s (imports included); peak RSS '
          f'{rss:.0f} MiB, {grow:.0f} MiB above the bare interpreter ({n_small} masks: {rss_small:.0f} MiB, '
          f'+{grow_small:.0f} MiB)')
    print(f'  released-script loop baseline: {base_rate:.1f} img/s; ratio {ratio(rate, base_rate, 1)}')


def bench_calibrate_command(root: str, count: int, baseline_count: int) -> None:
    """``desra calibrate`` on ``count`` image pairs against collect-all + ``np.percentile`` (see the module
    docstring)."""
    mse_dir, gan_dir = make_pairs(osp.join(root, 'pairs'), count)
    n_small = max(1, count // 10)
    small = osp.join(root, 'pairs_small')
    for sub in ('mse', 'gan'):
        os.makedirs(osp.join(small, sub))
        for name in sorted(os.listdir(osp.join(root, 'pairs', sub)))[:n_small]:
            os.link(osp.join(root, 'pairs', sub, name), osp.join(small, sub, name))
    _, rss_small, grow_small = run_command(['calibrate', '--mse', osp.join(small, 'mse'), '--gan',
                                            osp.join(small, 'gan'), '--out', osp.join(root, 'w_small.yml')])
    sec, rss, grow = run_command(['calibrate', '--mse', mse_dir, '--gan', gan_dir, '--out', osp.join(root, 'w.yml')])
    rate = count / sec
    print(f'desra calibrate (no segmenter): {count} pairs in {sec:.1f} s = {rate:.2f} img/s '
          f'(imports included); peak RSS {rss:.0f} MiB, {grow:.0f} MiB above the bare interpreter '
          f'({n_small} pairs: {rss_small:.0f} MiB, +{grow_small:.0f} MiB)')
    pair_names = sorted(os.listdir(mse_dir))[:baseline_count]
    start = time.perf_counter()
    _, rss_after = percentile_baseline(mse_dir, gan_dir, pair_names, 85)
    base_rate = len(pair_names) / (time.perf_counter() - start)
    slope = memory_slope(rss_after)
    half = len(pair_names) // 2
    growth = (f'its memory grows {slope:.1f} MiB per image (RSS {rss_after[half]:.0f} MiB after {half} images, '
              f'{rss_after[len(pair_names)]:.0f} MiB after {len(pair_names)})' if slope is not None else
              'its memory slope needs --baseline-count >= 2')
    print(f'  collect-all + np.percentile baseline: {base_rate:.2f} img/s; ratio {ratio(rate, base_rate)}; {growth}')


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=500, help='mask pairs for desra evaluate')
    parser.add_argument('--calibrate-count', type=int, default=500, help='image pairs for desra calibrate')
    parser.add_argument('--baseline-count', type=int, default=10, help='images for the in-process baselines')
    parser.add_argument('--commands', nargs='+', choices=('evaluate', 'calibrate'), default=['evaluate', 'calibrate'],
                        help='the commands to time (default: both)')
    args = parser.parse_args()
    check_counts(args, '--count', '--calibrate-count', '--baseline-count')
    print(f'{os.cpu_count()} CPU(s); inputs {SIZE}x{SIZE}')
    with tempfile.TemporaryDirectory(prefix='bench_evaluate_') as root:
        if 'evaluate' in args.commands:
            bench_evaluate_command(root, args.count, args.baseline_count)
        if 'calibrate' in args.commands:
            bench_calibrate_command(root, args.calibrate_count, args.baseline_count)


if __name__ == '__main__':
    run_main(main)
