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
   the image), averaged over the held-out photos. Each fusion runs again with the colour fix from the LR inputs
   (``desra fuse --lr``, rows ``..._colour``), beside every model's outputs alone with that fix (the fix
   ``fuse --lr`` applies to each candidate, at its default sigma; rows ``LABEL_colour``).

Targets: fused artifact area below every candidate's; fused PSNR / SSIM at least the best GAN-SR
candidate's; localiser IoU against DeSRA-det on ``C1``'s held-out outputs at least 50. The measured figures are
printed whichever way they fall, and written to ``WORK/results.json``.

Usage (the demo's models: ``make bench-localizer-fusion`` runs the DeSRA fine-tune of the demo, then this)::

    .venv/bin/python -m benchmarks.bench_localizer_fusion --work results/bench_localizer_fusion \\
        --candidate demo_gan options/demo_train_gan.yml experiments/pretrained_models/demo_gan_x4.pth \\
        --candidate demo_gan_desra results/demo/models/v1/sr.yml results/demo/models/v1/net_g.pth \\
        --candidate demo_gan_b options/demo_train_gan_b.yml experiments/pretrained_models/demo_gan_b_x4.pth

Every stage is a ``desra`` job: run it again with the same ``--work`` to resume (the timed stages are always run
again, so their rates come from a fresh start).

**Leave one generator out** (``--leave-one-out MANIFEST``, instead of ``--candidate``): does the localiser find the
artifacts of generators it never saw? The manifest of the artifact zoo (JSON: ``{"generators": [{"name": ...,
"splits": {"finetune": {"sr": DIR, "masks": DIR}, "heldout": {"sr": DIR, "masks": DIR}}}, ...], "synthetic": DIR}``;
relative folders are read from the manifest's folder, else from the working folder) lists each generator's outputs
and DeSRA-det masks. For each generator of ``--generators`` (default: all), a localiser trained on the fine-tune
outputs of every other generator (and the ``--synthetic`` folder, and ``--clean`` images, with their weights) is
scored on the left-out generator's held-out outputs against its DeSRA-det masks: IoU x100, region precision and
recall, their mean and worst over the left-out generators. Also scored on every generator: a localiser trained on
the synthetic artifacts only (when there are any), and one trained on all generators (generators it saw), unless
``--left-out-only``; ``--seen-only`` trains and scores these two alone, none that leaves a generator out. With
``--prob-thresholds``, the left-out localisers are also scored at a probability threshold chosen by
cross-validation: each is scored on its left-out generator's fine-tune outputs at every threshold, and generator
``X``'s held-out outputs are scored at the threshold with the best mean fine-tune IoU over the other left-out
generators (no held-out image and nothing of ``X`` takes part in ``X``'s choice). With ``--settings-cv WORK ...``,
the setting itself (sources and their weights, iterations, augmentation: whatever trained the left-out localisers of
each finished ``--work`` folder, this run's included) is chosen the same way: ``X``'s held-out outputs are scored by
the localiser of the setting with the best mean fine-tune IoU over the other left-out generators (the other
folders' localisers write their masks under ``WORK/settings_cv``, never into those folders). Written to
``WORK/leave_one_out.json``. Each localiser is a ``desra localizer train`` job under ``WORK``, kept once finished: a
run split over processes (each with its ``--generators`` and ``--left-out-only``,
one ``--work``) is gathered by a last run on that ``--work``, which only scores what is already trained::

    .venv/bin/python -m benchmarks.bench_localizer_fusion --leave-one-out results/zoo/manifest.json \
        --synthetic results/zoo/synth --work results/bench_localizer_loo --iters 1000
"""
import argparse
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from benchmarks.common import REPO, check_counts, check_paths, checked, colour_fixed, run_main, timed, write_json
from desra_basicsr.demo import MSE_OPT, PRETRAINED
from desra_basicsr.constants import MIN_AREA
from desra_basicsr.evaluation.folders import format_table
from desra_basicsr.evaluation.mask_metrics import DetectionScores
from desra_basicsr.image_io import list_images, read_image, read_mask, stem
from desra_basicsr.jobs import detect, evaluate, fuse, localizer_train, pseudo_gt, sr
from desra_basicsr.jobs.localizer_sources import TrainingSource
from desra_basicsr.localizer.config import CHECKPOINT_NAME, CONFIG_NAME
from desra_basicsr.localizer.predictor import localizer_morphology, probability_mask
from desra_basicsr.settings import default_of

#: The scores of a localiser against DeSRA-det's masks.
SCORES = ('iou', 'precision', 'recall')


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
        metavar=('LABEL', 'OPT', 'WEIGHTS'),
        help='a GAN-SR candidate (at least 3; the first trains the localiser, the second tests it on another model)')
    parser.add_argument('--leave-one-out', metavar='MANIFEST', default=None,
                        help='leave-one-generator-out mode on the generators of this zoo manifest (no --candidate)')
    parser.add_argument('--generators', nargs='+', default=None, help='leave-one-out: the generators left out in turn')
    parser.add_argument('--synthetic', default=None, help='leave-one-out: a desra zoo synth folder to train on too')
    parser.add_argument('--synthetic-weight', type=float, default=1.0, help='leave-one-out: its source weight')
    parser.add_argument('--clean', default=None, help='leave-one-out: clean images to train on as negatives')
    parser.add_argument('--clean-weight', type=float, default=1.0, help='leave-one-out: their source weight')
    parser.add_argument('--prob-thresholds', nargs='+', type=float, default=None, metavar='T',
                        help='leave-one-out: also choose the probability threshold among these by cross-validation '
                        'on the fine-tune outputs of the other left-out generators (at least 2 --generators)')
    parser.add_argument('--settings-cv', nargs='+', default=None, metavar='WORK',
                        help='leave-one-out: also choose among the setting of --work and those of these finished '
                        '--work folders (other sources, weights, iterations) by cross-validation on the fine-tune '
                        'outputs of the other left-out generators (at least 2 --generators)')
    parser.add_argument('--left-out-only', action='store_true',
                        help='leave-one-out: only the localisers that leave a generator out, not the seen and '
                        'synthetic-only ones (to split a run over processes with --generators and one --work)')
    parser.add_argument('--seen-only', action='store_true',
                        help='leave-one-out: only the localisers trained on every generator and on the synthetic '
                        'artifacts alone, none that leaves a generator out (the other half of --left-out-only)')
    parser.add_argument('--work', required=True, help='work folder (SR outputs, masks, localiser, results.json)')
    parser.add_argument('--arch', default=localizer_train.DEFAULT_ARCH, help='localiser architecture')
    parser.add_argument('--iters', type=int, default=300, help='localiser training iterations')
    parser.add_argument('--batch-size', type=int, default=4, help='localiser batch size')
    parser.add_argument('--crop-size', type=int, default=192, help='localiser training crop')
    parser.add_argument('--seed', type=int, default=0, help='localiser training seed')
    parser.add_argument('--scales', nargs='+', type=float, default=[1.0], metavar='S',
                        help='localiser: rescaling factors before cropping (desra localizer train --scales)')
    parser.add_argument('--cat-max-ratio', type=float, default=1.0,
                        help='localiser: largest share of one class in a crop (desra localizer train --cat-max-ratio)')
    parser.add_argument('--photometric', action='store_true',
                        help='localiser: mmseg\'s PhotoMetricDistortion (desra localizer train --photometric)')
    parser.add_argument('--edge-crops', action='store_true',
                        help='localiser: crops centred uniformly over the image (desra localizer train --edge-crops)')
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
    check_counts(args, '--iters', '--batch-size', '--crop-size')
    if args.leave_one_out:
        check_paths([('--leave-one-out', args.leave_one_out)])
        return args
    if len(args.candidate or []) < 3:
        parser.error(f'--candidate: give at least 3 GAN-SR candidates, got {len(args.candidate or [])}')
    labels = [c[0] for c in args.candidate]
    reserved = [label for label in labels if label in ('mse', 'fused', 'fused_localizer') or label.endswith('_colour')]
    if len(set(labels)) != len(labels) or reserved:
        parser.error(f'--candidate: labels must be unique, not "mse", "fused" or "fused_localizer" and not end in '
                     f'"_colour" (rows of the results), got {labels}')
    check_paths([('--mse-opt', args.mse_opt), ('--mse-weights', args.mse_weights)]
                + [(f'--candidate {c[0]}', path) for c in args.candidate for path in c[1:]])
    check_paths([('--finetune-lr', args.finetune_lr), ('--heldout-lr', args.heldout_lr), ('--hr', args.hr)],
                kind='folder')
    return args


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
    if args.leave_one_out:
        return leave_one_out(args)
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
        crop_size=args.crop_size, seed=args.seed, num_workers=0, **augmentation(args))
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
        localizer_scores[label] = {k: scores[k] for k in SCORES}
    per_minute = {
        'desra_det': 60 * n_heldout / (seconds['mse_sr_heldout'] + seconds['desra_det_heldout']),
        'localizer': 60 * n_heldout / seconds['localizer_detect_heldout'],
    }

    # 3. Fusion (DeSRA scores with MSE-SR fallback; localiser scores), quality against HR, DeSRA-det area. The
    # preference order among equally clean candidates: their mean PSNR on the fine-tune set, best first.
    finetune_psnr = {label: image_quality(path('sr', 'finetune', label), args.hr)['psnr'] for label in candidates}
    order = sorted(candidates, key=lambda label: -finetune_psnr[label])
    heldout_sr = [path('sr', 'heldout', label) for label in order]
    # Each fusion plain and with the colour fix from the LR inputs, and each model alone with that fix.
    sigma = default_of(fuse.FuseSettings, 'colour_sigma')
    outputs = {label: path('sr', 'heldout', label) for label in candidates + ['mse']}
    for label in candidates + ['mse']:
        outputs[f'{label}_colour'] = colour_fixed(outputs[label], splits['heldout'], sigma,
                                                  path('sr', 'heldout', f'{label}_colour'))
    for suffix, colour in (('', {}), ('_colour', dict(lr=splits['heldout']))):
        outputs[f'fused{suffix}'] = path(f'fused{suffix}')
        checked(fuse.run(fuse.FuseSettings(inputs=heldout_sr, mse=outputs['mse'], out=outputs[f'fused{suffix}'],
                                           **colour)))
        if args.fuse_with_localizer:
            outputs[f'fused_localizer{suffix}'] = path(f'fused_localizer{suffix}')
            checked(fuse.run(fuse.FuseSettings(inputs=heldout_sr, out=outputs[f'fused_localizer{suffix}'],
                                               device=args.device, **localizer_files, **colour)))
    rows = {}
    for label in sorted(outputs, key=lambda label: label.endswith('_colour')):  # plain rows first, then the fixed
        folder = outputs[label]
        area = None
        if label not in ('mse', 'mse_colour'):
            result = detections.get(('heldout', label)) or checked(detect.run(detect.DetectSettings(
                mse=outputs['mse'], gan=folder, out=path('masks', 'heldout', label), device=args.device)))
            area = artifact_area(result)
        rows[label] = dict(image_quality(folder, args.hr), artifact_area=area)

    results = dict(
        images={'finetune': len(list_images(args.finetune_lr)), 'heldout': n_heldout},
        localizer=dict(arch=args.arch, iters=args.iters, seed=args.seed, clean_negatives=args.clean_negatives,
                       **augmentation(args), train_seconds=round(seconds['localizer_train'], 1),
                       scores=localizer_scores, trained_on=candidates[0]),
        images_per_minute=per_minute,
        seconds=seconds,
        fusion_order=dict(order=order, finetune_psnr=finetune_psnr),
        colour_sigma=sigma,
        fusion=rows)
    write_json(path('results.json'), results)
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


@dataclass(frozen=True)
class ZooGenerator:
    """A generator of the zoo manifest: its outputs and DeSRA-det masks on the fine-tune and held-out sets.

    Attributes:
        name (str): The generator's name.
        finetune (tuple[str, str]): Fine-tune outputs and masks folders.
        heldout (tuple[str, str]): Held-out outputs and masks folders.
    """
    name: str
    finetune: Tuple[str, str]
    heldout: Tuple[str, str]


def read_manifest(path: str) -> Tuple[List[ZooGenerator], Optional[str]]:
    """The generators of a zoo manifest and its synthetic folder, if it names one (see the module docstring).

    Args:
        path (str): The manifest (JSON).

    Returns:
        tuple: The generators, in the manifest's order, and the synthetic folder or None.

    Raises:
        SystemExit: If the manifest cannot be read, or a generator lacks a unique name or a split's folders.
    """
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise SystemExit(f'{path}: cannot read the zoo manifest ({err})') from None
    entries = data.get('generators') if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SystemExit(f'{path}: no "generators" list in the zoo manifest')
    base = osp.dirname(osp.abspath(path))

    def folder(value) -> Optional[str]:
        if isinstance(value, dict):  # {"out": DIR} or {"path": DIR}
            value = value.get('out', value.get('path'))
        if not isinstance(value, str) or not value:
            return None
        beside = osp.join(base, value)
        return osp.abspath(beside if not osp.isabs(value) and osp.exists(beside) else value)

    generators = []
    for i, entry in enumerate(entries):
        name = entry.get('name') if isinstance(entry, dict) else None
        splits = entry.get('splits') if isinstance(entry, dict) else None
        pairs = {}
        for split in ('finetune', 'heldout'):
            part = splits.get(split) if isinstance(splits, dict) else None
            pair = (folder(part.get('sr')), folder(part.get('masks'))) if isinstance(part, dict) else (None, None)
            if None in pair:
                raise SystemExit(f'{path}: generator #{i + 1} ({name}) has no {split} "sr" and "masks" folders')
            pairs[split] = pair
        if not isinstance(name, str) or not name or name in {g.name for g in generators}:
            raise SystemExit(f'{path}: generator #{i + 1} needs a unique "name", got {name!r}')
        generators.append(ZooGenerator(name, pairs['finetune'], pairs['heldout']))
    return generators, folder(data.get('synthetic'))


def summarise(scores: Dict[str, Dict[str, float]]) -> dict:
    """Mean and worst (lowest) of each score over generators, with the generator of the worst.

    Args:
        scores (dict): Generator -> ``iou``, ``precision``, ``recall``.

    Returns:
        dict: ``mean`` and ``worst`` (each score -> value), ``worst_generator`` (each score -> name).
    """
    worst = {k: min(scores, key=lambda name: scores[name][k]) for k in SCORES}
    return dict(mean={k: float(np.mean([s[k] for s in scores.values()])) for k in SCORES},
                worst={k: scores[worst[k]][k] for k in SCORES}, worst_generator=worst)


def _score(args: argparse.Namespace, localizer: str, split: Tuple[str, str], out: str,
           save_maps: bool = False) -> Dict[str, float]:
    """Score the localiser in folder ``localizer`` on one split ``(outputs, DeSRA-det masks)`` at its default
    threshold; its masks go to ``out``, with its probability maps under ``out/maps`` when ``save_maps`` is set (what
    :func:`threshold_scores` reads)."""
    checked(detect.run(detect.DetectSettings(
        mse=None, gan=split[0], out=out, method='localizer', device=args.device, overwrite=True, save_maps=save_maps,
        localizer_config=osp.join(localizer, CONFIG_NAME), localizer_checkpoint=osp.join(localizer, CHECKPOINT_NAME))))
    mean = evaluate.run(evaluate.EvaluateSettings(gt=split[1], pred=out)).mean
    return {k: float(mean[k]) for k in SCORES}


def augmentation(args: argparse.Namespace) -> dict:
    """The localiser's augmentation settings of the command line (``desra localizer train``'s, same names)."""
    return dict(scales=tuple(args.scales), cat_max_ratio=args.cat_max_ratio, photometric=args.photometric,
                edge_crops=args.edge_crops)


def _train_and_score(args: argparse.Namespace, work: str, label: str, sources: Sequence[TrainingSource],
                     targets: Sequence[ZooGenerator], save_maps: bool = False) -> Dict[str, Dict[str, float]]:
    """Train a localiser on the sources (kept in ``WORK/LABEL/localizer``) and score it on the targets' held-out
    outputs; the masks of target ``X`` go to ``WORK/LABEL/masks/X``."""
    checked(localizer_train.run(localizer_train.LocalizerTrainSettings(
        out=osp.join(work, label, 'localizer'), sources=tuple(sources), arch=args.arch, iters=args.iters,
        batch_size=args.batch_size, crop_size=args.crop_size, seed=args.seed, num_workers=0, **augmentation(args))))
    return {target.name: _score(args, osp.join(work, label, 'localizer'), target.heldout,
                                osp.join(work, label, 'masks', target.name), save_maps) for target in targets}


def threshold_scores(maps: str, split: Tuple[str, str], thresholds: Sequence[float]) -> Dict[float, Dict[str, float]]:
    """Score a localiser's probability maps of one split at several probability thresholds.

    ``maps`` holds what ``desra detect --method localizer --save-maps`` wrote on the split's outputs
    (``<name>_prob.npy``); each threshold gives the masks :class:`~desra_basicsr.localizer.predictor.LocalizerDetector`
    would give (probability at least the threshold, holes filled, small regions dropped), scored against the split's
    DeSRA-det masks.

    Args:
        maps (str): The detection's ``maps`` folder.
        split (tuple): ``(outputs folder, DeSRA-det masks folder)``.
        thresholds (sequence): Probability thresholds.

    Returns:
        dict: Threshold -> ``iou`` (x100, mean over images), ``precision``, ``recall`` (pooled regions).
    """
    morphology = localizer_morphology(MIN_AREA)
    scores = {t: DetectionScores() for t in thresholds}
    for path in list_images(split[0]):
        name = stem(path)
        prob = np.load(osp.join(maps, f'{name}_prob.npy'))
        gt = read_mask(osp.join(split[1], f'{name}.png'))
        for t in thresholds:
            scores[t].add(name, probability_mask(prob, t, morphology)[0], gt)
    return {t: {k: float(v.summary()[k]) for k in SCORES} for t, v in scores.items()}


def choose_on_other_generators(finetune: Dict[str, Dict[object, Dict[str, float]]]) -> Dict[str, object]:
    """Each generator's choice (a threshold, a setting): the best mean fine-tune IoU over the *other* generators,
    each scored by the localiser that left it out (the first of equal choices wins).

    Args:
        finetune (dict): Generator -> choice -> scores of the localiser trained without it on its fine-tune
            outputs.

    Returns:
        dict: Generator -> chosen key; none of its own scores take part in its choice.
    """
    chosen = {}
    for name in finetune:
        others = [scores for other, scores in finetune.items() if other != name]
        choices = list(others[0])
        chosen[name] = max(choices, key=lambda c: (np.mean([s[c]['iou'] for s in others]), -choices.index(c)))
    return chosen


def _cross_validated_thresholds(args: argparse.Namespace, work: str, left_out: Sequence[ZooGenerator]) -> dict:
    """Scores of the left-out localisers on held-out outputs at thresholds chosen on the fine-tune outputs.

    Reads the probability maps :func:`_train_and_score` (held-out) and :func:`_finetune_scores` (fine-tune) saved.
    """
    finetune, heldout = {}, {}
    for target in left_out:
        base = osp.join(work, f'without_{target.name}')
        finetune[target.name] = threshold_scores(osp.join(base, 'cv', 'finetune', 'maps'), target.finetune,
                                                 args.prob_thresholds)
        heldout[target.name] = threshold_scores(osp.join(base, 'masks', target.name, 'maps'), target.heldout,
                                                args.prob_thresholds)
    chosen = choose_on_other_generators(finetune)
    scores = {name: heldout[name][chosen[name]] for name in chosen}
    key = lambda table: {name: {str(t): s for t, s in by_t.items()} for name, by_t in table.items()}  # noqa: E731
    return dict(thresholds=list(args.prob_thresholds), chosen=chosen, finetune=key(finetune), heldout=key(heldout),
                scores=scores, **summarise(scores))


def _finetune_scores(args: argparse.Namespace, work: str, target: ZooGenerator, save_maps: bool = False,
                     out: Optional[str] = None) -> Dict[str, float]:
    """Score the localiser of ``work`` that left ``target`` out on its fine-tune outputs (masks and, with
    ``save_maps``, probability maps in ``OUT/without_X/cv/finetune``; ``OUT`` is ``work`` unless given)."""
    base = osp.join(work, f'without_{target.name}')
    return _score(args, osp.join(base, 'localizer'), target.finetune,
                  osp.join(out or work, f'without_{target.name}', 'cv', 'finetune'), save_maps)


def settings_cv_folder(work: str, index: int, other: str) -> str:
    """Where this run (``work``) writes its scores of the localisers of the ``index``-th ``--settings-cv`` folder
    ``other``: ``WORK/settings_cv/<index>_<name>``, never inside ``other``, whose own results stay as they are."""
    return osp.join(work, 'settings_cv', f'{index}_{osp.basename(osp.normpath(other))}')


def missing_left_out_localisers(works: Sequence[str], left_out: Sequence[str]) -> List[str]:
    """The localiser checkpoints ``WORK/without_X/localizer`` that ``--settings-cv`` needs and that are not there."""
    wanted = [osp.join(w, f'without_{name}', 'localizer', CHECKPOINT_NAME) for w in works for name in left_out]
    return [f for f in wanted if not osp.isfile(f)]


def _cross_validated_settings(args: argparse.Namespace, work: str, left_out: Sequence[ZooGenerator],
                              scores: Dict[str, Dict[str, float]],
                              finetune_scores: Dict[str, Dict[str, float]]) -> dict:
    """Scores of the left-out localisers on held-out outputs with the setting (a ``--work`` folder: its sources,
    weights, iterations, augmentation) chosen on the fine-tune outputs of the other left-out generators; ``scores`` and
    ``finetune_scores`` are the held-out and fine-tune scores of this run's own left-out localisers (``work``), the
    other folders' are scored here."""
    works = [work] + [osp.abspath(w) for w in args.settings_cv]
    settings = []
    for w in works:
        missing = missing_left_out_localisers([w], [t.name for t in left_out])
        if missing:
            raise SystemExit(f'--settings-cv: {w} has no localiser trained without each left-out generator: '
                             f'{missing[0]} is missing (run the leave-one-out benchmark with that --work first)')
        with open(osp.join(w, 'without_' + left_out[0].name, 'localizer', 'summary.json'), encoding='utf-8') as f:
            meta = json.load(f).get('meta', {})
        sources = meta.get('sources', [])
        keys = ('arch', 'iters', 'seed', 'artifact_weight', 'scales', 'cat_max_ratio', 'photometric', 'edge_crops')
        settings.append(dict(work=w, **{k: meta.get(k) for k in keys},
                             generators=sum(s['kind'] == 'generator' for s in sources),
                             other_sources=[[s['kind'], s['path'], s['weight']] for s in sources
                                            if s['kind'] != 'generator']))
    finetune, heldout = {}, {}
    for target in left_out:
        finetune[target.name], heldout[target.name] = {}, {}
        for index, w in enumerate(works):
            if w == work:
                finetune[target.name][w], heldout[target.name][w] = finetune_scores[target.name], scores[target.name]
                continue
            out = settings_cv_folder(work, index, w)
            finetune[target.name][w] = _finetune_scores(args, w, target, out=out)
            heldout[target.name][w] = _score(args, osp.join(w, f'without_{target.name}', 'localizer'), target.heldout,
                                             osp.join(out, f'without_{target.name}', 'masks', target.name))
    chosen = choose_on_other_generators(finetune)
    picked = {name: heldout[name][chosen[name]] for name in chosen}
    return dict(settings=settings, chosen=chosen, finetune=finetune, heldout=heldout, scores=picked,
                **summarise(picked))


def leave_one_out(args: argparse.Namespace) -> dict:
    """The leave-one-generator-out benchmark (see the module docstring).

    Args:
        args (argparse.Namespace): Parsed arguments with ``leave_one_out``.

    Returns:
        dict: The figures written to ``WORK/leave_one_out.json``.

    Raises:
        SystemExit: For an unusable manifest, fewer than two generators, or an unknown ``--generators`` name.
    """
    generators, manifest_synthetic = read_manifest(args.leave_one_out)
    by_name = {g.name: g for g in generators}
    left_out = args.generators or list(by_name)
    unknown = [name for name in left_out if name not in by_name]
    if unknown or len(generators) < 2:
        raise SystemExit(f'--generators: unknown {unknown}' if unknown else
                         f'{args.leave_one_out}: leaving one generator out needs at least 2 generators')
    if args.seen_only and (args.left_out_only or args.prob_thresholds or args.settings_cv):
        raise SystemExit('--seen-only: trains no localiser that leaves a generator out, so it takes none of '
                         '--left-out-only, --prob-thresholds, --settings-cv')
    if args.settings_cv and len(left_out) < 2:
        raise SystemExit('--settings-cv: choosing a setting on the other generators needs at least 2 left out')
    missing = missing_left_out_localisers([osp.abspath(w) for w in args.settings_cv or ()], left_out)
    if missing:  # the other folders' localisers are checked before this run trains its own
        raise SystemExit(f'--settings-cv: {osp.dirname(osp.dirname(osp.dirname(missing[0])))} has no localiser trained '
                         f'without each left-out generator: {missing[0]} is missing (run the leave-one-out benchmark '
                         'with that --work first)')
    bad = [t for t in args.prob_thresholds or () if not 0 < t <= 1]
    if bad or (args.prob_thresholds and len(left_out) < 2):
        raise SystemExit(f'--prob-thresholds: {bad} not in (0, 1]' if bad else
                         '--prob-thresholds: choosing a threshold on the other generators needs at least 2 left out')
    synthetic = args.synthetic or manifest_synthetic
    work = osp.abspath(args.work)
    extra = [TrainingSource('synthetic', synthetic, weight=args.synthetic_weight)] if synthetic else []
    extra += [TrainingSource('clean', args.clean, weight=args.clean_weight)] if args.clean else []
    trained_on = {name: [TrainingSource('generator', *g.finetune) for g in generators if g.name != name]
                  for name in left_out}
    scores = {} if args.seen_only else {
        name: _train_and_score(args, work, f'without_{name}', trained_on[name] + extra, [by_name[name]],
                               save_maps=bool(args.prob_thresholds))[name]
        for name in left_out}
    results = dict(
        manifest=osp.abspath(args.leave_one_out), synthetic=synthetic, clean=args.clean,
        localizer=dict(arch=args.arch, iters=args.iters, seed=args.seed, batch_size=args.batch_size,
                       crop_size=args.crop_size, synthetic_weight=args.synthetic_weight,
                       clean_weight=args.clean_weight, **augmentation(args)))
    if scores:
        results['left_out'] = dict(scores=scores, **summarise(scores))
    if args.prob_thresholds or args.settings_cv:  # this run's fine-tune outputs, detected once for both choices
        finetune = {name: _finetune_scores(args, work, by_name[name], save_maps=bool(args.prob_thresholds))
                    for name in left_out}
    if args.prob_thresholds:
        results['left_out_cv'] = _cross_validated_thresholds(args, work, [by_name[name] for name in left_out])
    if args.settings_cv:
        results['left_out_settings_cv'] = _cross_validated_settings(args, work, [by_name[name] for name in left_out],
                                                                    scores, finetune)
    if not args.left_out_only:
        seen = _train_and_score(args, work, 'all_generators', [TrainingSource('generator', *g.finetune)
                                                               for g in generators] + extra, generators)
        results['seen'] = dict(scores=seen, **summarise(seen))
    if synthetic and not args.left_out_only:
        alone = _train_and_score(args, work, 'synthetic_only', extra, generators)
        results['synthetic_only'] = dict(scores=alone, **summarise(alone))
    write_json(osp.join(work, 'leave_one_out.json'), results)
    print_leave_one_out(results)
    return results


def print_leave_one_out(results: dict) -> None:
    """Print one table per localiser kind: each generator's scores, their mean and the worst."""
    titles = {'left_out': 'trained without the generator it is scored on',
              'left_out_cv': 'trained without it, threshold chosen on the other generators\' fine-tune outputs',
              'left_out_settings_cv': 'trained without it, setting (--work) chosen on the other generators\' '
              'fine-tune outputs',
              'seen': 'trained on every generator', 'synthetic_only': 'trained on the synthetic artifacts only'}
    loc = results['localizer']
    print(f'\n=== Leave one generator out ({loc["arch"]}, {loc["iters"]} iterations, seed {loc["seed"]}): localiser '
          'vs DeSRA-det on held-out outputs ===')
    for key, title in titles.items():
        if key not in results:
            continue
        part = results[key]
        value = lambda k, v: f'{v:.1f}' if k == 'iou' else f'{v:.3f}'  # noqa: E731
        label = lambda name: name if 'chosen' not in part else (  # noqa: E731
            f'{name} at {part["chosen"][name]:g}' if key == 'left_out_cv' else
            f'{name} with {osp.basename(part["chosen"][name])}')
        rows = [[label(name)] + [value(k, s[k]) for k in SCORES] for name, s in part['scores'].items()]
        rows.append(['mean'] + [value(k, part['mean'][k]) for k in SCORES])
        rows.append(['worst'] + [f'{value(k, part["worst"][k])} ({part["worst_generator"][k]})' for k in SCORES])
        print(f'\n{title}:')
        print(format_table(['generator', 'IoU', 'precision', 'recall'], rows))


if __name__ == '__main__':
    run_main(main)
