"""Artifact localiser and multi-model fusion on the demo's real-photo corpus (README, "Artifact localiser and fusion").

Every LR photo of the corpus comes from a known HR photo (``scripts/prepare_demo_data.py``), so the SR outputs have
ground truth. With ``C1 .. Cn`` the GAN-SR candidate models (``--candidate``, at least 3; ``C1`` is the model the
localiser learns from) and the MSE-SR model:

1. **SR and DeSRA-det.** ``desra sr`` of the fine-tune and held-out LR photos with the MSE-SR model and every
   candidate; ``desra detect`` (DeSRA-det against the MSE-SR outputs, no semantics) of every candidate.
2. **Localiser.** ``desra localizer train`` on ``C1``'s fine-tune outputs and DeSRA-det masks; then
   ``desra detect --method localizer`` on the held-out outputs of ``C1`` (the model it learnt from) and of every
   other candidate (generators it never saw), scored against DeSRA-det's masks with ``desra evaluate`` (IoU x100,
   region precision, region recall). Speed on the held-out photos: images per minute of the localiser (GAN-SR image
   alone) against DeSRA-det (MSE-SR inference plus detection), both from a fresh start of the job (model loading
   included).
3. **Fusion.** ``desra fuse`` of all candidates with the MSE-SR output as fallback (DeSRA scores), and with
   ``--fuse-with-localizer`` also with the localiser's scores (no MSE-SR). The candidates are listed to ``fuse`` in
   the order of their mean PSNR on the fine-tune set, best first: ``fuse`` takes the first listed among equally
   clean candidates, and that preference is a setting chosen on the fine-tune set, never on the held-out one. Per
   candidate, for the MSE-SR output and for the fused outputs: PSNR and SSIM against HR (BasicSR's
   ``calculate_psnr`` / ``calculate_ssim``, RGB, 4-pixel border cropped) and DeSRA-det's artifact area (percent of
   the image), averaged over the held-out photos.

Targets: fused artifact area below every candidate's; fused PSNR / SSIM at least the best GAN-SR
candidate's; localiser IoU against DeSRA-det on ``C1``'s held-out outputs at least 50. The measured figures are
printed whichever way they fall, and written to ``WORK/results.json``.

Usage (the demo's models: ``make bench-localizer-fusion`` runs the DeSRA fine-tune of the demo, then this)::

    .venv/bin/python -m benchmarks.bench_localizer_fusion --work results/bench_localizer_fusion \\
        --candidate demo_gan options/demo_train_gan.yml experiments/pretrained_models/demo_gan_x4.pth \\
        --candidate demo_gan_desra results/demo/options/finetune_desra.yml \\
            results/demo/experiments/demo_finetune_desra/models/net_g_latest.pth \\
        --candidate demo_gan_b options/demo_train_gan_b.yml experiments/pretrained_models/demo_gan_b_x4.pth

Every stage is a ``desra`` job: run it again with the same ``--work`` to resume (the timed stages are always run
again, so their rates come from a fresh start).
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List

import cv2
import numpy as np

from benchmarks.common import REPO
from desra_basicsr.demo import MSE_OPT, PRETRAINED
from desra_basicsr.evaluation.folders import format_table
from desra_basicsr.image_io import list_images, read_image, stem
from desra_basicsr.jobs import detect, evaluate, fuse, localizer_train, pseudo_gt, sr


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--finetune-lr', default=osp.join(REPO, 'demo_data', 'finetune_lr'), help='fine-tune LR set')
    parser.add_argument('--heldout-lr', default=osp.join(REPO, 'demo_data', 'heldout_lr'), help='held-out LR set')
    parser.add_argument('--hr', default=osp.join(REPO, 'datasets', 'demo', 'hr'), help='HR photos (<name>.png)')
    parser.add_argument('--mse-opt', default=MSE_OPT, help='option file of the MSE-SR model')
    parser.add_argument('--mse-weights', default=osp.join(PRETRAINED, 'demo_mse_x4.pth'), help='MSE-SR weights')
    parser.add_argument(
        '--candidate',
        nargs=3,
        action='append',
        required=True,
        metavar=('LABEL', 'OPT', 'WEIGHTS'),
        help='a GAN-SR candidate (at least 3; the first trains the localiser, the second tests it on another model)')
    parser.add_argument('--work', required=True, help='work folder (SR outputs, masks, localiser, results.json)')
    parser.add_argument('--arch', default=localizer_train.DEFAULT_ARCH, help='localiser architecture')
    parser.add_argument('--iters', type=int, default=300, help='localiser training iterations')
    parser.add_argument('--batch-size', type=int, default=4, help='localiser batch size')
    parser.add_argument('--crop-size', type=int, default=192, help='localiser training crop')
    parser.add_argument('--seed', type=int, default=0, help='localiser training seed')
    parser.add_argument(
        '--clean-negatives',
        action='store_true',
        help='also train the localiser on the DeSRA pseudo-GT of its fine-tune outputs as all-clean images '
        '(desra localizer train --clean)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument(
        '--fuse-with-localizer',
        action='store_true',
        help='also fuse with the localiser\'s scores instead of DeSRA\'s (no MSE-SR; one localiser pass per candidate)')
    args = parser.parse_args(argv)
    if len(args.candidate) < 3:
        parser.error(f'--candidate: give at least 3 GAN-SR candidates, got {len(args.candidate)}')
    labels = [c[0] for c in args.candidate]
    if len(set(labels) | {'mse'}) != len(labels) + 1:
        parser.error(f'--candidate: labels must be unique and not "mse", got {labels}')
    return args


def checked(result):
    """Stop the benchmark when a job failed on some image."""
    if getattr(result, 'failed', 0):
        errors = {k: v.get('message') for k, v in result.items.items() if v.get('status') == 'error'}
        raise SystemExit(f'{result.summary["meta"]["command"]} failed: {errors}')
    return result


def timed(fn):
    """Run ``fn()`` and return ``(result, seconds)``."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def image_quality(folder: str, hr_dir: str) -> Dict[str, float]:
    """Mean PSNR / SSIM (BasicSR, RGB, 4-pixel border) of a folder of SR outputs against the HR photos."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    psnr, ssim = [], []
    for name in list_images(folder):
        out, hr = read_image(osp.join(folder, name)), read_image(osp.join(hr_dir, f'{stem(name)}.png'))
        if out.shape != hr.shape:
            raise SystemExit(f'{osp.join(folder, name)}: size {out.shape[1]}x{out.shape[0]} differs from the HR '
                             f'photo ({hr.shape[1]}x{hr.shape[0]})')
        psnr.append(calculate_psnr(out, hr, crop_border=4))
        ssim.append(calculate_ssim(out, hr, crop_border=4))
    return {'psnr': float(np.mean(psnr)), 'ssim': float(np.mean(ssim))}


def artifact_area(result) -> float:
    """Mean DeSRA-det artifact area (percent) of a detect job's images."""
    return 100 * float(np.mean([r['artifact_fraction'] for r in result.items.values()]))


