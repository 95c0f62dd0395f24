"""Benchmark of DeSRA fine-tuning: model overhead and data-loading share.

1. Iteration time of ``DeSRAFinetuneModel`` against BasicSR's ``SRGANModel`` on identical networks, batch and
   losses (the training section of ``options/finetune_realesrgan_desra.yml``: L1 + vanilla GAN, EMA; no perceptual
   loss), timed in the same process in interleaved rounds; reported as a ratio (target
   <= 1.05), then with LDL's artifact loss on (which adds an EMA forward and the artifact map).
2. Data-loading share: ``PseudoGTPairedDataset`` merging MSE-SR / GAN-SR / mask on the fly, BasicSR's data loader
   with 2 workers and its CPU prefetcher, feeding ``DeSRAFinetuneModel``; share = time waiting for the next batch /
   total iteration time, measured as BasicSR's ``train_pipeline`` does (target <= 5 %).
3. Data-loading throughput at the paper's batch and patch (12, 256) on full-size images (default: LR 512x512,
   HR 2048x2048 from real photos; ``--data DIR`` with ``lq/ mse/ gan/ mask/`` uses your own): samples per second
   of the dataset alone (one process) and of BasicSR's loader (``--workers`` persistent workers), decoding the
   four files of every sample (the baseline) against ``keep_in_memory: true``, with ratios to the baseline run
   in the same process. Compare the loader's batches per second with the iteration rate ``make gpu-check``
   reports: at the paper's settings data must take under 5 % of an iteration.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.bench_finetune [--device cpu|cuda] [--iters 10] [--rounds 4]

Defaults are sized for a shared 2-core CPU (one torch thread; RRDBNet 16 features / 2 blocks, batch 4, HR patch
64; real-world-sized images for the data part: LR 128x128, SR 512x512). On a GPU use e.g. ``--device cuda
--num-feat 64 --num-block 23 --batch 12 --gt-size 256`` (the paper's setting).
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import tempfile
import time

import cv2
import numpy as np
import torch

import desra_basicsr  # noqa: F401  (compat fixes, plugin registration)
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher
from basicsr.models import build_model
from benchmarks.common import check_counts, ratio, realesrgan_finetune_options, run_main
from desra_basicsr.errors import DesraSettingsError

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera', 'brick', 'grass', 'gravel')


def model_options(args: argparse.Namespace, model_type: str, root: str, ldl: bool = False,
                  perceptual: bool = False) -> dict:
    """``options/finetune_realesrgan_desra.yml`` as BasicSR's ``parse_options`` gives it to one process, changed.

    The networks get ``args``' size; data, validation, weights and USM-sharpened targets are left out.

    ``SRGANModel`` has no USM-sharpened targets, so they are off for every model type: the comparison runs
    identical losses.

    Args:
        args (argparse.Namespace): ``device``, ``num_feat``, ``num_block``.
        model_type (str): ``SRGANModel`` or ``DeSRAFinetuneModel``.
        root (str): Folder for BasicSR's paths.
        ldl (bool): Add LDL's artifact loss.
        perceptual (bool): Keep Real-ESRGAN's perceptual loss (needs ``experiments/pretrained_models/
            vgg19-dcbb9e9d.pth`` relative to the working directory).

    Returns:
        dict: The options.
    """
    opt = realesrgan_finetune_options()
    for key in ('datasets', 'val', 'dist_params', 'manual_seed', 'l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm'):
        opt.pop(key)
    opt.update(name=f'bench_{model_type}', model_type=model_type, is_train=True, dist=False, rank=0, world_size=1,
               num_gpu=1 if args.device == 'cuda' else 0, logger={'print_freq': 100})
    opt['network_g'].update(num_feat=args.num_feat, num_block=args.num_block, num_grow_ch=args.num_feat // 2)
    opt['network_d']['num_feat'] = args.num_feat
    opt['path'] = {key: None for key in ('pretrain_network_g', 'pretrain_network_d', 'resume_state')}
    opt['path'].update({key: root for key in ('experiments_root', 'models', 'training_states', 'log', 'visualization')})
    train = opt['train']
    if not perceptual:
        train.pop('perceptual_opt')
    if ldl:
        train['artifacts_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    return opt


def build(args: argparse.Namespace, model_type: str, root: str, ldl: bool = False):
    torch.manual_seed(0)
    return build_model(model_options(args, model_type, root, ldl))


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_models(models: dict, batch: dict, args: argparse.Namespace) -> dict:
    """Median seconds per iteration of each model, timed in interleaved rounds of ``args.iters`` iterations."""
    for model in models.values():
        model.feed_data(batch)
        for it in range(1, 3):  # warm-up
            model.optimize_parameters(it)
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            model.feed_data(batch)
            sync(args.device)
            start = time.perf_counter()
            for it in range(args.iters):
                model.optimize_parameters(it + 3)
            sync(args.device)
            times[name].append((time.perf_counter() - start) / args.iters)
    return {name: statistics.median(values) for name, values in times.items()}


def make_data(root: str, lr_size: int) -> dict:
    """LR photos (``lr_size`` square) with x4 MSE-SR-like (bicubic + blur), GAN-SR-like (+ pattern) and masks."""
    folders = {key: osp.join(root, key) for key in ('lq', 'mse', 'gan', 'mask')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    from skimage import data as skdata
    hr_size = lr_size * 4
    for name in PHOTOS:
        img = getattr(skdata, name)()
        img = np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3][:, :, ::-1]
        hr = cv2.resize(np.ascontiguousarray(img), (hr_size, hr_size), interpolation=cv2.INTER_AREA)
        lq = cv2.resize(hr, (lr_size, lr_size), interpolation=cv2.INTER_AREA)
        mse = cv2.GaussianBlur(cv2.resize(lq, (hr_size, hr_size), interpolation=cv2.INTER_CUBIC), (0, 0), 1)
        gan = hr
        mask = np.zeros((hr_size, hr_size), np.uint8)
        mask[hr_size // 4:hr_size // 2, hr_size // 3:2 * hr_size // 3] = 255
        for key, image in (('lq', lq), ('mse', mse), ('gan', gan), ('mask', mask)):
            cv2.imwrite(osp.join(folders[key], f'{name}.png'), image)
    return folders


def data_loading_share(args: argparse.Namespace, root: str) -> tuple:
    """Share of BasicSR's iteration time spent waiting for data (on-the-fly merge, 2 workers)."""
    folders = make_data(osp.join(root, 'data'), args.lr_size)
    dataset_opt = {
        'name': 'bench',
        'type': 'PseudoGTPairedDataset',
        'phase': 'train',
        'scale': 4,
        'dataroot_lq': folders['lq'],
        'dataroot_mse': folders['mse'],
        'dataroot_gan': folders['gan'],
        'dataroot_mask': folders['mask'],
        'transform': {
            'type': 'ArtifactMaskTransform',
            'dilate': 2,
            'feather': 4
        },
        'io_backend': {
            'type': 'disk'
        },
        'gt_size': args.gt_size,
        'use_hflip': True,
        'use_rot': False,
        'use_shuffle': True,
        'num_worker_per_gpu': 2,
        'batch_size_per_gpu': args.batch,
        'dataset_enlarge_ratio': 100,
        'prefetch_mode': None
    }
    dataset = build_dataset(copy.deepcopy(dataset_opt))
    sampler = EnlargedSampler(dataset, 1, 0, dataset_opt['dataset_enlarge_ratio'])
    loader = build_dataloader(
        dataset, dataset_opt, num_gpu=1 if args.device == 'cuda' else 0, dist=False, sampler=sampler, seed=0)
    model = build(args, 'DeSRAFinetuneModel', root)
    prefetcher = CPUPrefetcher(loader)
    prefetcher.reset()
    data_time = iter_time = 0.0
    n_iters = args.iters * args.rounds
    warmup = 3
    start = time.perf_counter()
    for it in range(1, n_iters + warmup + 1):
        batch = prefetcher.next()
        fetched = time.perf_counter()
        model.feed_data(batch)
        model.optimize_parameters(it)
        sync(args.device)
        end = time.perf_counter()
        if it > warmup:
            data_time += fetched - start
            iter_time += end - start
        start = end
    return data_time / iter_time, iter_time / n_iters


