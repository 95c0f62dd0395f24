"""Speed, accuracy and memory of DeSRA-det.

Run (from the repository root): ``.venv/bin/python -m benchmarks.bench_detect [--pairs 3] [--skip-b5]``.

1. Indicator map D of a 2048x2048 RGB pair (a scikit-image photo upscaled; "GAN" = sharper + noise) against a
   straightforward float64 per-channel ``cv2.filter2D`` implementation of the same formula (single-threaded, as
   OpenCV runs it), timed in this process (best of 3): ratio and max abs difference, for the numpy path with its
   default strip threads (``cv2.getNumThreads()``) and with one thread (the per-core ratio), the torch CPU path
   and CUDA when available.
2. Peak RSS of ``desra detect`` on one 4096x4096 pair with SegFormer mit-b5 (random weights, segmentation at the
   config's test scale), in a subprocess (its ``VmHWM``); next to it the same command without
   segmentation on a 64x64 pair (the interpreter + torch + BasicSR baseline); both through
   :func:`benchmarks.common.run_measured`.
3. Images per minute of ``desra detect`` on 1024x1024 pairs on CPU, with the mit-b0 and mit-b5 ADE20K configs
   shipped in mmseg (random weights saved to a temporary checkpoint) and without segmentation. The model build
   (config + checkpoint load) is timed separately and excluded from the per-image rate.
"""
import argparse
import os.path as osp
import tempfile
import time

import cv2
import numpy as np
import torch

from benchmarks.common import best_time, check_counts, photo_pair, ratio, run_desra_measured, run_main, write_pairs
from desra_basicsr.tools.mmseg_weights import mit_b0_config_path, random_checkpoint


def baseline_d(y_mse, y_gan):
    """Straightforward reference: per channel, float64, cv2.filter2D with the 11x11 Gaussian."""
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T
    c = (0.03 * 255)**2
    total = np.zeros(y_mse.shape[:2])
    for ch in range(3):
        stats = []
        for img in (y_mse, y_gan):
            x = img[:, :, ch].astype(np.float64)
            mu = cv2.filter2D(x, -1, window)
            var = np.maximum(cv2.filter2D(x * x, -1, window) - mu * mu, 0)
            stats.append(var)
        v_m, v_g = stats
        total += (2 * np.sqrt(v_m * v_g) + c) / (v_m + v_g + c)
    return total / 3


def bench_indicator():
    from desra_basicsr.detection.indicator import indicator_numpy, indicator_torch
    y_mse, y_gan = photo_pair(2048)
    t_base, c_base, ref = best_time(lambda: baseline_d(y_mse, y_gan))
    print(f'[D 2048x2048] baseline float64 per-channel cv2.filter2D: {t_base:.3f} s wall, {c_base:.3f} s CPU')
    for threads in (None, 1):
        t_np, c_np, d_np = best_time(lambda: indicator_numpy(y_mse, y_gan, num_threads=threads))
        label = f'{cv2.getNumThreads()} threads (default)' if threads is None else f'{threads} thread'
        print(f'[D 2048x2048] numpy (cv2 separable, float64 moments, row strips, {label}): {t_np:.3f} s wall '
              f'({ratio(t_base, t_np)} faster), {c_np:.3f} s CPU ({ratio(c_base, c_np)}), '
              f'max abs diff {np.abs(d_np - ref).max():.2e}')
    to_t = lambda img, dev: torch.from_numpy(img).permute(2, 0, 1)[None].to(dev)  # noqa: E731
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for dev in devices:
        a, b = to_t(y_mse, dev), to_t(y_gan, dev)

        def run():
            out = indicator_torch(a, b)
            if dev == 'cuda':
                torch.cuda.synchronize()
            return out

        t_t, c_t, d_t = best_time(run)
        print(f'[D 2048x2048] torch {dev} (float64 moments): {t_t:.3f} s wall ({ratio(t_base, t_t)} faster), '
              f'{c_t:.3f} s CPU, max abs diff {np.abs(d_t[0].cpu().numpy() - ref).max():.2e}')


def bench_memory(tmp, config, checkpoint):
    big = osp.join(tmp, 'big')
    mse_dir, gan_dir = write_pairs(big, 4096, 1)
    big_run = run_desra_measured(['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', osp.join(big, 'out'),
                                  '--seg-config', config, '--seg-checkpoint', checkpoint])
    small = osp.join(tmp, 'small')
    mse_dir, gan_dir = write_pairs(small, 64, 1)
    base_run = run_desra_measured(['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', osp.join(small, 'out')])
    rss = big_run.peak_mib
    print(f'[memory] desra detect, one 4096x4096 pair, SegFormer mit-b5 (test scale): peak RSS {rss:.0f} MiB '
          f'({rss / 1024:.2f} GiB, limit 3 GiB), command {big_run.seconds:.1f} s; '
          f'baseline (64x64 pair, no segmentation): {base_run.peak_mib:.0f} MiB')


def detect_seconds(mse_dir, gan_dir, out, config=None, checkpoint=None, device='cpu'):
    """Seconds of ``desra detect`` on a folder pair without the segmentation model's build, and that build's seconds.

    The build (config and checkpoint load) is timed separately, in this process, and taken off the command's time.
    """
    from desra_basicsr.commands import main
    from desra_basicsr.detection.segmenters import build_segmenter
    build_s = 0.0
    args = ['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', out, '--device', device]
    if config is not None:
        start = time.perf_counter()
        build_segmenter('mmseg', config=config, checkpoint=checkpoint, device=device)
        build_s = time.perf_counter() - start
        args += ['--seg-config', config, '--seg-checkpoint', checkpoint]
    start = time.perf_counter()
    if main(args) != 0:
        raise RuntimeError(f'desra {" ".join(args)} failed')
    return max(time.perf_counter() - start - build_s, 1e-9), build_s


def bench_throughput(tmp, pairs, configs):
    root = osp.join(tmp, 'tp')
    mse_dir, gan_dir = write_pairs(root, 1024, pairs)
    for label, config, checkpoint in configs:
        seconds, build_s = detect_seconds(mse_dir, gan_dir, osp.join(root, f'out_{label}'), config, checkpoint)
        per_image = seconds / pairs
        print(f'[throughput] desra detect 1024x1024, {label}, CPU: {60 / per_image:.1f} images/min '
              f'({per_image:.2f} s/image over {pairs} pairs; model build {build_s:.1f} s excluded)')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pairs', type=int, default=3, help='1024x1024 pairs per throughput run')
    parser.add_argument('--skip-b5', action='store_true', help='skip the mit-b5 runs (slow on CPU)')
    args = parser.parse_args()
    check_counts(args, '--pairs')
    from desra_basicsr.detection.mmseg_segmenter import default_config_path
    print(f'torch threads: {torch.get_num_threads()}, OpenCV threads: {cv2.getNumThreads()}, '
          f'CUDA: {torch.cuda.is_available()}')
    bench_indicator()
    with tempfile.TemporaryDirectory() as tmp:
        b5, b0 = default_config_path(), mit_b0_config_path()
        configs = [('no segmentation', None, None), ('mit-b0 512', b0, random_checkpoint(b0, osp.join(tmp, 'b0.pth')))]
        if not args.skip_b5:
            configs.append(('mit-b5 640', b5, random_checkpoint(b5, osp.join(tmp, 'b5.pth'))))
        bench_throughput(tmp, args.pairs, configs)
        if not args.skip_b5:
            bench_memory(tmp, b5, configs[-1][2])


if __name__ == '__main__':
    run_main(main)