def main(argv: List[str] = None) -> dict:
    """Run the benchmark (see the module docstring).

    Args:
        argv (list[str] | None): Command-line arguments.

    Returns:
        dict: The figures written to ``WORK/results.json``.
    """
    args = parse_args(argv)
    cv2.setNumThreads(1)
    work = osp.abspath(args.work)
    models = {'mse': (args.mse_opt, args.mse_weights), **{c[0]: (c[1], c[2]) for c in args.candidate}}
    candidates = [c[0] for c in args.candidate]
    splits = {'finetune': args.finetune_lr, 'heldout': args.heldout_lr}
    path = lambda *parts: osp.join(work, *parts)  # noqa: E731
    n_heldout = len(list_images(args.heldout_lr))
    seconds: Dict[str, float] = {}

    # 1. SR outputs and DeSRA-det masks of a split.
    detections = {}

    def sr_and_detect(split: str, labels: List[str]) -> None:
        for label in ['mse'] + labels:
            opt, weights = models[label]
            checked(sr.run(sr.SRSettings(input=splits[split], out=path('sr', split, label), opt=opt, weights=weights,
                                         device=args.device)))
        for label in labels:
            detections[split, label] = checked(detect.run(detect.DetectSettings(
                mse=path('sr', split, 'mse'), gan=path('sr', split, label), out=path('masks', split, label),
                device=args.device)))

    # 2. Localiser: train on C1's fine-tune outputs and masks, detect on every candidate's held-out outputs.
    sr_and_detect('finetune', candidates)
    clean = None
    if args.clean_negatives:
        clean = path('pseudo_gt', 'finetune', candidates[0])
        checked(pseudo_gt.run(pseudo_gt.PseudoGTSettings(
            mse=path('sr', 'finetune', 'mse'), gan=path('sr', 'finetune', candidates[0]),
            masks=path('masks', 'finetune', candidates[0]), out=clean)))
    train_settings = localizer_train.LocalizerTrainSettings(
        gan=path('sr', 'finetune', candidates[0]), masks=path('masks', 'finetune', candidates[0]), clean=clean,
        out=path('localizer'), arch=args.arch, iters=args.iters, batch_size=args.batch_size,
        crop_size=args.crop_size, seed=args.seed, num_workers=0)
    record = checked(localizer_train.run(train_settings)).items[localizer_train.ITEM]
    seconds['localizer_train'] = record['seconds']  # of the run that trained it (a finished training is kept)
    localizer_files = dict(localizer_config=record['config'], localizer_checkpoint=record['checkpoint'])
    sr_and_detect('heldout', candidates)
    # DeSRA-det's rate on the held-out photos: MSE-SR inference plus detection of C1, from a fresh start, written
    # under timing/ so that the outputs the other stages resume from keep their dates.
    mse_opt, mse_weights = models['mse']
    _, seconds['mse_sr_heldout'] = timed(lambda: checked(sr.run(sr.SRSettings(
        input=splits['heldout'], out=path('timing', 'mse_sr'), opt=mse_opt, weights=mse_weights, device=args.device,
        overwrite=True))))
    _, seconds['desra_det_heldout'] = timed(lambda: checked(detect.run(detect.DetectSettings(
        mse=path('timing', 'mse_sr'), gan=path('sr', 'heldout', candidates[0]), out=path('timing', 'desra_det'),
        device=args.device, overwrite=True))))
    localizer_scores = {}
    for label in candidates:
        _, t = timed(lambda: checked(detect.run(detect.DetectSettings(
            mse=None, gan=path('sr', 'heldout', label), out=path('localizer_masks', label), method='localizer',
            device=args.device, overwrite=True, **localizer_files))))
        if label == candidates[0]:
            seconds['localizer_detect_heldout'] = t
        scores = evaluate.run(evaluate.EvaluateSettings(gt=path('masks', 'heldout', label),
                                                        pred=path('localizer_masks', label))).mean
        localizer_scores[label] = {k: scores[k] for k in ('iou', 'precision', 'recall')}
    per_minute = {
        'desra_det': 60 * n_heldout / (seconds['mse_sr_heldout'] + seconds['desra_det_heldout']),
        'localizer': 60 * n_heldout / seconds['localizer_detect_heldout'],
    }

    # 3. Fusion (DeSRA scores with MSE-SR fallback; localiser scores), quality against HR, DeSRA-det area. The
    # preference order among equally clean candidates: their mean PSNR on the fine-tune set, best first.
    finetune_psnr = {label: image_quality(path('sr', 'finetune', label), args.hr)['psnr'] for label in candidates}
    order = sorted(candidates, key=lambda label: -finetune_psnr[label])
    heldout_sr = [path('sr', 'heldout', label) for label in order]
    checked(fuse.run(fuse.FuseSettings(inputs=heldout_sr, mse=path('sr', 'heldout', 'mse'), out=path('fused'))))
    fused = ['fused']
    if args.fuse_with_localizer:
        checked(fuse.run(fuse.FuseSettings(inputs=heldout_sr, out=path('fused_localizer'), device=args.device,
                                           **localizer_files)))
        fused.append('fused_localizer')
    rows = {}
    for label in candidates + ['mse'] + fused:
        folder = path('sr', 'heldout', label) if label in models else path(label)
        area = None
        if label != 'mse':
            result = detections.get(('heldout', label)) or checked(detect.run(detect.DetectSettings(
                mse=path('sr', 'heldout', 'mse'), gan=folder, out=path('masks', 'heldout', label),
                device=args.device)))
            area = artifact_area(result)
        rows[label] = dict(image_quality(folder, args.hr), artifact_area=area)

    results = dict(
        images={'finetune': len(list_images(args.finetune_lr)), 'heldout': n_heldout},
        localizer=dict(arch=args.arch, iters=args.iters, seed=args.seed, clean_negatives=args.clean_negatives,
                       train_seconds=round(seconds['localizer_train'], 1),
                       scores=localizer_scores, trained_on=candidates[0]),
        images_per_minute=per_minute,
        seconds=seconds,
        fusion_order=dict(order=order, finetune_psnr=finetune_psnr),
        fusion=rows)
    os.makedirs(work, exist_ok=True)
    with open(path('results.json'), 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=2)
    print_results(results, candidates)
    return results


