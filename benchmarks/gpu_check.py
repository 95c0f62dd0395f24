"""Everything GPU-specific in one command (``make gpu-check``), with a markdown report of its figures.

1. Timings, each against a baseline run in the same process:
   * D map of a 2048x2048 pair: torch on CUDA against the float64 per-channel ``cv2.filter2D`` CPU baseline
     (target: at least 100x);
   * ``desra detect`` images per minute at 1024x1024 with SegFormer mit-b5 ADE20K (random weights; mmseg's
     config shipped in its wheel), and without segmentation;
   * DeSRA fine-tune of the real RRDBNet (64 features, 23 blocks) with ``UNetDiscriminatorSN`` at batch 12, HR
     patch 256, L1 + GAN (+ perceptual when ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` exists): seconds
     per iteration, peak GPU memory, and the projected minutes of the paper's 1000 iterations on 4 GPUs (each GPU
     runs batch 12, so one iteration of 4-GPU DDP takes about one single-GPU iteration plus the gradient
     all-reduce, which this one-GPU figure does not include);
   * ``desra sr`` on 1024x1024 outputs (RRDBNet x4, random weights), fp16 against fp32;
   * data loading of ``PseudoGTPairedDataset`` at batch 12, HR patch 256 on HR 2048x2048 photos, BasicSR's loader
     with ``--workers`` persistent workers, decoding per sample against ``keep_in_memory``: the time one batch
     takes to produce as a share of the fine-tune iteration above (target: under 5 %).
2. ``tests/gpu/`` under pytest (CUDA only; the CPU test run does not collect them), with the rest of ``--budget``:
   D map on CUDA against the CPU map, batched ``detect_tensors`` on CUDA, ``desra sr --fp16`` against fp32
   (RRDBNet and SwinIR), the three tiny fine-tune twins with ``num_gpu: 1``, the Real-ESRGAN twin under
   ``torch.distributed.run`` with nccl on every visible GPU, ``--auto_resume`` on the GPU, ``desra localizer
   train`` under ``torch.distributed.run`` with nccl on every visible GPU and ``desra detect --method localizer``
   on the GPU.

A failing timing costs its own figure only (its traceback goes into the report), and the report is rewritten after
each step, so a run stopped from outside still leaves what it measured. The report lists the package versions, as
an offline machine may run its own torch (``DESRA_WHEELHOUSE``, README "GPU").

Usage::

    make gpu-check          # = .venv/bin/python -m benchmarks.gpu_check (report: results/gpu_check_report.md)

Needs a CUDA GPU: without one it stops at once with a message and writes nothing. Sized for at most 10 minutes
on one GPU, set-up included (``--quick`` shrinks the timings for a first look). Nothing is downloaded.
"""
import argparse
import copy
import datetime
import os
import os.path as osp
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from benchmarks.bench_detect import baseline_d, detect_seconds
from benchmarks.bench_finetune import loading_throughput, make_data, model_options
from benchmarks.common import REPO, photo_pair, run_main, write_pairs
from desra_basicsr.tools.mmseg_weights import random_checkpoint
from desra_basicsr.utils import atomic_write_path

VGG_FILE = osp.join('experiments', 'pretrained_models', 'vgg19-dcbb9e9d.pth')
RRDB_ARCH_OPTS = ['num_in_ch=3', 'num_out_ch=3', 'num_feat=64', 'num_block=23', 'num_grow_ch=32', 'scale=4']