def loading_throughput(args: argparse.Namespace, folders: dict) -> dict:
    """Samples per second of the dataset alone and of BasicSR's loader, decoding per sample vs kept in memory."""
    rates = {}
    for name, keep in (('decode per sample', False), ('keep_in_memory', True)):
        dataset_opt = {
            'name': 'bench_full', 'type': 'PseudoGTPairedDataset', 'phase': 'train', 'scale': 4,
            'dataroot_lq': folders['lq'], 'dataroot_mse': folders['mse'], 'dataroot_gan': folders['gan'],
            'dataroot_mask': folders['mask'], 'io_backend': {'type': 'disk'}, 'gt_size': args.data_gt_size,
            'use_hflip': True, 'use_rot': False, 'keep_in_memory': keep, 'use_shuffle': True,
            'num_worker_per_gpu': args.workers, 'batch_size_per_gpu': args.data_batch, 'dataset_enlarge_ratio': 100,
            'persistent_workers': args.workers > 0, 'pin_memory': args.device == 'cuda', 'prefetch_mode': None
        }
        dataset = build_dataset(copy.deepcopy(dataset_opt))
        n = args.data_batch * args.data_batches
        start = time.perf_counter()
        for i in range(n):
            dataset[i % len(dataset)]
        alone = n / (time.perf_counter() - start)
        sampler = EnlargedSampler(dataset, 1, 0, dataset_opt['dataset_enlarge_ratio'])
        loader = build_dataloader(dataset, dataset_opt, num_gpu=1 if args.device == 'cuda' else 0, dist=False,
                                  sampler=sampler, seed=0)
        batches = iter(loader)
        next(batches)  # workers started and warm
        start = time.perf_counter()
        for _ in range(args.data_batches):
            next(batches)
        rates[name] = (alone, n / (time.perf_counter() - start))
        del batches, loader
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--num-feat', type=int, default=16)
    parser.add_argument('--num-block', type=int, default=2)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--gt-size', type=int, default=64)
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads of the training process')
    parser.add_argument('--lr-size', type=int, default=128, help='side of the LR images of the data benchmark')
    parser.add_argument('--iters', type=int, default=5, help='iterations per timing round')
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--data', help='part 3: folder with lq/ mse/ gan/ mask/ (default: made from real photos)')
    parser.add_argument('--full-lr-size', type=int, default=512, help='part 3: LR side of the made full-size images')
    parser.add_argument('--data-batch', type=int, default=12, help='part 3: batch size')
    parser.add_argument('--data-gt-size', type=int, default=256, help='part 3: HR patch')
    parser.add_argument('--data-batches', type=int, default=6, help='part 3: batches timed per configuration')
    parser.add_argument('--workers', type=int, default=2, help='part 3: loader workers')
    args = parser.parse_args()
    check_counts(args, '--num-feat', '--num-block', '--batch', '--gt-size', '--threads', '--lr-size', '--iters',
                 '--rounds', '--full-lr-size', '--data-batch', '--data-gt-size', '--data-batches')
    check_counts(args, '--workers', least=0)
    missing = [key for key in ('lq', 'mse', 'gan', 'mask') if args.data and not osp.isdir(osp.join(args.data, key))]
    if missing:
        raise DesraSettingsError(f'--data {args.data}: no {"/, ".join(missing)}/ folder (it needs lq/ mse/ gan/ mask/)')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    torch.set_num_threads(args.threads)

    print(f'device {args.device}, torch threads {torch.get_num_threads()}, RRDBNet {args.num_feat}f/{args.num_block}b, '
          f'batch {args.batch}, HR patch {args.gt_size}, {args.rounds} rounds x {args.iters} iterations')
    with tempfile.TemporaryDirectory() as root:
        generator = torch.Generator().manual_seed(0)
        lq = torch.rand(args.batch, 3, args.gt_size // 4, args.gt_size // 4, generator=generator)
        gt = torch.rand(args.batch, 3, args.gt_size, args.gt_size, generator=generator)
        mask = (torch.rand(args.batch, 1, args.gt_size, args.gt_size, generator=generator) > 0.7).float()
        batch = {'lq': lq, 'gt': gt, 'mask': mask}
        models = {
            'SRGANModel': build(args, 'SRGANModel', root),
            'DeSRAFinetuneModel': build(args, 'DeSRAFinetuneModel', root),
            'DeSRAFinetuneModel+LDL': build(args, 'DeSRAFinetuneModel', root, ldl=True),
        }
        times = time_models(models, batch, args)
        base = times['SRGANModel']
        print('\n1. iteration time (median of rounds, same process)')
        for name, seconds in times.items():
            print(f'   {name:<24} {seconds * 1000:9.1f} ms/iter   ratio vs SRGANModel {ratio(seconds, base, 3)}')
        share, per_iter = data_loading_share(args, root)
        print(f'\n2. data loading (PseudoGTPairedDataset on the fly, dilate 2 + feather 4, LR {args.lr_size}px, '
              f'2 workers)')
        print(f'   iteration {per_iter * 1000:.1f} ms, waiting for data {share * 100:.2f} % of it')
        folders = {key: osp.join(args.data, key) for key in ('lq', 'mse', 'gan', 'mask')} if args.data else \
            make_data(osp.join(root, 'full'), args.full_lr_size)
        rates = loading_throughput(args, folders)
        print(f'\n3. data loading throughput, batch {args.data_batch}, HR patch {args.data_gt_size}, '
              f'{"your data" if args.data else f"HR {args.full_lr_size * 4}px photos"} (samples/s)')
        base = rates['decode per sample']
        for name, (alone, loader) in rates.items():
            print(f'   {name:<18} dataset alone {alone:7.1f} ({ratio(alone, base[0])})   loader, {args.workers} '
                  f'workers {loader:7.1f} ({ratio(loader, base[1])}) = {loader / args.data_batch:.2f} batches/s')


if __name__ == '__main__':
    run_main(main)