def print_results(results: dict, candidates: List[str]) -> None:
    """Print the localiser and fusion tables."""
    loc = results['localizer']
    clean = ' and their pseudo-GT as clean images' if loc['clean_negatives'] else ''
    print(f'\n=== Localiser ({loc["arch"]}, {loc["iters"]} iterations, seed {loc["seed"]}, trained in '
          f'{loc["train_seconds"]} s on {results["images"]["finetune"]} fine-tune outputs of {loc["trained_on"]}'
          f'{clean}) vs DeSRA-det, held-out ({results["images"]["heldout"]} photos) ===')
    print(format_table(['generator', 'IoU', 'precision', 'recall'], [[
        label + (' (trained on)' if label == loc['trained_on'] else ' (unseen)'), f'{s["iou"]:.1f}',
        f'{s["precision"]:.3f}', f'{s["recall"]:.3f}'
    ] for label, s in loc['scores'].items()]))
    rate = results['images_per_minute']
    print(f'images per minute: localiser {rate["localizer"]:.1f}, DeSRA-det (MSE-SR inference + detection) '
          f'{rate["desra_det"]:.1f}')
    order = results['fusion_order']['order']
    print(f'\n=== Fusion of {len(candidates)} candidates (preference order by fine-tune-set PSNR: '
          f'{", ".join(order)}), held-out photos (mean over images) ===')
    print(format_table(['output', 'PSNR', 'SSIM', 'DeSRA-det area %'], [[
        label, f'{r["psnr"]:.2f}', f'{r["ssim"]:.4f}',
        '-' if r['artifact_area'] is None else f'{r["artifact_area"]:.2f}'
    ] for label, r in results['fusion'].items()]))


if __name__ == '__main__':
    main()