def no_cuda_message() -> Optional[str]:
    """Why this machine cannot run the GPU check, or None when CUDA is usable."""
    if torch.cuda.is_available():
        return None
    return (f'gpu-check needs a CUDA GPU, and torch {torch.__version__} (built for CUDA {torch.version.cuda}) sees '
            'none: torch.cuda.is_available() is False (no GPU, CUDA_VISIBLE_DEVICES hides it, or the NVIDIA driver is '
            'too old for this CUDA build). Nothing was run and no report was written. The CPU test suite is '
            '`make test`.')


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def run_gpu_tests(junit: str, targets: Sequence[str] = (osp.join('tests', 'gpu'), ), timeout: float = 420) -> dict:
    """Run pytest on ``targets`` (default ``tests/gpu/``) in a subprocess and summarise its JUnit report.

    Args:
        junit (str): Where pytest writes its JUnit XML.
        targets (Sequence[str]): pytest arguments naming the tests, relative to the repository.
        timeout (float): Seconds before pytest and everything it started (torchrun, its ranks) are killed, so that
            a hung collective cannot eat the timings' time; the report then says so.

    Returns:
        dict: ``returncode`` (None after a timeout), ``seconds``, ``cases`` (name, seconds, outcome, message) and the
        output's ``tail``.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', f'--junitxml={junit}',
                             *targets], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        returncode = None
        output += f'\n[gpu-check: pytest killed after {timeout:.0f} s]'
    cases: List[dict] = []
    if osp.isfile(junit):
        for case in ElementTree.parse(junit).iter('testcase'):
            problem = next((child for child in case if child.tag in ('failure', 'error', 'skipped')), None)
            cases.append({'name': case.get('name'), 'seconds': float(case.get('time', 0)),
                          'outcome': problem.tag if problem is not None else 'passed',
                          'message': (problem.get('message') or '')[:300] if problem is not None else ''})
    return {'returncode': returncode, 'seconds': time.perf_counter() - start, 'cases': cases,
            'tail': output[-3000:]}


def time_indicator(device: str, size: int = 2048, repeat: int = 3) -> dict:
    """D map of a ``size`` square photo pair with torch on ``device`` against the float64 filter2D CPU baseline."""
    from desra_basicsr.detection.indicator import indicator_torch
    y_mse, y_gan = photo_pair(size)
    start = time.perf_counter()
    ref = baseline_d(y_mse, y_gan)
    base_s = time.perf_counter() - start
    to_t = lambda img: torch.from_numpy(img).permute(2, 0, 1)[None].to(device)  # noqa: E731
    a, b = to_t(y_mse), to_t(y_gan)
    indicator_torch(a, b)  # warm-up (CUDA context, kernels)
    times = []
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        d_map = indicator_torch(a, b)
        _sync(device)
        times.append(time.perf_counter() - start)
    device_s = min(times)
    return {'size': size, 'baseline_s': base_s, 'device_s': device_s, 'speedup': base_s / device_s,
            'max_abs_diff': float(np.abs(d_map[0].cpu().numpy() - ref).max())}


def time_detect(device: str, root: str, size: int = 1024, pairs: int = 8, config: Optional[str] = None) -> dict:
    """Images per minute of ``desra detect`` on ``pairs`` photo pairs; with ``config``: mmseg, random weights."""
    folder = osp.join(root, f'detect_{size}_{"seg" if config else "none"}')
    mse_dir, gan_dir = write_pairs(folder, size, pairs)
    checkpoint = random_checkpoint(config, osp.join(folder, 'seg.pth')) if config else None
    seconds, build_s = detect_seconds(mse_dir, gan_dir, osp.join(folder, 'out'), config, checkpoint, device)
    return {'size': size, 'pairs': pairs, 'segmentation': osp.basename(config) if config else 'none',
            'images_per_min': 60 * pairs / seconds, 'build_s': build_s}


def time_finetune(device: str, root: str, batch: int = 12, gt_size: int = 256, iters: int = 10, warmup: int = 3,
                  num_feat: int = 64, num_block: int = 23) -> dict:
    """Seconds per iteration and peak memory of ``DeSRAFinetuneModel`` (RRDBNet + UNetDiscriminatorSN)."""
    from basicsr.models import build_model
    args = argparse.Namespace(device='cuda' if device.startswith('cuda') else 'cpu', num_feat=num_feat,
                              num_block=num_block)
    perceptual = osp.isfile(VGG_FILE)
    opt = model_options(args, 'DeSRAFinetuneModel', root, perceptual=perceptual)
    opt['network_d']['num_feat'] = 64  # Real-ESRGAN's discriminator, whatever the generator's size
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(opt))
    generator = torch.Generator().manual_seed(0)
    data = {'lq': torch.rand(batch, 3, gt_size // 4, gt_size // 4, generator=generator),
            'gt': torch.rand(batch, 3, gt_size, gt_size, generator=generator)}
    if args.device == 'cuda':
        data = {k: v.pin_memory() for k, v in data.items()}
    for it in range(1, warmup + 1):
        model.feed_data(data)
        model.optimize_parameters(it)
    _sync(device)
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for it in range(warmup + 1, warmup + iters + 1):
        model.feed_data(data)
        model.optimize_parameters(it)
    _sync(device)
    s_iter = (time.perf_counter() - start) / iters
    if args.device == 'cuda':
        peak_gib, peak_kind = torch.cuda.max_memory_allocated() / 2**30, 'GPU memory allocated'
    else:
        peak_gib, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 'process RSS'
    return {'batch': batch, 'gt_size': gt_size, 'num_feat': num_feat, 'num_block': num_block, 'iters': iters,
            'perceptual': perceptual, 's_per_iter': s_iter, 'peak_gib': peak_gib, 'peak_kind': peak_kind,
            'projected_min_1000_4gpu': s_iter * 1000 / 60}


def time_sr(device: str, root: str, out_size: int = 1024, count: int = 8,
            arch_opts: List[str] = RRDB_ARCH_OPTS) -> dict:
    """``desra sr`` images per minute on ``out_size`` x4 outputs, fp32 and (CUDA) fp16, random RRDBNet weights."""
    from desra_basicsr.commands import main
    from desra_basicsr.commands.sr_cmd import parse_arch_opts
    from desra_basicsr.inference import build_generator
    folder = osp.join(root, f'sr_{out_size}')
    lr_dir = osp.join(folder, 'lr')
    os.makedirs(lr_dir, exist_ok=True)
    for i in range(count):
        mse, _ = photo_pair(out_size // 4, seed=i)
        cv2.imwrite(osp.join(lr_dir, f'{i:03d}.png'), mse)
    torch.manual_seed(0)
    weights = osp.join(folder, 'rrdbnet.pth')
    torch.save({'params_ema': build_generator('RRDBNet', parse_arch_opts(arch_opts)).state_dict()}, weights)
    rates, outputs = {}, {}
    for precision in ('fp32', 'fp16') if device.startswith('cuda') else ('fp32', ):
        out = osp.join(folder, precision)
        args = ['sr', '--arch', 'RRDBNet', '--arch-opt', *arch_opts, '--weights', weights, '--input', lr_dir,
                '--out', out, '--device', device] + (['--fp16'] if precision == 'fp16' else [])
        start = time.perf_counter()
        if main(args) != 0:
            raise RuntimeError(f'desra {" ".join(args)} failed')
        rates[precision] = 60 * count / (time.perf_counter() - start)
        outputs[precision] = cv2.imread(osp.join(out, '000.png')).astype(np.int16)
    result = {'out_size': out_size, 'count': count, 'fp32_images_per_min': rates['fp32']}
    if 'fp16' in rates:
        result.update(fp16_images_per_min=rates['fp16'], fp16_speedup=rates['fp16'] / rates['fp32'],
                      fp16_mean_abs_diff=float(np.abs(outputs['fp16'] - outputs['fp32']).mean()))
    return result


def time_data(device: str, root: str, s_per_iter: Optional[float], workers: int = 4, batches: int = 6,
              lr_size: int = 512, batch: int = 12, gt_size: int = 256) -> dict:
    """Loader samples per second (decoding per sample / in memory) and a batch's time as a share of an iteration.

    ``s_per_iter`` is the fine-tune's seconds per iteration; None (that timing failed) leaves the shares out.
    """
    folders = make_data(osp.join(root, 'data'), lr_size)
    args = argparse.Namespace(device='cuda' if device.startswith('cuda') else 'cpu', data_batch=batch,
                              data_gt_size=gt_size, data_batches=batches, workers=workers)
    rates = loading_throughput(args, folders)
    return {'hr_size': lr_size * 4, 'batch': batch, 'gt_size': gt_size, 'workers': workers,
            'rates': {name: loader for name, (_alone, loader) in rates.items()},
            'share': ({name: batch / loader / s_per_iter for name, (_alone, loader) in rates.items()}
                      if s_per_iter else {})}


def tests_ending(tests: dict) -> str:
    """How the :func:`run_gpu_tests` run ended: pytest's exit status, or the kill at its time limit."""
    return 'killed at its time limit' if tests['returncode'] is None else f'pytest exit {tests["returncode"]}'


