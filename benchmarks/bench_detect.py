"""Speed, accuracy and memory of DeSRA-det.

Run: ``.venv/bin/python benchmarks/bench_detect.py [--pairs 3] [--skip-b5]``.

1. Indicator map D of a 2048x2048 RGB pair (a scikit-image photo upscaled; "GAN" = sharper + noise) against a
   straightforward float64 per-channel ``cv2.filter2D`` implementation of the same formula (single-threaded, as
   OpenCV runs it), timed in this process (best of 3): ratio and max abs difference, for the numpy path with its
   default strip threads (``cv2.getNumThreads()``) and with one thread (the per-core ratio), the torch CPU path
   and CUDA when available.
2. Peak RSS of ``desra detect`` on one 4096x4096 pair with SegFormer mit-b5 (random weights, segmentation at the
   config's test scale), in a subprocess (``VmHWM`` of ``/proc/self/status``); next to it the same command without
   segmentation on a 64x64 pair (the interpreter + torch + BasicSR baseline).
3. Images per minute of ``desra detect`` on 1024x1024 pairs on CPU, with the mit-b0 and mit-b5 ADE20K configs
   shipped in mmseg (random weights saved to a temporary checkpoint) and without segmentation. The model build
   (config + checkpoint load) is timed separately and excluded from the per-image rate.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

# Peak RSS from /proc/self/status VmHWM: getrusage's ru_maxrss survives fork + exec on Linux, so a child would report
# this (large) benchmark process's peak instead of its own.
RUNNER = ('import sys, time; from desra_basicsr.commands import main; t = time.perf_counter(); '
          'rc = main(sys.argv[1:]); print("RUN_S", time.perf_counter() - t); '
          'hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")]; '
          'print("PEAK_RSS_KB", hwm[0]); sys.exit(rc)')


def photo_pair(size, name='astronaut', seed=0):
    """A realistic-looking SR pair: MSE-SR = smooth upscale, GAN-SR = sharpened upscale + fine noise."""
    from skimage import data
    photo = np.ascontiguousarray(getattr(data, name)()[:, :, :3][:, :, ::-1])
    mse = cv2.resize(photo, (size, size), interpolation=cv2.INTER_CUBIC)
    sharp = cv2.addWeighted(mse, 1.8, cv2.GaussianBlur(mse, (0, 0), 2), -0.8, 0)
    noise = np.random.default_rng(seed).normal(0, 6, mse.shape)
    return mse, np.clip(sharp + noise, 0, 255).astype(np.uint8)


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


def best_time(fn, repeat=3):
    """Best wall time, best CPU time (all threads of this process; steadier on a shared machine), last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus), out