def machine_description(device: str) -> Dict[str, str]:
    info = {'date (UTC)': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'),
            'host': platform.node(), 'python': platform.python_version(), 'torch': torch.__version__,
            'CUDA (torch build)': str(torch.version.cuda), 'CPU threads (torch)': str(torch.get_num_threads())}
    import basicsr
    import mmengine
    import mmseg
    info['stack'] = (f'basicsr {basicsr.__version__}, mmsegmentation {mmseg.__version__}, mmengine '
                     f'{mmengine.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__}')
    if device.startswith('cuda'):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        info.update({'GPU': f'{props.name}, {props.total_memory / 2**30:.1f} GiB',
                     'visible GPUs': str(torch.cuda.device_count()),
                     'cuDNN': str(torch.backends.cudnn.version())})
    else:
        info['device'] = device
    return info


def write_report(path: str, machine: Dict[str, str], tests: Optional[dict], timings: Dict[str, dict],
                 errors: Optional[Dict[str, str]] = None) -> None:
    """Write the markdown report atomically (temporary file, then rename).

    Args:
        path (str): Output ``.md`` file.
        machine (dict): :func:`machine_description`.
        tests (dict | None): :func:`run_gpu_tests` result (None: not run).
        timings (dict): Results of the ``time_*`` functions by name (``indicator``, ``detect_seg``,
            ``detect_none``, ``finetune``, ``sr``, ``data``); absent ones are left out.
        errors (dict | None): Timings that failed, by name: the end of their traceback.
    """
    lines = ['# desra-basicsr GPU check', '', '| machine | |', '| --- | --- |']
    lines += [f'| {key} | {value} |' for key, value in machine.items()]
    if tests is not None:
        counts = {}
        for case in tests['cases']:
            counts[case['outcome']] = counts.get(case['outcome'], 0) + 1
        summary = ', '.join(f'{n} {outcome}' for outcome, n in sorted(counts.items())) or 'no test ran'
        lines += ['', f'## tests/gpu: {summary} ({tests_ending(tests)}, {tests["seconds"]:.0f} s)', '',
                  '| test | outcome | s | message |', '| --- | --- | --- | --- |']
        lines += [f'| {c["name"]} | {c["outcome"]} | {c["seconds"]:.1f} | {c["message"].replace("|", "/")} |'
                  for c in tests['cases']]
        if tests['returncode'] != 0:
            lines += ['', '```', tests['tail'], '```']
    lines += ['', '## Timings', '']
    if 'indicator' in timings:
        t = timings['indicator']
        lines.append(f'- D map {t["size"]}x{t["size"]}: float64 filter2D CPU baseline {t["baseline_s"]:.3f} s, '
                     f'torch on {machine.get("GPU", machine.get("device"))} {t["device_s"] * 1000:.1f} ms: '
                     f'**{t["speedup"]:.0f}x** (target >= 100x), max abs diff {t["max_abs_diff"]:.1e}')
    for key in ('detect_seg', 'detect_none'):
        if key in timings:
            t = timings[key]
            lines.append(f'- desra detect {t["size"]}x{t["size"]}, segmentation {t["segmentation"]}: '
                         f'**{t["images_per_min"]:.1f} images/min** over {t["pairs"]} pairs (model build '
                         f'{t["build_s"]:.1f} s excluded)')
    if 'finetune' in timings:
        t = timings['finetune']
        losses = 'L1 + GAN + perceptual' if t['perceptual'] else f'L1 + GAN (no perceptual: {VGG_FILE} absent)'
        lines.append(f'- fine-tune RRDBNet {t["num_feat"]}f/{t["num_block"]}b + UNetDiscriminatorSN, batch '
                     f'{t["batch"]}, HR patch {t["gt_size"]}, {losses}: **{t["s_per_iter"]:.3f} s/iter** (mean of '
                     f'{t["iters"]}), peak {t["peak_kind"]} {t["peak_gib"]:.2f} GiB; projected 1000 iterations on 4 '
                     f'GPUs (batch 12 each, all-reduce not included): **{t["projected_min_1000_4gpu"]:.1f} min**')
    if 'sr' in timings:
        t = timings['sr']
        text = (f'- desra sr RRDBNet x4, {t["out_size"]}x{t["out_size"]} outputs, {t["count"]} images: fp32 '
                f'{t["fp32_images_per_min"]:.1f} images/min')
        if 'fp16_images_per_min' in t:
            text += (f', fp16 **{t["fp16_images_per_min"]:.1f} images/min** ({t["fp16_speedup"]:.2f}x fp32; mean abs '
                     f'diff to fp32 {t["fp16_mean_abs_diff"]:.3f} grey levels)')
        lines.append(text)
    if 'data' in timings:
        t = timings['data']
        parts = [f'{name} {rate:.1f} samples/s'
                 + (f' = {t["share"][name] * 100:.1f} % of an iteration' if name in t['share'] else '')
                 for name, rate in t['rates'].items()]
        lines.append(f'- data loading, batch {t["batch"]}, HR patch {t["gt_size"]}, HR {t["hr_size"]}px photos, '
                     f'{t["workers"]} persistent workers: ' + '; '.join(parts) + ' (target: under 5 %)')
    for name, text in (errors or {}).items():
        lines += ['', f'### {name}: failed', '', '```', text, '```']
    with atomic_write_path(path) as tmp, open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=osp.join('results', 'gpu_check_report.md'),
                        help='markdown report (default results/gpu_check_report.md)')
    parser.add_argument('--device', default='cuda', help='cuda or cuda:N')
    parser.add_argument('--quick', action='store_true', help='smaller timings (a first look, not the figures)')
    parser.add_argument('--skip-tests', action='store_true', help='timings only')
    parser.add_argument('--budget', type=float, default=540,
                        help='seconds for the whole check (default 540): the timings run first, then tests/gpu gets '
                        'what is left (at least 120 s) and is killed past it')
    args = parser.parse_args(argv)
    message = no_cuda_message()
    if message:
        print(f'error: {message}', file=sys.stderr)
        return 2
    started = time.perf_counter()
    out = osp.abspath(args.out)
    os.chdir(REPO)  # VGG19 path and experiments/ are relative to the repository
    machine = machine_description(args.device)
    print('\n'.join(f'{k}: {v}' for k, v in machine.items()), flush=True)
    timings: Dict[str, dict] = {}
    errors: Dict[str, str] = {}
    tests = None
    with tempfile.TemporaryDirectory() as tmp:
        from desra_basicsr.detection.mmseg_segmenter import default_config_path
        steps = [
            ('indicator', lambda: time_indicator(args.device, 1024 if args.quick else 2048)),
            ('detect_seg', lambda: time_detect(args.device, tmp, pairs=2 if args.quick else 8,
                                               config=default_config_path())),
            ('detect_none', lambda: time_detect(args.device, tmp, pairs=2 if args.quick else 8)),
            ('finetune', lambda: time_finetune(args.device, tmp, iters=3 if args.quick else 10)),
            ('sr', lambda: time_sr(args.device, tmp, count=2 if args.quick else 8)),
            ('data', lambda: time_data(args.device, tmp, timings.get('finetune', {}).get('s_per_iter'),
                                       batches=2 if args.quick else 6)),
        ]
        for name, step in steps:  # one failure costs its own figure only; the report is rewritten after each
            start = time.perf_counter()
            try:
                timings[name] = step()
                print(f'{name}: {timings[name]} ({time.perf_counter() - start:.0f} s)', flush=True)
            except Exception:  # any failure is a finding to report, not a reason to stop
                errors[name] = traceback.format_exc()[-3000:]
                print(f'{name}: failed\n{errors[name]}', file=sys.stderr, flush=True)
            torch.cuda.empty_cache()
            write_report(out, machine, tests, timings, errors)
        if not args.skip_tests:
            timeout = max(120.0, args.budget - (time.perf_counter() - started))
            tests = run_gpu_tests(osp.join(tmp, 'junit.xml'), timeout=timeout)
            print(f'tests/gpu: {tests_ending(tests)} in {tests["seconds"]:.0f} s\n{tests["tail"]}', flush=True)
    write_report(out, machine, tests, timings, errors)
    print(f'report: {out}')
    return 0 if not errors and (tests is None or tests['returncode'] == 0) else 1


if __name__ == '__main__':
    run_main(main, out_option='--out')