def bench_indicator():
    from desra_basicsr.detection.indicator import indicator_numpy, indicator_torch
    y_mse, y_gan = photo_pair(2048)
    t_base, c_base, ref = best_time(lambda: baseline_d(y_mse, y_gan))
    print(f'[D 2048x2048] baseline float64 per-channel cv2.filter2D: {t_base:.3f} s wall, {c_base:.3f} s CPU')
    for threads in (None, 1):
        t_np, c_np, d_np = best_time(lambda: indicator_numpy(y_mse, y_gan, num_threads=threads))
        label = f'{cv2.getNumThreads()} threads (default)' if threads is None else f'{threads} thread'
        print(f'[D 2048x2048] numpy (cv2 separable, float64 moments, row strips, {label}): {t_np:.3f} s wall '
              f'({t_base / t_np:.2f}x faster), {c_np:.3f} s CPU ({c_base / c_np:.2f}x), '
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
        print(f'[D 2048x2048] torch {dev} (float64 moments): {t_t:.3f} s wall ({t_base / t_t:.2f}x faster), '
              f'{c_t:.3f} s CPU, max abs diff {np.abs(d_t[0].cpu().numpy() - ref).max():.2e}')


def random_checkpoint(config, path):
    """Random-weight checkpoint of an mmseg config (no download)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    return path


def write_pairs(root, size, count):
    mse_dir, gan_dir = osp.join(root, 'mse'), osp.join(root, 'gan')
    os.makedirs(mse_dir)
    os.makedirs(gan_dir)
    names = ['astronaut', 'chelsea', 'coffee', 'rocket']
    for i in range(count):
        mse, gan = photo_pair(size, names[i % len(names)], seed=i)
        cv2.imwrite(osp.join(mse_dir, f'{i:03d}.png'), mse)
        cv2.imwrite(osp.join(gan_dir, f'{i:03d}.png'), gan)
    return mse_dir, gan_dir


def run_subprocess(args):
    proc = subprocess.run([sys.executable, '-c', RUNNER] + args,
                          cwd=REPO,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'desra {" ".join(args)} failed:\n{proc.stderr[-2000:]}')
    found = dict(line.split() for line in proc.stdout.splitlines() if line.startswith(('RUN_S', 'PEAK_RSS_KB')))
    return float(found['RUN_S']), int(found['PEAK_RSS_KB']) / 1024


def bench_memory(tmp, config, checkpoint):
    big = osp.join(tmp, 'big')
    mse_dir, gan_dir = write_pairs(big, 4096, 1)
    run_s, rss = run_subprocess(
        ['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', osp.join(big, 'out'), '--seg-config', config,
         '--seg-checkpoint', checkpoint])
    small = osp.join(tmp, 'small')
    mse_dir, gan_dir = write_pairs(small, 64, 1)
    _, rss_base = run_subprocess(['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', osp.join(small, 'out')])
    print(f'[memory] desra detect, one 4096x4096 pair, SegFormer mit-b5 (test scale): peak RSS {rss:.0f} MiB '
          f'({rss / 1024:.2f} GiB, limit 3 GiB), command {run_s:.1f} s; '
          f'baseline (64x64 pair, no segmentation): {rss_base:.0f} MiB')


def bench_throughput(tmp, pairs, configs):
    from desra_basicsr.commands import main
    from desra_basicsr.detection.segmenters import build_segmenter
    root = osp.join(tmp, 'tp')
    mse_dir, gan_dir = write_pairs(root, 1024, pairs)
    for label, config, checkpoint in configs:
        build_s = 0.0
        args = ['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', osp.join(root, f'out_{label}')]
        if config is not None:
            start = time.perf_counter()
            build_segmenter('mmseg', config=config, checkpoint=checkpoint)
            build_s = time.perf_counter() - start
            args += ['--seg-config', config, '--seg-checkpoint', checkpoint]
        start = time.perf_counter()
        if main(args) != 0:
            raise RuntimeError(f'desra detect failed for {label}')
        total = time.perf_counter() - start
        per_image = (total - build_s) / pairs
        print(f'[throughput] desra detect 1024x1024, {label}, CPU: {60 / per_image:.1f} images/min '
              f'({per_image:.2f} s/image over {pairs} pairs; model build {build_s:.1f} s excluded)')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pairs', type=int, default=3, help='1024x1024 pairs per throughput run')
    parser.add_argument('--skip-b5', action='store_true', help='skip the mit-b5 runs (slow on CPU)')
    args = parser.parse_args()
    import desra_basicsr  # noqa: F401  (compat fixes before mmseg)
    from desra_basicsr.detection.mmseg_segmenter import default_config_path
    print(f'torch threads: {torch.get_num_threads()}, OpenCV threads: {cv2.getNumThreads()}, '
          f'CUDA: {torch.cuda.is_available()}')
    bench_indicator()
    with tempfile.TemporaryDirectory() as tmp:
        b5 = default_config_path()
        b0 = osp.join(osp.dirname(b5), 'segformer_mit-b0_8xb2-160k_ade20k-512x512.py')
        configs = [('no segmentation', None, None), ('mit-b0 512', b0, random_checkpoint(b0, osp.join(tmp, 'b0.pth')))]
        if not args.skip_b5:
            configs.append(('mit-b5 640', b5, random_checkpoint(b5, osp.join(tmp, 'b5.pth'))))
        bench_throughput(tmp, args.pairs, configs)
        if not args.skip_b5:
            bench_memory(tmp, b5, configs[-1][2])


if __name__ == '__main__':
    main()
